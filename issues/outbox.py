"""The outbox drain: claim, coalesce, push after commit, record the answer.

Rows are claimed with `SELECT … FOR UPDATE SKIP LOCKED` and a lease (`claimed_until`), so
two workers never take the same row and a killed worker's rows come back when the lease runs
out. All pending rows of one issue are pushed as one call carrying the mirror's current
values; a field the tracker already holds is not written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations.models import Connection
from integrations.providers.base import (
    NotFoundError,
    PermanentError,
    ProviderClient,
    ProviderError,
    RateLimitedError,
    RemoteIssue,
)
from integrations.providers.registry import client_for
from issues.canonical import (
    FIELDS,
    changed_fields,
    normalise,
    remote_snapshot,
    same_on_tracker,
    to_issue_fields,
)
from issues.engine import Versions, create_marker, log_change, refresh_sync_status
from issues.models import (
    Action,
    Direction,
    Issue,
    OutboxEntry,
    OutboxOperation,
    OutboxStatus,
    SyncStatus,
    Trigger,
)
from issues.services.sync import remote_deletion_apply, remote_issue_apply
from notifications.models import EventType
from notifications.services import event_record
from syndarix_sync.logs import correlation, get_logger, new_correlation_id
from syndarix_sync.metrics import OUTBOX_PUSHES, SYNC_OPERATIONS

logger = get_logger(__name__)

# SPEC §5: "after 5 retries a row is failed" — the first attempt and five retries.
MAX_RETRIES = 5
MAX_ATTEMPTS = 1 + MAX_RETRIES
# How far back (on our clock) a lost create is looked for: trackers' clocks drift by minutes.
CREATE_SEARCH_WINDOW = timedelta(days=1)


def worker_id() -> str:
    """Who holds a claim. Read at claim time, not import time: prefork children of one
    Celery worker import this module in the parent and must not share one id."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclasses.dataclass
class DrainReport:
    claimed_issues: int = 0
    pushed: int = 0  # API writes made
    skipped: int = 0  # rows settled without a write (nothing to change)
    retried: int = 0
    failed: int = 0


def _due() -> Q:
    now = timezone.now()
    due = Q(status=OutboxStatus.PENDING, next_attempt_at__lte=now) | Q(
        status=OutboxStatus.IN_PROGRESS, claimed_until__lt=now
    )
    # A subquery, not a join: the claim's FOR UPDATE must lock outbox rows only.
    rate_limited = Connection.objects.filter(rate_limited_until__gt=now).values("id")
    return due & ~Q(connection_id__in=rate_limited)


def claim_issue_batch(
    *, limit: int = 20, issue_id: int | None = None, lease: timedelta | None = None
) -> dict[int, list[int]]:
    """Claim due rows of up to `limit` issues: {issue_id: [row ids]} (one short transaction).

    Only the rows claimed are locked: the first SELECT picks up to `limit` due rows, the
    second adds the other due rows of the same issues so they are pushed as one call.
    """
    now = timezone.now()
    if lease is None:
        lease = timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    with transaction.atomic():
        due = OutboxEntry.objects.select_for_update(skip_locked=True).filter(_due())
        if issue_id is not None:
            due = due.filter(issue_id=issue_id)
        first = list(due.order_by("id").values_list("id", "issue_id")[:limit])
        if not first:
            return {}
        issue_ids = {row_issue for _, row_issue in first}
        more = list(
            OutboxEntry.objects.select_for_update(skip_locked=True)
            .filter(_due(), issue_id__in=issue_ids)
            .exclude(id__in=[row_id for row_id, _ in first])
            .values_list("id", "issue_id")
        )
        claimed: dict[int, list[int]] = {}
        for row_id, row_issue in sorted(first + more):
            claimed.setdefault(row_issue, []).append(row_id)
        OutboxEntry.objects.filter(id__in=[r for rows in claimed.values() for r in rows]).update(
            status=OutboxStatus.IN_PROGRESS,
            claimed_until=now + lease,
            claimed_by=worker_id(),
            attempts=F("attempts") + 1,
        )
    return claimed


def drain(*, limit: int = 20, issue_id: int | None = None) -> DrainReport:
    report = DrainReport()
    while True:
        batch = claim_issue_batch(limit=limit, issue_id=issue_id)
        if not batch:
            return report
        for claimed_issue, row_ids in batch.items():
            report.claimed_issues += 1
            before = dataclasses.replace(report)
            platform = push_claimed(issue_id=claimed_issue, row_ids=row_ids, report=report)
            _count(platform, before, report)
        if issue_id is not None:
            return report


def _count(platform: str, before: DrainReport, after: DrainReport) -> None:
    for result, status in (
        ("pushed", "success"),
        ("skipped", "skipped"),
        ("retried", "failed"),
        ("failed", "failed"),
    ):
        delta = getattr(after, result) - getattr(before, result)
        if delta:
            OUTBOX_PUSHES.labels(platform=platform, result=result).inc(delta)
            SYNC_OPERATIONS.labels(platform=platform, status=status).inc(delta)


def _settle(row_ids: list[int], *, status: str, error: str = "") -> None:
    OutboxEntry.objects.filter(id__in=row_ids, claimed_by=worker_id()).update(
        status=status,
        completed_at=timezone.now(),
        claimed_until=None,
        last_error=error[:2000],
    )


def push_claimed(*, issue_id: int, row_ids: list[int], report: DrainReport) -> str:
    """Push one issue's claimed rows; returns the provider. Network calls happen here,
    outside any transaction."""
    rows = list(OutboxEntry.objects.filter(id__in=row_ids).order_by("id"))
    issue = Issue.objects.select_related("connection").filter(pk=issue_id).first()
    if issue is None or not rows:
        _settle(row_ids, status=OutboxStatus.DONE, error="issue no longer exists")
        return "unknown"
    connection = issue.connection
    # The newest row's id: the change that made this push necessary. Bound from the row, so a
    # push reclaimed by another worker after a crash still logs under the original id.
    correlation_id = rows[-1].correlation_id or new_correlation_id()
    with correlation(correlation_id, issue=issue.pk, connection=connection.pk):
        _push_rows(
            issue=issue,
            connection=connection,
            rows=rows,
            row_ids=row_ids,
            correlation_id=correlation_id,
            report=report,
        )
    return connection.provider


def _push_rows(
    *,
    issue: Issue,
    connection: Connection,
    rows: list[OutboxEntry],
    row_ids: list[int],
    correlation_id: str,
    report: DrainReport,
) -> None:
    reclaimed = any(r.attempts > 1 for r in rows)
    try:
        client = client_for(connection)
    except Exception as exc:  # noqa: BLE001 - unknown provider, bad config: this issue only
        # Not the tracker's answer: no retry can help until the connection is fixed. The
        # rows fail visibly; the batch goes on with the other issues.
        _record_failure(
            issue=issue,
            rows=rows,
            error=PermanentError(f"no client for connection {connection.pk}: {exc}"),
            report=report,
        )
        return
    try:
        if issue.external_id is None and any(r.operation == OutboxOperation.CREATE for r in rows):
            _push_create(
                issue=issue,
                connection=connection,
                row_ids=row_ids,
                client=client,
                correlation_id=correlation_id,
                reclaimed=reclaimed,
                report=report,
            )
        elif issue.external_id is None:
            _settle(row_ids, status=OutboxStatus.DONE, error="no remote issue to update")
        else:
            fields = sorted({f for r in rows for f in r.changes if f in FIELDS})
            _push_update(
                issue=issue,
                connection=connection,
                fields=fields,
                row_ids=row_ids,
                client=client,
                correlation_id=correlation_id,
                report=report,
            )
    except ProviderError as exc:
        _record_failure(issue=issue, rows=rows, error=exc, report=report)
    finally:
        client.close()


def _push_update(
    *,
    issue: Issue,
    connection: Connection,
    fields: list[str],
    row_ids: list[int],
    client: ProviderClient,
    correlation_id: str,
    report: DrainReport,
) -> None:
    """Read, merge, then write only what the tracker lacks.

    The read first is what makes a push safe: a tracker edit that no webhook has brought yet
    is merged (and becomes a conflict if it clashes) instead of being overwritten, and a
    retry after a worker died mid-push finds its own earlier write and does not repeat it.
    """
    read_at = timezone.now()
    try:
        fresh = client.get_issue(issue.external_number)
    except NotFoundError:
        _settle(row_ids, status=OutboxStatus.DONE, error="issue deleted in the tracker")
        remote_deletion_apply(
            connection=connection,
            external_id=str(issue.external_id),
            trigger=Trigger.POLL,
            correlation_id=correlation_id,
        )
        return
    remote_issue_apply(
        connection=connection,
        remote=fresh,
        trigger=Trigger.POLL,
        correlation_id=correlation_id,
        fetched_at=read_at,
    )
    issue.refresh_from_db()
    open_conflicts = set(issue.conflicts.filter(resolved=False).values_list("field", flat=True))
    desired = {f: v for f, v in issue.snapshot().items() if f in fields and f not in open_conflicts}
    same = same_on_tracker(connection.provider)
    held = remote_snapshot(fresh)
    # Only what the tracker does not hold already, as it compares (`BUG` is GitHub's `bug`).
    to_write = {f: v for f, v in changed_fields(held, desired).items() if not same(f, held[f], v)}
    if not to_write:
        logger.info("push_skipped", reason="the tracker already holds these values", rows=row_ids)
        report.skipped += 1
        _settle(row_ids, status=OutboxStatus.DONE)
        with transaction.atomic():
            refresh_sync_status(Issue.objects.select_for_update().get(pk=issue.pk))
        return
    while True:
        # Every write (also the rest of a push after a split) has its receipts on record
        # before it is sent.
        counters = _record_receipt(
            issue.pk, to_write, seen=fresh.updated_at, revision=fresh.revision
        )
        try:
            answer = _update(issue=issue, client=client, to_write=to_write, current=fresh)
            break
        except ProviderError as exc:
            refused = getattr(exc, "field", None)
            if isinstance(exc, RateLimitedError) or (exc.status is not None and exc.status < 500):
                # Refused, not lost: the write did not land, its receipts are not in doubt.
                _forget_receipt(issue.pk, to_write)
            if not exc.permanent or refused not in to_write:
                raise
            # The tracker refused one field (an unknown assignee): that field fails visibly
            # on its own row; the rest of the push is sent again (and split again if the
            # tracker refuses another field of it).
            _refuse_field(issue=issue, field=refused, value=to_write[refused], error=exc)
            report.failed += 1
            to_write = {f: v for f, v in to_write.items() if f != refused}
            if not to_write:
                _settle(row_ids, status=OutboxStatus.DONE, error=f"{refused} refused: split off")
                return
    logger.info("pushed", operation="update", fields=sorted(to_write), rows=row_ids)
    report.pushed += 1
    _record_answer(
        issue=issue,
        connection=connection,
        answer=answer,
        acknowledged=counters,
        row_ids=row_ids,
        correlation_id=correlation_id,
        written=to_write,
    )


def _update(
    *, issue: Issue, client: ProviderClient, to_write: dict[str, Any], current: RemoteIssue
) -> RemoteIssue:
    with _forgetting_unsent(issue.pk, to_write):
        return client.update_issue(
            issue.external_number, to_issue_fields(to_write), current=current
        )


@contextlib.contextmanager
def _forgetting_unsent(issue_id: int, values: dict[str, Any]) -> Iterator[None]:
    """A write sent as several requests (set changes, then the scalars; a create, then its
    close) failed before some were sent: those fields cannot have landed. Their receipts
    would otherwise wait for a value that never comes, and a later tracker change would
    make them look overwritten."""
    try:
        yield
    except ProviderError as exc:
        unsent = exc.unsent & values.keys()
        if unsent:
            _forget_receipt(issue_id, {f: values[f] for f in unsent})
        raise


def _refuse_field(*, issue: Issue, field: str, value: Any, error: ProviderError) -> None:
    """A failed row of its own for the refused field (visible, retryable in the admin); a
    merge does not queue the same value again (see outbox_push_enqueue)."""
    message = f"{field}: {error}"[:2000]
    with transaction.atomic():
        locked = Issue.objects.select_for_update().get(pk=issue.pk)
        OutboxEntry.objects.create(
            connection_id=locked.connection_id,
            issue=locked,
            operation=OutboxOperation.UPDATE,
            changes={field: value},
            status=OutboxStatus.FAILED,
            attempts=1,
            next_attempt_at=timezone.now(),
            last_error=message,
        )
        Issue.objects.filter(pk=locked.pk).update(sync_status=SyncStatus.ERROR, sync_error=message)
    logger.warning("push_field_refused", field=field, error=message)


def _forget_receipt(issue_id: int, values: dict[str, Any]) -> None:
    with transaction.atomic():
        locked = Issue.objects.select_for_update().get(pk=issue_id)
        versions = Versions(locked.versions)
        versions.forget_writes(values)
        locked.versions = versions.as_json()
        locked.save(update_fields=["versions", "updated_at"])


def _record_receipt(
    issue_id: int,
    values: dict[str, Any],
    *,
    create_marker: str | None = None,
    seen: datetime | None = None,
    revision: int | None = None,
) -> dict[str, int]:
    """Persist what we are about to write (values and local counters) BEFORE the call: its
    echo may be processed before its answer, and its answer may be lost — either way the
    tracker's state showing these values is then recognised as ours."""
    with transaction.atomic():
        locked = Issue.objects.select_for_update().get(pk=issue_id)
        versions = Versions(locked.versions)
        counters = versions.record_write(values, seen=seen, revision=revision)
        if create_marker is not None:
            versions.create_marker = create_marker
        locked.versions = versions.as_json()
        locked.save(update_fields=["versions", "updated_at"])
    return counters


def _push_create(
    *,
    issue: Issue,
    connection: Connection,
    row_ids: list[int],
    client: ProviderClient,
    correlation_id: str,
    reclaimed: bool,
    report: DrainReport,
) -> None:
    values = issue.snapshot()
    marker = create_marker(issue)
    attempted = Versions(issue.versions).create_marker == marker
    if attempted or reclaimed:
        # A create was sent before (its answer lost, or the worker died): the tracker may
        # have it. Found by its marker — over a window wide enough for a skewed clock.
        found = client.find_by_marker(marker, since=issue.created_at - CREATE_SEARCH_WINDOW)
        if found is not None:
            receipt = Versions(issue.versions).written
            _record_answer(
                issue=issue,
                connection=connection,
                answer=found,
                acknowledged={f: int(r["counter"]) for f, r in receipt.items()},
                row_ids=row_ids,
                correlation_id=correlation_id,
                written=values,
                created=True,
                # What the create sent: the tracker may have changed since it landed (a
                # human's edit is then a remote change, not a local one to write over it).
                base={**remote_snapshot(found), **{f: r["value"] for f, r in receipt.items()}},
            )
            return
    counters = _record_receipt(issue.pk, values, create_marker=marker)
    with _forgetting_unsent(issue.pk, values):
        answer = client.create_issue(to_issue_fields(values), marker=marker)
    logger.info("pushed", operation="create", external_number=answer.number, rows=row_ids)
    report.pushed += 1
    if values["state"] == "closed" and answer.state.value != "closed":
        answer = client.update_issue(
            answer.number, to_issue_fields({"state": "closed"}), current=answer
        )
        report.pushed += 1
    _record_answer(
        issue=issue,
        connection=connection,
        answer=answer,
        acknowledged=counters,
        row_ids=row_ids,
        correlation_id=correlation_id,
        written=values,
        created=True,
    )


def _record_answer(
    *,
    issue: Issue,
    connection: Connection,
    answer: RemoteIssue,
    acknowledged: dict[str, int],
    row_ids: list[int],
    correlation_id: str,
    written: dict,
    created: bool = False,
    base: dict[str, Any] | None = None,
) -> None:
    """The tracker's answer becomes the base for what we wrote (or `base`, for a create found
    after its answer was lost), in one short transaction, through the same inbound path as
    any remote state (so its echo is a no-op)."""
    with transaction.atomic():
        locked = Issue.objects.select_for_update().get(pk=issue.pk)
        if created and locked.external_id is None:
            locked.external_id = answer.external_id
            locked.external_number = answer.number
            locked.remote_url = answer.remote_url
            locked.base = normalise(base) if base is not None else remote_snapshot(answer)
            locked.save(
                update_fields=["external_id", "external_number", "remote_url", "base", "updated_at"]
            )
        _settle(row_ids, status=OutboxStatus.DONE)
        log_change(
            issue=locked,
            connection=connection,
            direction=Direction.OUTBOUND,
            action=Action.CREATE if created else Action.UPDATE,
            trigger=Trigger.API,
            before=None,
            after={
                **normalise({**locked.snapshot(), **written}),
                "external_id": answer.external_id,
            },
            correlation_id=correlation_id,
        )
        remote_issue_apply(
            connection=connection,
            remote=answer,
            trigger=Trigger.API,
            correlation_id=correlation_id,
            acknowledged=acknowledged,
            fetched_at=timezone.now(),
        )


def backoff(attempts: int) -> timedelta:
    """2^n minutes after the n-th failed attempt (SPEC §5)."""
    return timedelta(minutes=2 ** max(0, attempts - 1))


def _record_failure(
    *, issue: Issue, rows: list[OutboxEntry], error: ProviderError, report: DrainReport
) -> None:
    """Each row spends its own retry budget: a fresh edit coalesced with a row on its last
    attempt is not failed with it."""
    now = timezone.now()
    message = str(error)[:2000]
    exhausted = [r for r in rows if error.permanent or r.attempts >= MAX_ATTEMPTS]
    retrying = [r for r in rows if r not in exhausted]
    retry_at = None
    with transaction.atomic():
        if exhausted:
            report.failed += 1
            OutboxEntry.objects.filter(id__in=[r.id for r in exhausted]).update(
                status=OutboxStatus.FAILED, claimed_until=None, last_error=message
            )
            Issue.objects.filter(pk=issue.pk).update(
                sync_status=SyncStatus.ERROR, sync_error=message
            )
            event_record(
                type=EventType.PUSH_FAILED,
                connection_id=issue.connection_id,
                issue_id=issue.pk,
                data={"outbox_entries": [r.id for r in exhausted], "error": message[:500]},
            )
        if retrying:
            report.retried += 1
        for row in retrying:
            delay = backoff(row.attempts)
            if isinstance(error, RateLimitedError):
                delay = max(delay, timedelta(seconds=error.retry_after))
            retry_at = max(retry_at or now, now + delay)
            OutboxEntry.objects.filter(id=row.id).update(
                status=OutboxStatus.PENDING,
                claimed_until=None,
                last_error=message,
                next_attempt_at=now + delay,
            )
        if isinstance(error, RateLimitedError) and retry_at is not None:
            # The whole connection waits, not just this issue: its other rows would each
            # spend a refused request too.
            Connection.objects.filter(pk=issue.connection_id).filter(
                Q(rate_limited_until__isnull=True) | Q(rate_limited_until__lt=retry_at)
            ).update(rate_limited_until=retry_at)
    logger.warning(
        "push_failed",
        permanent=bool(exhausted) and not retrying,
        attempts=sorted(r.attempts for r in rows),
        retry_at=retry_at.isoformat() if retry_at else None,
        error=message,
    )


@transaction.atomic
def outbox_retry(*, entry_ids: list[int]) -> int:
    """Admin "Retry now" / "Requeue failed": due immediately, attempts reset for failed rows."""
    now = timezone.now()
    rows = OutboxEntry.objects.filter(
        id__in=entry_ids, status__in=[OutboxStatus.FAILED, OutboxStatus.PENDING]
    )
    issue_ids = sorted(set(rows.values_list("issue_id", flat=True)))
    requeued = rows.update(
        status=OutboxStatus.PENDING, next_attempt_at=now, attempts=0, claimed_until=None
    )
    # The change is unacknowledged again, not in error: the issue says `pending` (SPEC §6).
    for issue in Issue.objects.select_for_update().filter(pk__in=issue_ids).order_by("pk"):
        refresh_sync_status(issue)
    return requeued

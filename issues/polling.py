"""Polling and reconciliation: the nets under the webhooks (SPEC §5).

Incremental: issues changed since the cursor (minus an overlap), one conditional request
when nothing changed. Full: every issue, a page at a time through the engine's batch
(`apply_remote_batch`: new and changed rows written in bulk; a row whose stored digest says
it is unchanged is skipped before any lock), plus the only way deletions in the tracker are
noticed. A connection-level lease stops two runs from overlapping.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from integrations.models import Connection
from integrations.providers import UnknownProviderError
from integrations.providers.base import (
    NotFoundError,
    ProviderClient,
    ProviderError,
    RateLimitedError,
    RemoteIssue,
)
from integrations.providers.registry import capabilities, client_for
from integrations.services import WebhookRegistrationError, connection_webhook_ensure
from issues.bulk import ensure_statistics
from issues.canonical import remote_snapshot, remote_state_hash
from issues.engine import RemoteState
from issues.models import (
    Issue,
    RemoteTombstone,
    RunKind,
    SyncRun,
    Trigger,
)
from issues.services.sync import remote_batch_apply, remote_deletion_apply
from syndarix_sync.logs import correlation, get_logger
from syndarix_sync.metrics import SYNC_DURATION, SYNC_OPERATIONS

logger = get_logger(__name__)

CURSOR_OVERLAP = timedelta(seconds=5)
RUN_LEASE = timedelta(minutes=30)
# A remote change older than this that no webhook brought means webhooks are not arriving.
WEBHOOK_GRACE = timedelta(seconds=120)
UNHEALTHY_POLL_SECONDS = 60
TOMBSTONE_TTL = timedelta(days=30)
# Listed issues applied per transaction (a page is one batch; an incremental listing is cut).
LISTING_BATCH = 500
# How often a full pass writes its progress (seconds).
PROGRESS_INTERVAL = 1.0


class SyncAlreadyRunning(Exception):
    pass


@dataclasses.dataclass
class RunCounts:
    seen: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    conflicts: int = 0
    failed: int = 0
    drift: int = 0
    requests: int = 0
    missed_by_webhooks: int = 0


def _acquire(connection_id: int) -> bool:
    now = timezone.now()
    return bool(
        Connection.objects.filter(pk=connection_id)
        .filter(Q(sync_lock_until__isnull=True) | Q(sync_lock_until__lt=now))
        .update(sync_lock_until=now + RUN_LEASE)
    )


def _release(connection_id: int) -> None:
    Connection.objects.filter(pk=connection_id).update(sync_lock_until=None)


def _tally(counts: RunCounts, outcome: str, conflicts: int) -> None:
    counts.conflicts += conflicts
    if outcome in ("created", "linked"):
        counts.created += 1
    elif outcome in ("updated", "conflict"):
        counts.updated += 1
    elif outcome == "deleted":
        counts.deleted += 1
    else:
        counts.unchanged += 1


def sync_connection(*, connection_id: int, full: bool, trigger: str = "") -> SyncRun:
    """Run one incremental or full sync of a connection and record it as a SyncRun.

    A run never calls a tracker that asked us to wait (`rate_limited_until`), and never
    clears that pause: only time does. A client that cannot be built (unknown provider, bad
    configuration) fails the run with its message; the lock is released either way.
    """
    if not _acquire(connection_id):
        raise SyncAlreadyRunning(f"a sync of connection {connection_id} is already running")
    connection = Connection.objects.get(pk=connection_id)
    kind = RunKind.RECONCILE if full else RunKind.POLL
    if trigger == Trigger.MANUAL:
        kind = RunKind.MANUAL
    run = SyncRun.objects.create(connection=connection, kind=kind, full=full)
    # A poll answers to nobody's request: it gets its own id (or keeps the one of the API
    # call that triggered it), so its sync log rows and tracker calls can be found together.
    with correlation(None, connection=connection.pk, sync_run=run.pk):
        started = timezone.now()
        counts = RunCounts()
        cursor = _Cursor()
        client: ProviderClient | None = None
        try:
            paused = connection.rate_limited_until
            if paused is not None and paused > started:
                raise RateLimitedError(
                    f"rate limited until {paused.isoformat()}: the run did not call the tracker",
                    retry_after=int((paused - started).total_seconds()) + 1,
                )
            client = client_for(connection)
            if full:
                _full(connection, client, counts, run, cursor)
                _recheck_webhook(connection, run)
            else:
                _incremental(connection, client, counts, cursor)
            run.success = True
        except ProviderError as exc:
            run.success = False
            run.error = f"{'permanent' if exc.permanent else 'transient'}: {exc}"[:4000]
            if isinstance(exc, RateLimitedError) and client is not None:
                _pause(connection.pk, timezone.now() + timedelta(seconds=exc.retry_after))
        except Exception as exc:
            # Not the tracker's answer: a client that could not be built, or a bug. The run
            # is marked failed (not left "running") and the lock released below.
            run.success = False
            run.error = f"error: {type(exc).__name__}: {exc}"[:4000]
            logger.exception("sync_run_crashed")
        finally:
            if client is not None:
                client.close()
                counts.requests = client.requests_made
            for name, value in dataclasses.asdict(counts).items():
                if hasattr(run, name):
                    setattr(run, name, value)
            run.finished_at = timezone.now()
            run.save()
            SYNC_DURATION.labels(platform=connection.provider).observe(
                (run.finished_at - run.started_at).total_seconds()
            )
            if not run.success:
                SYNC_OPERATIONS.labels(platform=connection.provider, status="failed").inc()
            updates: dict[str, Any] = {"last_polled_at": run.finished_at, "sync_lock_until": None}
            if run.success:
                if full:
                    updates["last_full_sync_at"] = started
                # The cursor is on the tracker's clock: the newest `updated_at` it listed
                # (never our clock, which a skewed tracker's stamps cannot be compared to).
                # Never moved back, never moved by a failed run.
                if cursor.newest is not None and (
                    connection.poll_cursor is None or connection.poll_cursor < cursor.newest
                ):
                    updates["poll_cursor"] = cursor.newest
            updates.update(_webhook_health(connection, counts, run))
            Connection.objects.filter(pk=connection.pk).update(**updates)
        log = logger.info if run.success else logger.warning
        log(
            "sync_run_finished",
            kind=kind,
            full=full,
            success=run.success,
            error=run.error or None,
            seen=counts.seen,
            requests=counts.requests,
            duration_ms=round((run.finished_at - run.started_at).total_seconds() * 1000, 1),
        )
    return run


def _recheck_webhook(connection: Connection, run: SyncRun) -> None:
    """The daily reconciliation re-checks the hook "Register webhook" put on the tracker and
    repairs a deleted or disabled one. Never fails the sync: a failure is noted on the run."""
    if connection.webhook_registered_at is None:
        return
    try:
        outcome = connection_webhook_ensure(connection=connection)
    except WebhookRegistrationError as exc:
        run.error = f"webhook check failed: {exc.message}"[:4000]
        logger.warning("webhook_recheck_failed", code=exc.code, error=exc.message)
        return
    except Exception as exc:  # the sync itself succeeded: say why, go on
        run.error = f"webhook check failed: {type(exc).__name__}: {exc}"[:4000]
        logger.exception("webhook_recheck_crashed")
        return
    if outcome.result != "unchanged":
        logger.warning("webhook_repaired", result=outcome.result, notes=outcome.notes)


def _pause(connection_id: int, until: datetime) -> None:
    """Extend (never shorten) the connection's rate-limit pause."""
    Connection.objects.filter(pk=connection_id).filter(
        Q(rate_limited_until__isnull=True) | Q(rate_limited_until__lt=until)
    ).update(rate_limited_until=until)


@dataclasses.dataclass
class _Cursor:
    """The newest remote `updated_at` a run saw: the next poll's cursor."""

    newest: datetime | None = None

    def see(self, remote: RemoteIssue) -> None:
        if remote.updated_at is not None and (
            self.newest is None or remote.updated_at > self.newest
        ):
            self.newest = remote.updated_at


def _has_webhooks(provider: str) -> bool:
    """Whether the tracker sends webhooks at all (Capabilities.webhooks); only then can missing
    deliveries make a connection unhealthy and poll it faster."""
    try:
        return capabilities(provider).webhooks
    except UnknownProviderError:
        return True  # no client: it is never synced, keep the rule as it was


def _webhook_health(connection: Connection, counts: RunCounts, run: SyncRun) -> dict[str, Any]:
    if not _has_webhooks(connection.provider):
        return {}  # polled only: a change the poll finds is how changes arrive, not a miss
    if counts.missed_by_webhooks and connection.webhook_healthy:
        return {"webhook_healthy": False, "webhook_unhealthy_since": run.finished_at}
    if (
        not connection.webhook_healthy
        and connection.last_webhook_at
        and connection.webhook_unhealthy_since
        and connection.last_webhook_at > connection.webhook_unhealthy_since
        and not counts.missed_by_webhooks
    ):
        return {"webhook_healthy": True, "webhook_unhealthy_since": None}
    return {}


def _apply_listed(
    connection: Connection,
    remotes: list[RemoteIssue],
    counts: RunCounts,
    trigger: str,
    *,
    listed_at: datetime,
) -> None:
    """Listed issues through the one inbound path, a batch at a time."""
    for start in range(0, len(remotes), LISTING_BATCH):
        chunk = remotes[start : start + LISTING_BATCH]
        results = remote_batch_apply(
            connection=connection,
            states=[RemoteState(remote, trigger, fetched_at=listed_at) for remote in chunk],
        )
        missed_before = timezone.now() - WEBHOOK_GRACE
        for remote, result in zip(chunk, results, strict=True):
            _tally(counts, result.outcome, result.conflicts)
            if result.changed:
                counts.drift += 1
                if remote.updated_at and remote.updated_at < missed_before:
                    counts.missed_by_webhooks += 1


def _incremental(
    connection: Connection, client: ProviderClient, counts: RunCounts, cursor: _Cursor
) -> None:
    since = connection.poll_cursor - CURSOR_OVERLAP if connection.poll_cursor else None
    listed_at = timezone.now()
    result = client.list_issues(since=since, etag=connection.poll_etag or None)
    counts.requests = result.requests
    if result.not_modified:
        return
    seen_ids: set[str] = set()
    for remote in result.issues:
        cursor.see(remote)
        if remote.external_id not in seen_ids:  # a page shift can list one issue twice
            counts.seen += 1
        seen_ids.add(remote.external_id)
    _apply_listed(connection, list(result.issues), counts, Trigger.POLL, listed_at=listed_at)
    Connection.objects.filter(pk=connection.pk).update(poll_etag=result.etag or "")


def _full(
    connection: Connection, client: ProviderClient, counts: RunCounts, run: SyncRun, cursor: _Cursor
) -> None:
    """List everything; skip the issues whose state is the one last applied (same digest,
    no lock, no write), apply each page's others as one batch, then apply the delete policy
    to what the tracker no longer has — each absence confirmed by a GET first."""
    known: dict[str, dict[str, Any]] = {
        str(row["external_id"]): dict(row)
        for row in Issue.objects.filter(connection=connection, external_id__isnull=False).values(
            "external_id", "external_number", "remote_hash"
        )
    }
    seen_ids: set[str] = set()
    pass_started = timezone.now()
    progress_at: float | None = None
    pages = iter(client.iter_issue_pages(since=None))
    asking_at = timezone.now()
    while True:
        # When this page was asked for, at the latest: a tombstone written after it is newer
        # than the page. The listing runs a page ahead, so page n+1 was asked for as page n
        # was handed over: the time before the previous `next()`, not this one's.
        listed_at, asking_at = asking_at, timezone.now()
        page = next(pages, None)
        if page is None:
            break
        to_apply: list[RemoteIssue] = []
        for remote in page:
            cursor.see(remote)
            # Listed twice (an edit during the pass moved it onto a later page): counted
            # once, applied again — the later copy is the newer one.
            if remote.external_id not in seen_ids:
                counts.seen += 1
            seen_ids.add(remote.external_id)
            row = known.get(remote.external_id)
            if row is not None and row["remote_hash"] == remote_state_hash(
                remote, remote_snapshot(remote)
            ):
                counts.unchanged += 1
                continue
            to_apply.append(remote)
        if to_apply:
            created_before = counts.created
            _apply_listed(connection, to_apply, counts, Trigger.RECONCILE, listed_at=listed_at)
            if not created_before and counts.created:  # the pass's first new rows
                ensure_statistics(Issue)
        # Progress for the admin: issues seen so far of what the tracker announced. Written
        # after the first page, then at most every PROGRESS_INTERVAL: each write is a commit
        # of its own (one per page doubled a 10,000-issue import's commits).
        total = client.listing_total
        run.total = max(total, counts.seen) if total is not None else None
        now = time.monotonic()
        if progress_at is None or now - progress_at >= PROGRESS_INTERVAL:
            progress_at = now
            SyncRun.objects.filter(pk=run.pk).update(seen=counts.seen, total=run.total)
    _settle_tombstones(connection, seen_ids, listed_before=pass_started)
    gone = set(known) - seen_ids
    for external_id in sorted(gone):
        _confirm_absence(connection, client, known[external_id], counts)


def _confirm_absence(
    connection: Connection, client: ProviderClient, row: dict[str, Any], counts: RunCounts
) -> None:
    """ "Not listed" is not "deleted": a listing paged by number over a list sorted by
    `updated` skips an issue that an edit during the pass pushed across a page boundary.
    Only the tracker's 404/410 for the issue itself is a deletion."""
    read_at = timezone.now()
    try:
        remote = client.get_issue(str(row["external_number"]))
    except NotFoundError:
        result = remote_deletion_apply(
            connection=connection, external_id=str(row["external_id"]), trigger=Trigger.RECONCILE
        )
        if result.outcome in ("deleted", "kept"):
            counts.deleted += 1
            counts.drift += 1
        return
    if remote.external_id != str(row["external_id"]):
        return  # the number now names another issue (a transfer): leave it to the webhooks
    _apply_listed(connection, [remote], counts, Trigger.RECONCILE, listed_at=read_at)


def _settle_tombstones(
    connection: Connection, seen_ids: set[str], *, listed_before: datetime
) -> None:
    """A complete listing is the tracker's word — but only about tombstones written before
    it started: a deletion processed during the pass is newer than the pages that list the
    issue. One older than TOMBSTONE_TTL has outlived any delivery still in flight."""
    stale_before = timezone.now() - TOMBSTONE_TTL
    obsolete = [
        pk
        for pk, external_id, deleted_at in RemoteTombstone.objects.filter(
            connection=connection
        ).values_list("pk", "external_id", "deleted_at")
        if (external_id in seen_ids and deleted_at < listed_before) or deleted_at < stale_before
    ]
    RemoteTombstone.objects.filter(pk__in=obsolete).delete()


def due_connections() -> list[int]:
    """Enabled connections whose poll interval (shorter while webhooks are unhealthy) is up."""
    now = timezone.now()
    due = []
    for connection in Connection.objects.filter(enabled=True).only(
        "id",
        "provider",
        "last_polled_at",
        "poll_interval_seconds",
        "webhook_healthy",
        "rate_limited_until",
    ):
        if connection.rate_limited_until and connection.rate_limited_until > now:
            continue  # the tracker asked us to wait
        interval = connection.poll_interval_seconds
        if not connection.webhook_healthy and _has_webhooks(connection.provider):
            interval = min(interval, UNHEALTHY_POLL_SECONDS)
        if connection.last_polled_at is None or (
            connection.last_polled_at + timedelta(seconds=interval) <= now
        ):
            due.append(connection.pk)
    return due

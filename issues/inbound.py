"""Processing of stored webhook deliveries (the task side of the intake), a batch at a time.

A worker claims up to WEBHOOK_BATCH_SIZE stored deliveries (`FOR UPDATE SKIP LOCKED`: two
workers never claim the same one), parses them, keeps per issue only the newest full state,
applies those through the engine's batch (`apply_remote_batch`) and marks every delivery of
the batch done — all in one transaction, so a worker that dies mid-batch rolls all of it back
and the deliveries are claimed again. Nothing acknowledged is lost; nothing is applied twice.

A delivery whose issue must first be read from the tracker (the payload lacks the full state,
or the same second carries other content) is claimed with a lease instead, committed before
the call, and read and applied afterwards: no network call ever happens inside a transaction.
The lease, and the sweep that re-queues what nobody finished, are the net under all of it.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations import providers
from integrations.models import Connection, DeliveryStatus, WebhookDelivery
from integrations.providers.base import (
    EventKind,
    NotFoundError,
    ProviderError,
    RemoteIssue,
    WebhookEvent,
    WebhookPayloadError,
)
from integrations.providers.delivery import parse_delivery
from integrations.providers.registry import client_for
from issues.canonical import remote_snapshot
from issues.engine import RemoteState
from issues.models import Trigger
from issues.services.sync import remote_batch_apply, remote_deletion_apply, remote_issue_apply
from syndarix_sync.logs import correlation, get_logger

logger = get_logger(__name__)

MAX_DELIVERY_ATTEMPTS = 5
# A drain hands its worker back after this long (and queues its own continuation), so pushes
# and polls queued behind it get their turn.
DRAIN_SLICE_SECONDS = 5.0
COALESCED = "coalesced"  # the outcome of a delivery whose state a newer one of its issue carried


def processing_lease() -> timedelta:
    return timedelta(seconds=settings.WEBHOOK_PROCESSING_LEASE_SECONDS)


def sweep_after() -> timedelta:
    return timedelta(seconds=settings.WEBHOOK_SWEEP_AFTER_SECONDS)


def _claimable() -> Q:
    """A delivery named by id: not processed yet, failed (the sweep's retry, an operator's),
    or claimed by a worker whose lease ran out (presumed dead)."""
    return Q(status__in=[DeliveryStatus.RECEIVED, DeliveryStatus.FAILED]) | Q(
        status=DeliveryStatus.PROCESSING, processed_at__lt=timezone.now() - processing_lease()
    )


def _due() -> Q:
    """What a drain claims: not processed yet, leased to a worker presumed dead, or failed a
    while ago with tries left — a failure is not retried at once, in a loop."""
    now = timezone.now()
    return (
        Q(status=DeliveryStatus.RECEIVED)
        | Q(status=DeliveryStatus.PROCESSING, processed_at__lt=now - processing_lease())
        | Q(
            status=DeliveryStatus.FAILED,
            attempts__lt=MAX_DELIVERY_ATTEMPTS,
            processed_at__lt=now - sweep_after(),
        )
    )


def _finish(delivery: WebhookDelivery, status: str, error: str = "") -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=status,
        processed_at=timezone.now(),
        error=error[:4000],
        attempts=delivery.attempts + 1,
    )


def _finish_all(ids: Iterable[int], status: str, error: str = "") -> None:
    """Many deliveries of one outcome in one statement."""
    ids = list(ids)
    if ids:
        WebhookDelivery.objects.filter(pk__in=ids).update(
            status=status,
            processed_at=timezone.now(),
            error=error[:4000],
            attempts=F("attempts") + 1,
        )


# --- the drain ----------------------------------------------------------------------------


def drain_deliveries(*, slice_seconds: float = DRAIN_SLICE_SECONDS) -> dict[int, str]:
    """Process stored deliveries a batch at a time until none is left to claim, or the time
    slice is used up (then a continuation is queued). Returns delivery id → outcome.

    The wake-up flag stays up while the drain finds work, so deliveries stored meanwhile
    publish nothing (they are claimed by a later round); it comes down only once a claim
    finds nothing — then one more claim takes whatever was stored before it came down."""
    from issues.tasks import deliveries_wake_flag, process_webhook_event
    from syndarix_sync.queueing import publish, woken

    flag = deliveries_wake_flag()
    outcomes: dict[int, str] = {}
    started = time.monotonic()
    try:
        while True:
            done = process_batch()
            if not done:
                woken(flag)  # from now on a stored delivery wakes a drain itself
                done = process_batch()
                if not done:
                    return outcomes
            outcomes.update(done)
            if time.monotonic() - started > slice_seconds:
                publish(process_webhook_event)
                return outcomes
    except BaseException:
        woken(flag)  # a failed drain must not keep the next wake-up from being sent
        raise


def process_delivery(delivery_id: int) -> str:
    """Apply one stored delivery (a batch of one); its outcome, or "not-claimable"."""
    outcome = process_batch(ids=[delivery_id]).get(delivery_id)
    if outcome is None:
        logger.debug("delivery_not_claimable", delivery=delivery_id)
        return "not-claimable"
    return outcome


@dataclasses.dataclass
class _Claimed:
    delivery: WebhookDelivery
    event: WebhookEvent


def process_batch(*, ids: Sequence[int] | None = None, limit: int | None = None) -> dict[int, str]:
    """Claim up to `limit` (WEBHOOK_BATCH_SIZE) deliveries, oldest first — or the given ones —
    and process them; delivery id → outcome, empty when there was nothing to claim."""
    limit = limit or settings.WEBHOOK_BATCH_SIZE
    outcomes: dict[int, str] = {}
    to_read: list[_Claimed] = []
    with transaction.atomic():
        claim = WebhookDelivery.objects.select_for_update(skip_locked=True)
        claim = claim.filter(_due()) if ids is None else claim.filter(_claimable(), pk__in=ids)
        deliveries = list(claim.order_by("id")[:limit])
        if not deliveries:
            return {}
        # Each connection loaded (and its secrets decrypted) once per batch, not per delivery.
        connections = Connection.objects.in_bulk(
            {d.connection_id for d in deliveries if d.connection_id is not None}
        )
        finished: dict[tuple[str, str], list[int]] = {}
        claimed: list[_Claimed] = []
        for delivery in deliveries:
            if delivery.connection_id is not None:
                delivery.connection = connections.get(delivery.connection_id)
            event, status, error = _parse(delivery)
            if event is None:
                finished.setdefault((status, error), []).append(delivery.pk)
                outcomes[delivery.pk] = "ignored" if status == DeliveryStatus.IGNORED else "failed"
            else:
                claimed.append(_Claimed(delivery, event))
        for (status, error), done in finished.items():
            _finish_all(done, status, error)
        to_read = _apply_claimed(claimed, outcomes)
        if to_read:
            WebhookDelivery.objects.filter(pk__in=[c.delivery.pk for c in to_read]).update(
                status=DeliveryStatus.PROCESSING, processed_at=timezone.now()
            )
    for item in to_read:
        with _bound(item.delivery):
            outcomes[item.delivery.pk] = _read_then_apply(item.delivery, item.event)
    by_id = {d.pk: d for d in deliveries}
    for delivery_id, outcome in outcomes.items():
        with _bound(by_id[delivery_id]):
            _log_outcome(by_id[delivery_id], outcome)
    return outcomes


def _apply_claimed(claimed: list[_Claimed], outcomes: dict[int, str]) -> list[_Claimed]:
    """Apply the claimed deliveries (in the caller's transaction); returns those to read from
    the tracker after the commit. Per issue only the newest full state is merged; the others
    end `processed` as well, covered by it."""
    plan = _Plan.of(claimed)
    try:
        with transaction.atomic():
            plan.apply(outcomes)
    except (OperationalError, InterfaceError):
        raise  # the database is unreachable: nothing was committed, the sweep retries
    except DatabaseError:
        # The database refused some payload's data (all of the batch was rolled back): one
        # delivery at a time, so that only that one fails (counted as an attempt).
        for item in claimed:
            outcomes.pop(item.delivery.pk, None)
        return _one_at_a_time(claimed, outcomes)
    _finish_all(plan.applied(), DeliveryStatus.PROCESSED)
    return plan.to_read


def _one_at_a_time(claimed: list[_Claimed], outcomes: dict[int, str]) -> list[_Claimed]:
    to_read: list[_Claimed] = []
    for item in claimed:
        delivery, event = item.delivery, item.event
        if _needs_read(event):
            to_read.append(item)
            continue
        outcome = _guarded(delivery, functools.partial(_apply_one, delivery, event))
        if outcome == "reread":
            to_read.append(item)
        else:
            outcomes[delivery.pk] = outcome
    return to_read


@dataclasses.dataclass
class _Plan:
    """What a batch does: per connection, the newest full state of each issue (one batch
    of the engine); the issues a deletion names, their deliveries in order, one by one; the
    deliveries to read from the tracker; and what each of the others was covered by."""

    states: dict[int, list[_Claimed]] = dataclasses.field(default_factory=dict)
    in_order: list[list[_Claimed]] = dataclasses.field(default_factory=list)
    to_read: list[_Claimed] = dataclasses.field(default_factory=list)
    covered: list[_Claimed] = dataclasses.field(default_factory=list)
    done: list[int] = dataclasses.field(default_factory=list)

    @classmethod
    def of(cls, claimed: list[_Claimed]) -> _Plan:
        plan = cls()
        by_issue: dict[tuple[int, str], list[_Claimed]] = {}
        reads: dict[tuple[int, str], list[_Claimed]] = {}
        for item in claimed:  # in delivery order
            connection_id = int(item.delivery.connection_id or 0)
            event = item.event
            if _needs_read(event):
                number = str(event.issue_number or (event.issue.number if event.issue else ""))
                reads.setdefault((connection_id, number), []).append(item)
            else:
                external_id = str(
                    event.issue.external_id if event.issue else event.issue_external_id
                )
                by_issue.setdefault((connection_id, external_id), []).append(item)
        for items in reads.values():
            # One read of the issue serves all of them: the tracker's state now.
            plan.to_read.append(items[-1])
            plan.covered += items[:-1]
        for (connection_id, _), items in by_issue.items():
            if any(i.event.kind == EventKind.ISSUE_DELETED for i in items):
                plan.in_order.append(items)
                continue
            newest = _newest(items)
            if newest is None:
                # The same latest second with other content: which is newer cannot be told
                # from the payloads; the tracker is asked.
                plan.to_read.append(items[-1])
                plan.covered += items[:-1]
                continue
            plan.states.setdefault(connection_id, []).append(newest)
            plan.covered += [i for i in items if i is not newest]
        return plan

    def apply(self, outcomes: dict[int, str]) -> None:
        for connection_id in sorted(self.states):  # one lock order for every worker
            items = self.states[connection_id]
            connection = items[0].delivery.connection
            assert connection is not None
            results = remote_batch_apply(
                connection=connection,
                states=[
                    RemoteState(
                        i.event.issue,  # type: ignore[arg-type]  # a full state (_needs_read)
                        Trigger.WEBHOOK,
                        correlation_id=i.delivery.correlation_id,
                    )
                    for i in items
                ],
            )
            for item, result in zip(items, results, strict=True):
                if result.outcome == "reread":
                    self.to_read.append(item)  # not finished: read and applied after commit
                else:
                    outcomes[item.delivery.pk] = result.outcome
                    self.done.append(item.delivery.pk)
        for items in self.in_order:
            for item in items:
                with _bound(item.delivery):
                    outcome = _apply_one(item.delivery, item.event)  # finishes it
                if outcome == "reread":
                    self.to_read.append(item)
                else:
                    outcomes[item.delivery.pk] = outcome
        for item in self.covered:
            outcomes[item.delivery.pk] = COALESCED

    def applied(self) -> list[int]:
        return self.done + [i.delivery.pk for i in self.covered]


def _newest(items: list[_Claimed]) -> _Claimed | None:
    """The delivery with the newest full state, or None when the latest second (trackers
    stamp to the second, as the engine's stale guard compares) carries two different states.
    Of equal states, the last received."""
    remotes = [(item, item.event.issue) for item in items]
    stamped = [(item, r, r.updated_at) for item, r in remotes if r is not None and r.updated_at]
    second = max(stamp.replace(microsecond=0) for _, _, stamp in stamped)
    latest = [(item, r, stamp) for item, r, stamp in stamped if stamp >= second]
    if len({repr(remote_snapshot(r)) for _, r, _ in latest}) > 1:
        return None
    newest = max(stamp for _, _, stamp in latest)
    return [item for item, _, stamp in latest if stamp == newest][-1]


def _bound(delivery: WebhookDelivery) -> AbstractContextManager[str]:
    # The id the intake stored binds every line below, also when the sweep re-queued this
    # delivery hours later from another process.
    return correlation(
        delivery.correlation_id or None,
        delivery=delivery.pk,
        provider=delivery.provider,
        connection=delivery.connection_id,
    )


def _log_outcome(delivery: WebhookDelivery, outcome: str) -> None:
    log = logger.warning if outcome == "failed" else logger.info
    log("delivery_processed", webhook_event=delivery.event, outcome=outcome)


def _parse(delivery: WebhookDelivery) -> tuple[WebhookEvent | None, str, str]:
    """(the event to apply, "", ""), or (None, the status and error to finish it with)."""
    connection = delivery.connection
    if connection is None or not connection.enabled:
        return None, DeliveryStatus.IGNORED, "no enabled connection"
    verifier = providers.webhooks(delivery.provider)
    try:
        event = parse_delivery(
            verifier,
            event=delivery.event,
            body=bytes(delivery.body),
            headers=delivery.headers or {},
            base_url=connection.base_url,
        )
    except WebhookPayloadError as exc:
        return None, DeliveryStatus.FAILED, f"unparsable: {exc}"
    if event.kind == EventKind.ISSUE and (event.issue is not None or event.issue_number):
        return event, "", ""
    if event.kind == EventKind.ISSUE_DELETED and event.issue_external_id:
        return event, "", ""
    # Comments are parsed now and stored with the delivery; applying them comes with the
    # comments capability.
    return None, DeliveryStatus.IGNORED, f"{event.kind} events are not applied"


def _needs_read(event: WebhookEvent) -> bool:
    # The payload names the issue but cannot give its full state (GitLab sends only
    # milestone/assignee ids), or has no timestamp for the stale guard.
    return event.kind == EventKind.ISSUE and (event.issue is None or event.issue.updated_at is None)


def _apply_one(
    delivery: WebhookDelivery,
    event: WebhookEvent,
    remote: RemoteIssue | None = None,
    *,
    fetched_at: datetime | None = None,
) -> str:
    """One delivery's deletion or state (a read's answer when `remote` is given)."""
    connection = delivery.connection
    assert connection is not None
    remote = remote if remote is not None else event.issue
    if event.kind == EventKind.ISSUE_DELETED or remote is None:
        outcome = remote_deletion_apply(
            connection=connection,
            external_id=str(event.issue_external_id),
            trigger=Trigger.WEBHOOK,
            correlation_id=delivery.correlation_id,
        ).outcome
    else:
        outcome = remote_issue_apply(
            connection=connection,
            remote=remote,
            trigger=Trigger.WEBHOOK,
            correlation_id=delivery.correlation_id,
            fetched_at=fetched_at,
        ).outcome
        if outcome == "reread":
            return outcome  # not finished: the caller reads the issue and applies that
    _finish(delivery, DeliveryStatus.PROCESSED)
    return outcome


def _guarded(delivery: WebhookDelivery, apply: Callable[[], str]) -> str:
    try:
        with transaction.atomic():
            return apply()
    except (OperationalError, InterfaceError):
        raise  # the database is unreachable: nothing was committed, the sweep retries
    except DatabaseError as exc:
        # The database refused this payload's data: counted as an attempt, so the sweep
        # stops after MAX_DELIVERY_ATTEMPTS instead of retrying it forever.
        _finish(delivery, DeliveryStatus.FAILED, f"could not store: {exc}")
        return "failed"


def _read_then_apply(delivery: WebhookDelivery, event: WebhookEvent) -> str:
    connection = delivery.connection
    assert connection is not None
    read_at = timezone.now()
    try:
        client = client_for(connection)
    except Exception as exc:  # noqa: BLE001 - an unknown provider or bad config: fail visibly
        _finish(delivery, DeliveryStatus.FAILED, f"no client: {type(exc).__name__}: {exc}")
        return "failed"
    try:
        remote = client.get_issue(str(event.issue_number or event.issue.number))  # type: ignore[union-attr]
    except NotFoundError:
        if event.issue_external_id:
            deletion = dataclasses.replace(event, kind=EventKind.ISSUE_DELETED)
            return _guarded(delivery, lambda: _apply_one(delivery, deletion))
        _finish(delivery, DeliveryStatus.PROCESSED, "issue no longer exists")
        return "missing"
    except ProviderError as exc:
        _finish(delivery, DeliveryStatus.FAILED, str(exc))
        return "failed"
    finally:
        client.close()
    return _guarded(delivery, lambda: _apply_one(delivery, event, remote, fetched_at=read_at))


def stuck_deliveries(limit: int = 500) -> list[int]:
    """Deliveries stored but not processed after a minute (queue down, worker killed)."""
    cutoff = timezone.now() - sweep_after()
    stale_processing = timezone.now() - processing_lease()
    with transaction.atomic():
        return list(
            WebhookDelivery.objects.filter(
                Q(status=DeliveryStatus.RECEIVED, received_at__lt=cutoff)
                | Q(status=DeliveryStatus.PROCESSING, processed_at__lt=stale_processing)
                # A transient failure (tracker down while re-reading) gets a few more tries.
                | Q(
                    status=DeliveryStatus.FAILED,
                    attempts__lt=MAX_DELIVERY_ATTEMPTS,
                    processed_at__lt=cutoff,
                )
            )
            .order_by("received_at")
            .values_list("id", flat=True)[:limit]
        )

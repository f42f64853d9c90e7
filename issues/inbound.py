"""Processing of stored webhook deliveries (the task side of the intake)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from integrations import providers
from integrations.models import DeliveryStatus, WebhookDelivery
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
from issues.models import Trigger
from issues.services.sync import remote_deletion_apply, remote_issue_apply
from syndarix_sync.logs import correlation, get_logger

logger = get_logger(__name__)

MAX_DELIVERY_ATTEMPTS = 5


def processing_lease() -> timedelta:
    return timedelta(seconds=settings.WEBHOOK_PROCESSING_LEASE_SECONDS)


def sweep_after() -> timedelta:
    return timedelta(seconds=settings.WEBHOOK_SWEEP_AFTER_SECONDS)


def _claimable() -> Q:
    """Not processed yet, failed (the sweep's retry), or claimed by a worker whose lease ran
    out (presumed dead)."""
    return Q(status__in=[DeliveryStatus.RECEIVED, DeliveryStatus.FAILED]) | Q(
        status=DeliveryStatus.PROCESSING, processed_at__lt=timezone.now() - processing_lease()
    )


def _finish(delivery: WebhookDelivery, status: str, error: str = "") -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=status,
        processed_at=timezone.now(),
        error=error[:4000],
        attempts=delivery.attempts + 1,
    )


def process_delivery(delivery_id: int) -> str:
    """Apply one stored delivery.

    Most deliveries carry the issue's full state: they are locked, applied and marked done in
    one transaction — one commit instead of three, and no lease to expire, since a worker
    that dies mid-way rolls all of it back. A delivery whose issue must first be re-read from
    the tracker is claimed with a lease and committed before the call instead: no network
    call ever happens inside a transaction.
    """
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("connection")
            .filter(_claimable(), pk=delivery_id)
            .first()
        )
        if delivery is None:
            logger.debug("delivery_not_claimable", delivery=delivery_id)
            return "not-claimable"
        with _bound(delivery):
            event, outcome = _parse(delivery)
            if event is not None and not _needs_read(event):
                outcome = _guarded(delivery, lambda: _apply(delivery, event, event.issue))
                if outcome == "reread":
                    outcome = None  # the same second, other content: read it (below)
            if event is not None and outcome is None:
                WebhookDelivery.objects.filter(pk=delivery.pk).update(
                    status=DeliveryStatus.PROCESSING, processed_at=timezone.now()
                )
            if outcome is not None:
                _log_outcome(delivery, outcome)
                return outcome
    assert event is not None
    with _bound(delivery):
        outcome = _read_then_apply(delivery, event)
        _log_outcome(delivery, outcome)
        return outcome


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


def _parse(delivery: WebhookDelivery) -> tuple[WebhookEvent | None, str | None]:
    """(the event to apply, None), or (None, the outcome already recorded)."""
    connection = delivery.connection
    if connection is None or not connection.enabled:
        _finish(delivery, DeliveryStatus.IGNORED, "no enabled connection")
        return None, "ignored"
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
        _finish(delivery, DeliveryStatus.FAILED, f"unparsable: {exc}")
        return None, "failed"
    if event.kind == EventKind.ISSUE and (event.issue is not None or event.issue_number):
        return event, None
    if event.kind == EventKind.ISSUE_DELETED and event.issue_external_id:
        return event, None
    # Comments are parsed now and stored with the delivery; applying them comes with the
    # comments capability.
    _finish(delivery, DeliveryStatus.IGNORED, f"{event.kind} events are not applied")
    return None, "ignored"


def _needs_read(event: WebhookEvent) -> bool:
    # The payload names the issue but cannot give its full state (GitLab sends only
    # milestone/assignee ids), or has no timestamp for the stale guard.
    return event.kind == EventKind.ISSUE and (event.issue is None or event.issue.updated_at is None)


def _apply(
    delivery: WebhookDelivery,
    event: WebhookEvent,
    remote: RemoteIssue | None,
    *,
    fetched_at: datetime | None = None,
) -> str:
    connection = delivery.connection
    assert connection is not None
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
            return _guarded(delivery, lambda: _apply(delivery, event, None))
        _finish(delivery, DeliveryStatus.PROCESSED, "issue no longer exists")
        return "missing"
    except ProviderError as exc:
        _finish(delivery, DeliveryStatus.FAILED, str(exc))
        return "failed"
    finally:
        client.close()
    return _guarded(delivery, lambda: _apply(delivery, event, remote, fetched_at=read_at))


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

"""Processing of stored webhook deliveries (the task side of the intake)."""

from __future__ import annotations

import json
from datetime import timedelta

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
    WebhookPayloadError,
)
from issues.clients import client_for
from issues.engine import apply_remote_deletion, apply_remote_issue
from issues.models import Trigger
from syndarix_sync.logs import correlation, get_logger

logger = get_logger(__name__)

MAX_DELIVERY_ATTEMPTS = 5


def processing_lease() -> timedelta:
    return timedelta(seconds=settings.WEBHOOK_PROCESSING_LEASE_SECONDS)


def sweep_after() -> timedelta:
    return timedelta(seconds=settings.WEBHOOK_SWEEP_AFTER_SECONDS)


def _claim(delivery_id: int) -> WebhookDelivery | None:
    """Conditional update: only one worker processes a delivery, and a crashed worker's
    claim expires (a delivery stuck in `processing` past the lease is claimable again)."""
    now = timezone.now()
    stale = now - processing_lease()
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id)
        .filter(
            Q(status__in=[DeliveryStatus.RECEIVED, DeliveryStatus.FAILED])
            | Q(status=DeliveryStatus.PROCESSING, processed_at__lt=stale)
        )
        .update(status=DeliveryStatus.PROCESSING, processed_at=now)
    )
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("connection").get(pk=delivery_id)


def _finish(delivery: WebhookDelivery, status: str, error: str = "") -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=status,
        processed_at=timezone.now(),
        error=error[:4000],
        attempts=delivery.attempts + 1,
    )


def process_delivery(delivery_id: int) -> str:
    delivery = _claim(delivery_id)
    if delivery is None:
        logger.debug("delivery_not_claimable", delivery=delivery_id)
        return "not-claimable"
    # The id the intake stored binds every line below, also when the sweep re-queued this
    # delivery hours later from another process.
    with correlation(
        delivery.correlation_id or None,
        delivery=delivery.pk,
        provider=delivery.provider,
        connection=delivery.connection_id,
    ):
        try:
            outcome = _process(delivery)
        except (OperationalError, InterfaceError):
            raise  # the database is unreachable: the lease runs out and the sweep retries
        except DatabaseError as exc:
            # The database refused this payload's data: counted as an attempt, so the sweep
            # stops after MAX_DELIVERY_ATTEMPTS instead of retrying it forever.
            _finish(delivery, DeliveryStatus.FAILED, f"could not store: {exc}")
            outcome = "failed"
        log = logger.warning if outcome == "failed" else logger.info
        log("delivery_processed", webhook_event=delivery.event, outcome=outcome)
        return outcome


def _process(delivery: WebhookDelivery) -> str:
    connection = delivery.connection
    if connection is None or not connection.enabled:
        _finish(delivery, DeliveryStatus.IGNORED, "no enabled connection")
        return "ignored"
    verifier = providers.webhooks(delivery.provider)
    try:
        payload = json.loads(bytes(delivery.body))
        event = verifier.parse(event=delivery.event, payload=payload, base_url=connection.base_url)
    except (ValueError, WebhookPayloadError) as exc:
        _finish(delivery, DeliveryStatus.FAILED, f"unparsable: {exc}")
        return "failed"
    trigger = Trigger.WEBHOOK
    correlation_id = delivery.correlation_id
    if event.kind == EventKind.ISSUE and (event.issue is not None or event.issue_number):
        issue = event.issue
        if issue is None or issue.updated_at is None:
            # The payload names the issue but cannot give its full state (GitLab sends only
            # milestone/assignee ids), or has no timestamp for the stale guard: re-read it.
            client = client_for(connection)
            try:
                issue = client.get_issue(str(event.issue_number or issue.number))  # type: ignore[union-attr]
            except NotFoundError:
                if event.issue_external_id:
                    outcome = apply_remote_deletion(
                        connection=connection,
                        external_id=event.issue_external_id,
                        trigger=trigger,
                        correlation_id=correlation_id,
                    ).outcome
                    _finish(delivery, DeliveryStatus.PROCESSED)
                    return outcome
                _finish(delivery, DeliveryStatus.PROCESSED, "issue no longer exists")
                return "missing"
            except ProviderError as exc:
                _finish(delivery, DeliveryStatus.FAILED, str(exc))
                return "failed"
            finally:
                client.close()
        result = apply_remote_issue(
            connection=connection, remote=issue, trigger=trigger, correlation_id=correlation_id
        )
        outcome = result.outcome
    elif event.kind == EventKind.ISSUE_DELETED and event.issue_external_id:
        outcome = apply_remote_deletion(
            connection=connection,
            external_id=event.issue_external_id,
            trigger=trigger,
            correlation_id=correlation_id,
        ).outcome
    else:
        # Comments are parsed now and stored with the delivery; applying them comes with the
        # comments capability.
        _finish(delivery, DeliveryStatus.IGNORED, f"{event.kind} events are not applied")
        return "ignored"
    _finish(delivery, DeliveryStatus.PROCESSED)
    return outcome


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

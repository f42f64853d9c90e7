"""Processing of stored webhook deliveries (the task side of the intake)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from integrations import providers
from integrations.models import DeliveryStatus, WebhookDelivery
from integrations.providers.base import EventKind, ProviderError, WebhookPayloadError
from issues.clients import client_for
from issues.engine import apply_remote_deletion, apply_remote_issue
from issues.models import Trigger

logger = logging.getLogger(__name__)

PROCESSING_LEASE = timedelta(minutes=5)
SWEEP_AFTER = timedelta(minutes=1)


def _claim(delivery_id: int) -> WebhookDelivery | None:
    """Conditional update: only one worker processes a delivery, and a crashed worker's
    claim expires (a delivery stuck in `processing` past the lease is claimable again)."""
    now = timezone.now()
    stale = now - PROCESSING_LEASE
    claimed = WebhookDelivery.objects.filter(pk=delivery_id).filter(
        Q(status__in=[DeliveryStatus.RECEIVED, DeliveryStatus.FAILED])
        | Q(status=DeliveryStatus.PROCESSING, processed_at__lt=stale)
    ).update(status=DeliveryStatus.PROCESSING, processed_at=now)
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("connection").get(pk=delivery_id)


def _finish(delivery: WebhookDelivery, status: str, error: str = "") -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=status, processed_at=timezone.now(), error=error[:4000],
        attempts=delivery.attempts + 1,
    )


def process_delivery(delivery_id: int) -> str:
    delivery = _claim(delivery_id)
    if delivery is None:
        return "not-claimable"
    connection = delivery.connection
    if connection is None or not connection.enabled:
        _finish(delivery, DeliveryStatus.IGNORED, "no enabled connection")
        return "ignored"
    verifier = providers.webhooks(delivery.provider)
    try:
        import json

        payload = json.loads(bytes(delivery.body))
        event = verifier.parse(event=delivery.event, payload=payload, base_url=connection.base_url)
    except (ValueError, WebhookPayloadError) as exc:
        _finish(delivery, DeliveryStatus.FAILED, f"unparsable: {exc}")
        return "failed"
    trigger = Trigger.WEBHOOK
    correlation_id = delivery.correlation_id
    if event.kind == EventKind.ISSUE and event.issue is not None:
        issue = event.issue
        if issue.updated_at is None:
            # Without a timestamp the stale guard cannot work: read the issue instead.
            try:
                client = client_for(connection)
                issue = client.get_issue(issue.number)
            except ProviderError as exc:
                _finish(delivery, DeliveryStatus.FAILED, str(exc))
                return "failed"
        result = apply_remote_issue(connection=connection, remote=issue, trigger=trigger,
                                    correlation_id=correlation_id)
        outcome = result.outcome
    elif event.kind == EventKind.ISSUE_DELETED and event.issue_external_id:
        outcome = apply_remote_deletion(connection=connection,
                                        external_id=event.issue_external_id, trigger=trigger,
                                        correlation_id=correlation_id).outcome
    else:
        # Comments are parsed now and stored with the delivery; applying them comes with the
        # comments capability.
        _finish(delivery, DeliveryStatus.IGNORED, f"{event.kind} events are not applied")
        return "ignored"
    _finish(delivery, DeliveryStatus.PROCESSED)
    return outcome


def stuck_deliveries(limit: int = 500) -> list[int]:
    """Deliveries stored but not processed after a minute (queue down, worker killed)."""
    cutoff = timezone.now() - SWEEP_AFTER
    stale_processing = timezone.now() - PROCESSING_LEASE
    with transaction.atomic():
        return list(
            WebhookDelivery.objects.filter(
                Q(status=DeliveryStatus.RECEIVED, received_at__lt=cutoff)
                | Q(status=DeliveryStatus.PROCESSING, processed_at__lt=stale_processing)
            ).order_by("received_at").values_list("id", flat=True)[:limit]
        )

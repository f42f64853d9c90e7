"""Processing of stored webhook deliveries (the task side of the intake)."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from django.db import transaction
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

logger = logging.getLogger(__name__)

PROCESSING_LEASE = timedelta(minutes=5)
SWEEP_AFTER = timedelta(minutes=1)
MAX_DELIVERY_ATTEMPTS = 5


def _claim(delivery_id: int) -> WebhookDelivery | None:
    """Conditional update: only one worker processes a delivery, and a crashed worker's
    claim expires (a delivery stuck in `processing` past the lease is claimable again)."""
    now = timezone.now()
    stale = now - PROCESSING_LEASE
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
        return "not-claimable"
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
    cutoff = timezone.now() - SWEEP_AFTER
    stale_processing = timezone.now() - PROCESSING_LEASE
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

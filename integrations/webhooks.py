"""Webhook intake: verify, store durably, answer, queue processing after commit (SPEC §6).

Checks run in a fixed order, cheapest and safest first: provider known → body size → a
connection with a secret → body present → event known → signature (constant time) → only
then parse. Nothing is stored for 400/401/404/413; a redelivery answers 200 and does nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from integrations import providers
from integrations.models import Connection
from integrations.providers.base import EventKind, WebhookPayloadError, WebhookVerifier
from integrations.providers.delivery import decode_body, parse_delivery
from integrations.services import webhook_delivery_store
from syndarix_sync.json_depth import json_depth_within
from syndarix_sync.logs import get_logger, new_correlation_id
from syndarix_sync.metrics import WEBHOOK_DELIVERIES

logger = get_logger(__name__)

# Headers kept with a delivery: enough to re-verify, dedupe and debug, nothing secret.
_KEPT_HEADERS = (
    "Content-Type",
    "User-Agent",
    "X-Gitea-Event",
    "X-Gitea-Event-Type",
    "X-Gitea-Delivery",
    "X-Gitea-Signature",
    "X-GitHub-Event",
    "X-GitHub-Delivery",
    "X-GitHub-Hook-ID",
    "X-Hub-Signature-256",
    "X-Gitlab-Event",
    "X-Gitlab-Event-UUID",
    "X-Gitlab-Webhook-UUID",
    "Idempotency-Key",
    "X-Gitlab-Instance",
    "X-Atlassian-Webhook-Retry",
    "X-Hub-Signature",
    "X-Trello-Webhook",
    "X-OP-Signature",
    "X-Correlation-ID",
)
# JSON nested deeper than this is not a tracker payload; refuse it before it costs recursion.
MAX_JSON_DEPTH = 200
LAST_WEBHOOK_RESOLUTION = timedelta(seconds=5)


def _error(status: int, message: str) -> JsonResponse:
    response = JsonResponse({"detail": message}, status=status)
    response.reason_detail = message  # type: ignore[attr-defined]  # for the log line
    return response


def _read_body(request: HttpRequest, limit: int) -> bytes | None:
    """The body, or None when it is over `limit` — never reading more than limit + 1 bytes."""
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > limit:
        return None
    body = request.read(limit + 1)
    return None if len(body) > limit else body


class ConnectionCache:
    """Each provider's enabled connections, their secrets decrypted, kept in this process for
    WEBHOOK_CONNECTION_CACHE_SECONDS: a delivery costs one INSERT, not a SELECT and two
    decryptions before it.

    Cleared when a connection is saved or deleted in this process (`invalidate`, connected to
    the model's signals); another process's change is seen when the entry expires — or at
    once when it would refuse a delivery, which is answered from a fresh read.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, list[Connection]]] = {}
        self._generation = 0

    def get(self, provider: str) -> tuple[list[Connection], bool]:
        """(the connections, whether they were remembered rather than just read)."""
        entry = self._entries.get(provider)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1], True
        return self.read(provider), False

    def read(self, provider: str) -> list[Connection]:
        generation = self._generation
        connections = list(Connection.objects.filter(provider=provider, enabled=True))
        ttl = float(settings.WEBHOOK_CONNECTION_CACHE_SECONDS)
        with self._lock:
            # Not kept when a change was signalled while reading: it may predate the change.
            if ttl > 0 and generation == self._generation:
                self._entries[provider] = (time.monotonic() + ttl, connections)
        return connections

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()


connection_cache = ConnectionCache()


def _connection_changed(**_: Any) -> None:
    connection_cache.invalidate()
    # Again once the change commits: a read between the signal and the commit saw the old row.
    transaction.on_commit(connection_cache.invalidate)


post_save.connect(_connection_changed, sender=Connection, dispatch_uid="webhooks.cache.save")
post_delete.connect(_connection_changed, sender=Connection, dispatch_uid="webhooks.cache.delete")


def _noted_recently(connection_id: int, now: float) -> bool:
    """Whether this process stamped `last_webhook_at` of the connection in the last few
    seconds (the stamp's resolution): then the delivery costs no UPDATE."""
    last = _last_noted.get(connection_id)
    if last is not None and now - last < LAST_WEBHOOK_RESOLUTION.total_seconds():
        return True
    _last_noted[connection_id] = now
    return False


_last_noted: dict[int, float] = {}


def _match_repository(connections: list[Connection], repository: str | None) -> Connection | None:
    if len(connections) == 1 and repository is None:
        return connections[0]
    wanted = (repository or "").strip().lower()
    for connection in connections:
        if connection.repository.strip().lower() == wanted:
            return connection
    return None


@csrf_exempt
@require_http_methods(["POST", "HEAD"])
def receive_webhook(
    request: HttpRequest, provider: str, connection_id: int | None = None
) -> HttpResponse:
    response = _receive(request, provider, connection_id)
    outcome = {202: "accepted", 200: "duplicate", 204: "ignored"}.get(
        response.status_code, f"rejected_{response.status_code}"
    )
    known = providers.is_supported(provider)
    WEBHOOK_DELIVERIES.labels(provider=provider if known else "unknown", outcome=outcome).inc()
    # The refusal's reason is in the answer; a log line with it lets an operator see why a
    # tracker's deliveries bounce without reading the tracker's delivery history.
    logger.log(
        logging.WARNING if response.status_code >= 400 else logging.INFO,
        "webhook",
        provider=provider if known else "unknown",
        outcome=outcome,
        status=response.status_code,
        connection=connection_id,
        webhook_event=_event_header(request),
        delivery=getattr(response, "delivery_pk", None),
        reason=getattr(response, "reason_detail", None),
    )
    return response


def _event_header(request: HttpRequest) -> str | None:
    for name in ("X-Gitea-Event", "X-GitHub-Event", "X-Gitlab-Event"):
        if name in request.headers:
            return request.headers[name][:100]
    return None


def _receive(request: HttpRequest, provider: str, connection_id: int | None) -> HttpResponse:
    if not providers.is_supported(provider):
        return _error(404, f"unknown provider {provider!r}")
    if not providers.client_class(provider).capabilities.webhooks:
        return _error(404, f"{provider} has no webhooks: its connections are polled")
    if request.method == "HEAD":
        return HttpResponse(status=200)  # Trello checks the callback with a HEAD
    body = _read_body(request, settings.WEBHOOK_MAX_BODY_BYTES)
    if body is None:
        return _error(413, f"body over {settings.WEBHOOK_MAX_BODY_BYTES} bytes")
    connections, remembered = connection_cache.get(provider)
    response = _accept(request, body, provider, connection_id, connections)
    if remembered and response.status_code in (401, 404):
        # Refused on what this process remembers: asked again, so that a connection (or a
        # secret) added in another process a moment ago is honoured at once.
        response = _accept(request, body, provider, connection_id, connection_cache.read(provider))
    return response


def _accept(
    request: HttpRequest,
    body: bytes,
    provider: str,
    connection_id: int | None,
    connections: list[Connection],
) -> HttpResponse:
    verifier: WebhookVerifier = providers.webhooks(provider)
    candidates = [c for c in connections if connection_id is None or c.pk == connection_id]
    if not candidates:
        return _error(
            404,
            "no connection for this provider"
            if connection_id is None
            else f"no enabled {provider} connection {connection_id}",
        )
    with_secret = [c for c in candidates if c.webhook_secret]
    if not with_secret:
        # Nothing unsigned is ever accepted: a connection without a secret refuses webhooks.
        return _error(401, "no webhook secret is configured for this connection")
    if not body:
        return _error(400, "empty body")

    headers: Mapping[str, str] = request.headers
    event = verifier.event_name(headers=headers, payload=None)
    if event and not verifier.is_known_event(event):
        return HttpResponse(status=204)

    # The URL the tracker signed (Trello: body + callback URL): the public one it was given,
    # not the address a proxy forwarded to.
    url = f"{settings.PUBLIC_URL}{request.get_full_path()}"
    verified = [
        c
        for c in with_secret
        if verifier.verify(secret=c.webhook_secret, body=body, headers=headers, url=url)
    ]
    if not verified:
        return _error(401, "missing or wrong signature")

    if not json_depth_within(body, MAX_JSON_DEPTH):
        return _error(400, "JSON nested too deeply")
    if not event:
        # Jira, Trello, OpenProject name the event in the body.
        try:
            payload = decode_body(body, request.content_type or "")
        except WebhookPayloadError as exc:
            return _error(400, str(exc))
        event = verifier.event_name(headers=headers, payload=payload)
        if not verifier.is_known_event(event):
            return HttpResponse(status=204)
    try:
        parsed = parse_delivery(
            verifier, event=event, body=body, headers=headers, base_url=verified[0].base_url
        )
    except WebhookPayloadError as exc:
        message = str(exc)
        if message == "body is not valid JSON":
            return _error(400, message)
        return _error(400, f"malformed {event} payload: {message}")
    if parsed.kind == EventKind.IGNORED:
        return HttpResponse(status=204)

    connection = _match_repository(verified, parsed.repository)
    if connection is None:
        if _match_repository(with_secret, parsed.repository) is not None:
            # Signed with another connection's secret: the repository's own did not match.
            return _error(401, "missing or wrong signature")
        return _error(404, f"no {provider} connection for repository {parsed.repository!r}")

    delivery_id = verifier.delivery_id(headers=headers, body=body)[:200]
    correlation_id = getattr(request, "correlation_id", None) or new_correlation_id()
    from issues.tasks import deliveries_wake_flag, process_webhook_event  # keep intake light
    from syndarix_sync.queueing import wake_on_commit

    # One INSERT, committed on its own (synchronous_commit stays on: an acknowledged delivery
    # survives a crash); a redelivery inserts nothing.
    delivery = webhook_delivery_store(
        provider=provider,
        connection=connection,
        delivery_id=delivery_id,
        event=event,
        headers={k: headers[k] for k in _KEPT_HEADERS if k in headers},
        body=body,
        correlation_id=correlation_id,
    )
    if delivery is None:
        return JsonResponse({"status": "duplicate", "delivery_id": delivery_id}, status=200)
    # One wake-up per batch, not a message per delivery, while one is queued.
    wake_on_commit(process_webhook_event, deliveries_wake_flag(), delivery.pk)
    if not _noted_recently(connection.pk, time.monotonic()):
        _note_webhook(connection.pk, delivery.received_at)
    response = JsonResponse(
        {"status": "accepted", "delivery": delivery.pk, "correlation_id": delivery.correlation_id},
        status=202,
    )
    response.delivery_pk = delivery.pk  # type: ignore[attr-defined]  # for the log line
    return response


def _note_webhook(connection_id: int, received_at: datetime) -> None:
    # Outside the delivery's statement and at most every few seconds: a row lock on the
    # connection held through each commit would serialise all deliveries to it.
    try:
        Connection.objects.filter(pk=connection_id).filter(
            Q(last_webhook_at__isnull=True)
            | Q(last_webhook_at__lt=received_at - LAST_WEBHOOK_RESOLUTION)
        ).update(last_webhook_at=received_at)
    except DatabaseError as exc:
        # The delivery is committed: answering 503 now would only earn a redelivery. The
        # timestamp is bookkeeping; the next delivery sets it.
        logger.warning("last_webhook_at_not_updated", error=str(exc))

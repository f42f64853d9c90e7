"""Operations the admin offers on connections and webhook deliveries.

`connection_test` reads the repository with the connection's token and turns the typed
provider errors into one precise sentence for a human. The other services queue work for
the workers after the surrounding transaction commits.
"""

from __future__ import annotations

import dataclasses
import secrets
import ssl
from collections.abc import Iterable
from typing import Any

import requests
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, router, transaction
from django.db.models import Q
from django.utils import timezone
from urllib3.exceptions import ReadTimeoutError

from integrations.models import Connection, DeliveryStatus, WebhookDelivery
from integrations.providers.base import (
    AccessDeniedError,
    AuthenticationError,
    NotFoundError,
    ProviderError,
    RateLimitedError,
    TransientError,
    ValidationFailedError,
)
from integrations.providers.hooks import HookRepairFailed, RegistersWebhooks
from integrations.providers.registry import capabilities, client_for
from integrations.webhook_guide import manual_steps, unreachable_reason


class Problem:
    """What a failed connection test found (`ConnectionTestResult.problem`)."""

    NONE = ""
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    TLS = "tls"
    BAD_TOKEN = "bad_token"
    NO_ACCESS = "no_access"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    INVALID = "invalid"
    ERROR = "error"


@dataclasses.dataclass(frozen=True)
class ConnectionTestResult:
    ok: bool
    message: str
    problem: str = Problem.NONE


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and everything it was raised from (and the urllib3 reasons inside)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo.extend([current.__cause__, current.__context__])
        for arg in current.args:
            if isinstance(arg, BaseException):
                todo.append(arg)
            reason = getattr(arg, "reason", None)
            if isinstance(reason, BaseException):
                todo.append(reason)
    return seen


def _is_tls(exc: BaseException) -> bool:
    return any(isinstance(e, requests.exceptions.SSLError | ssl.SSLError) for e in _chain(exc))


def _is_timeout(exc: BaseException) -> bool:
    return any(
        isinstance(e, requests.exceptions.Timeout | ReadTimeoutError | TimeoutError)
        for e in _chain(exc)
    )


def _classify(exc: ProviderError, connection: Connection) -> ConnectionTestResult:
    url, repo = connection.base_url, connection.repository
    if isinstance(exc, AuthenticationError):
        return ConnectionTestResult(
            False,
            f"Bad token: the tracker at {url} rejected the API token (HTTP 401). It is wrong, "
            "expired or revoked: paste a valid token and test again.",
            Problem.BAD_TOKEN,
        )
    if isinstance(exc, RateLimitedError):
        return ConnectionTestResult(
            False,
            f"Rate limited: the tracker at {url} asks us to wait {exc.retry_after:.0f} s "
            "before the next request. The token works; test again later.",
            Problem.RATE_LIMITED,
        )
    if isinstance(exc, AccessDeniedError):
        return ConnectionTestResult(
            False,
            f"No access: the token is valid but may not read repository {repo} (HTTP 403). "
            f"Give it read and write access to the repository's issues. Tracker said: {exc}",
            Problem.NO_ACCESS,
        )
    if isinstance(exc, NotFoundError):
        return ConnectionTestResult(
            False,
            f"Repository not found: {url} has no repository {repo} that this token can see "
            "(HTTP 404). Check the spelling of the repository and the base URL.",
            Problem.NOT_FOUND,
        )
    if exc.status is None and _is_tls(exc):
        return ConnectionTestResult(
            False,
            f"TLS error: no secure connection to {url} could be made ({exc}). Check the "
            "certificate (self-signed or for another host name?) or whether the tracker "
            "speaks https at all.",
            Problem.TLS,
        )
    if isinstance(exc, TransientError) and exc.status is None:
        if _is_timeout(exc):
            return ConnectionTestResult(
                False,
                f"Timeout: {url} accepted no request or gave no answer within "
                f"{settings.PROVIDER_HTTP_TIMEOUT:g} s. Is the tracker overloaded, or is a "
                "firewall dropping the traffic?",
                Problem.TIMEOUT,
            )
        return ConnectionTestResult(
            False,
            f"Unreachable URL: nothing answers at {url} (connection refused, or the host name "
            f"does not resolve). Check the base URL and that the tracker is running. ({exc})",
            Problem.UNREACHABLE,
        )
    if isinstance(exc, ValidationFailedError) and exc.status is None:
        return ConnectionTestResult(False, f"Invalid settings: {exc}", Problem.INVALID)
    return ConnectionTestResult(False, f"Connection test failed: {exc}", Problem.ERROR)


def connection_test(*, connection: Connection) -> ConnectionTestResult:
    """Read the connection's repository with its token; say exactly what is wrong, if anything."""
    try:
        client = client_for(connection, max_retries=0)
    except ProviderError as exc:  # e.g. a repository that is not owner/name
        return ConnectionTestResult(False, f"Invalid settings: {exc}", Problem.INVALID)
    try:
        client.check_access()
    except ProviderError as exc:
        return _classify(exc, connection)
    finally:
        client.close()
    message = (
        f"Connected: repository {connection.repository} at {connection.base_url} "
        "is readable with this token."
    )
    if connection.base_url.startswith("http://"):
        message += (
            " Warning: the tracker is reached over plain http, so the token travels unencrypted."
        )
    return ConnectionTestResult(True, message)


class WebhookRegistrationError(Exception):
    """The hook could not be registered through the tracker's API: `status` is the HTTP
    answer for the API, `steps` how to set it up by hand."""

    def __init__(self, message: str, *, status: int, code: str, steps: list[str]) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.steps = steps


@dataclasses.dataclass(frozen=True)
class WebhookEnsureResult:
    result: str  # "created" | "repaired" | "unchanged"
    webhook_url: str
    steps: list[str]  # the manual steps (to check the hook by hand); the API always shows them
    notes: list[str]


def connection_webhook_ensure(*, connection: Connection) -> WebhookEnsureResult:
    """Create or repair the connection's webhook on its tracker, through the tracker's API:
    our PUBLIC_URL-based address, JSON, the issue events the intake reads, and the
    connection's secret (generated and saved here when it has none)."""
    if not connection.receives_webhooks:
        raise WebhookRegistrationError(
            f"{connection.get_provider_display()} has no webhooks: this connection is polled only.",
            status=409,
            code="polled_only",
            steps=[],
        )
    url = connection.webhook_url
    steps = manual_steps(connection.provider, url)
    if not capabilities(connection.provider).webhook_registration:
        raise WebhookRegistrationError(
            f"{connection.get_provider_display()}'s API cannot register this webhook for a "
            "connection's token: set it up by hand.",
            status=400,
            code="manual_registration",
            steps=steps,
        )
    try:
        client = client_for(connection, max_retries=0)
    except ProviderError as exc:
        raise WebhookRegistrationError(
            f"Invalid settings: {exc}", status=400, code="invalid", steps=steps
        ) from exc
    if not connection.webhook_secret:
        # A hook without a secret would take forged deliveries: never register one.
        if not getattr(client, "sets_webhook_secret", True):
            client.close()
            raise WebhookRegistrationError(
                f"{connection.get_provider_display()} signs its deliveries with a secret of "
                "its own: save it as the connection's webhook secret first.",
                status=400,
                code="secret_required",
                steps=steps,
            )
        connection.webhook_secret = secrets.token_urlsafe(32)
        connection.save(update_fields=["webhook_secret"])
    try:
        if not isinstance(client, RegistersWebhooks):  # a capability without its method
            raise WebhookRegistrationError(
                "This tracker's client cannot register webhooks: set it up by hand.",
                status=400,
                code="manual_registration",
                steps=steps,
            )
        outcome = client.ensure_webhook(url=url, secret=connection.webhook_secret)
    except (AuthenticationError, AccessDeniedError, NotFoundError) as exc:
        raise WebhookRegistrationError(
            f"The token may not manage this {connection.get_provider_display()} repository's "
            f"webhooks (HTTP {exc.status}): add the hook by hand, or use a token with admin "
            "rights on the repository.",
            status=409,
            code="token_cannot_register",
            steps=steps,
        ) from exc
    except HookRepairFailed as exc:
        raise WebhookRegistrationError(
            str(exc), status=502, code="repair_failed", steps=steps
        ) from exc
    except ProviderError as exc:
        transient = isinstance(exc, TransientError | RateLimitedError)
        raise WebhookRegistrationError(
            f"The tracker refused the webhook: {exc}",
            status=503 if transient else 400,
            code="tracker_unavailable" if transient else "tracker_refused",
            steps=steps,
        ) from exc
    finally:
        client.close()
    Connection.objects.filter(pk=connection.pk).update(webhook_registered_at=timezone.now())
    notes = list(outcome.notes)
    reason = unreachable_reason(url)
    if reason:
        notes.append(
            f"{url} cannot be reached from another machine ({reason}): set PUBLIC_URL to the "
            "address the tracker can reach"
        )
    return WebhookEnsureResult(
        result=outcome.result.value, webhook_url=url, steps=steps, notes=notes
    )


def connection_sync_request(*, connection: Connection, full: bool = False) -> None:
    """Queue a manual sync (incremental, or a full resync) of one connection after commit."""
    from issues.models import Trigger
    from issues.tasks import sync_project_issues
    from syndarix_sync.queueing import queue_on_commit

    queue_on_commit(sync_project_issues, connection.pk, full, Trigger.MANUAL)


@transaction.atomic
def delivery_reprocess(*, delivery_ids: Iterable[int]) -> int:
    """Put deliveries back to `received` and queue their processing; returns how many.

    Applying a delivery again is safe: the engine's stale guard and merge make a repeat a
    no-op when the mirror already has its state.
    """
    from issues.inbound import processing_lease
    from issues.tasks import process_webhook_event
    from syndarix_sync.queueing import queue_on_commit

    # A delivery a worker is processing right now is left to that worker.
    busy = Q(
        status=DeliveryStatus.PROCESSING, processed_at__gte=timezone.now() - processing_lease()
    )
    rows = WebhookDelivery.objects.select_for_update().filter(id__in=set(delivery_ids))
    ids = list(rows.exclude(busy).values_list("id", flat=True))
    WebhookDelivery.objects.filter(id__in=ids).update(
        status=DeliveryStatus.RECEIVED, error="", processed_at=None
    )
    for delivery_id in sorted(ids):
        queue_on_commit(process_webhook_event, delivery_id)
    return len(ids)


def webhook_delivery_store(
    *,
    provider: str,
    connection: Connection,
    delivery_id: str,
    event: str,
    headers: dict[str, str],
    body: bytes,
    correlation_id: str,
) -> WebhookDelivery | None:
    """Store a verified delivery in one statement (`INSERT … ON CONFLICT DO NOTHING
    RETURNING id`), committed on its own outside a transaction; None when this delivery id
    is stored already (a redelivery) — no error, so no savepoint is needed around it."""
    delivery = WebhookDelivery(
        provider=provider,
        connection=connection,
        delivery_id=delivery_id,
        event=event,
        headers=headers,
        body=body,
        correlation_id=correlation_id[:64],
    )
    meta = WebhookDelivery._meta
    db = connections[router.db_for_write(WebhookDelivery)]
    columns = [f for f in meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(delivery, add=True), db) for f in columns]
    quote = db.ops.quote_name
    names = ", ".join(quote(str(f.column)) for f in columns)
    # Only our model's table and column names are interpolated; every value is a parameter.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({names}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT DO NOTHING RETURNING {quote(str(meta.pk.column))}"
    )

    def insert() -> Any:
        with _values_apart(db) as cursor:
            cursor.execute(sql, values)
            return cursor.fetchone()

    if db.in_atomic_block:
        row = insert()
    else:
        # The INSERT itself tells whether the connection still works: no `SELECT 1` health
        # check before it (a round trip per delivery). A connection the server dropped (a
        # restart) is replaced and the INSERT — idempotent: ON CONFLICT DO NOTHING — sent
        # once more; a database still down fails it again (503).
        db.health_check_done = True  # type: ignore[attr-defined]  # Django's own flag
        try:
            row = insert()
        except (InterfaceError, OperationalError):
            db.close()
            row = insert()
    if row is None:
        return None
    delivery.pk = row[0]
    delivery._state.adding = False
    delivery._state.db = db.alias
    return delivery


def _values_apart(db: Any) -> Any:
    """A cursor that sends the values apart from the statement on PostgreSQL (the extended
    protocol): a delivery's body goes as it is, not as a hex literal twice its size written
    into the statement's text, which both sides then spend most of the INSERT writing and
    parsing. Elsewhere, and wrapped as Django wraps it (errors, query logging), the usual."""
    if db.vendor != "postgresql":
        return db.cursor()
    import psycopg
    from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

    db.ensure_connection()
    wrapper = CursorDebugWrapper if db.queries_logged else CursorWrapper
    return wrapper(psycopg.Cursor(db.connection), db)

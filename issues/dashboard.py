"""Read-side numbers for the admin dashboard and the sync progress display.

Everything per connection is computed in the database with correlated subqueries (counts
and the latest run's id), then the latest runs are fetched in one more query: two queries
whatever the number of connections.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from integrations.models import Connection
from issues.models import Conflict, OutboxEntry, OutboxStatus, SyncRun
from issues.polling import RUN_LEASE

PENDING_OUTBOX = (OutboxStatus.PENDING, OutboxStatus.IN_PROGRESS)


def _count(rows: QuerySet[Any], connection_path: str) -> Coalesce:
    counted = (
        rows.filter(**{connection_path: OuterRef("pk")})
        .order_by()
        .values(connection_path)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def connections_with_health(queryset: QuerySet[Connection] | None = None) -> QuerySet[Connection]:
    """Connections annotated with pending_outbox, failed_outbox, open_conflicts, latest_run_id."""
    queryset = Connection.objects.all() if queryset is None else queryset
    latest = SyncRun.objects.filter(connection=OuterRef("pk")).order_by("-started_at", "-id")
    return queryset.annotate(
        pending_outbox=_count(OutboxEntry.objects.filter(status__in=PENDING_OUTBOX), "connection"),
        failed_outbox=_count(OutboxEntry.objects.filter(status=OutboxStatus.FAILED), "connection"),
        open_conflicts=_count(Conflict.objects.filter(resolved=False), "issue__connection"),
        latest_run_id=Subquery(latest.values("id")[:1]),
    )


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """A sync run as a person reads it: running with progress, or finished with counts."""

    run: SyncRun | None

    @property
    def exists(self) -> bool:
        return self.run is not None

    @property
    def running(self) -> bool:
        run = self.run
        return (
            run is not None
            and run.finished_at is None
            and run.started_at > timezone.now() - RUN_LEASE
        )

    @property
    def abandoned(self) -> bool:
        """Unfinished and past the run lease: the worker running it died."""
        return self.run is not None and self.run.finished_at is None and not self.running

    @property
    def percent(self) -> int | None:
        run = self.run
        if run is None or not run.total:
            return None
        return min(100, round(100 * run.seen / run.total))

    @property
    def status(self) -> str:
        if self.run is None:
            return "none"
        if self.running:
            return "running"
        if self.abandoned:
            return "abandoned"
        return "success" if self.run.success else "failed"

    @property
    def text(self) -> str:
        run = self.run
        if run is None:
            return "No sync has run yet."
        kind = run.get_kind_display()
        if run.kind == "manual":
            kind = "Manual sync"
        if self.running:
            if run.total:
                return f"{kind} running: {run.seen} of {run.total} issues ({self.percent}%)"
            return f"{kind} running: {run.seen} issues seen so far"
        if self.abandoned:
            return f"{kind} did not finish (its worker stopped after {run.seen} issues)"
        counts = (
            f"{run.seen} seen, {run.created} new, {run.updated} updated, "
            f"{run.deleted} deleted, {run.conflicts} conflicts, {run.failed} failed"
        )
        duration = run.duration_seconds or 0.0
        if run.success:
            return f"{kind} succeeded in {duration:.1f} s: {counts}"
        return f"{kind} failed after {duration:.1f} s ({counts}): {error_in_words(run.error)[:300]}"

    def as_json(self) -> dict[str, Any]:
        run = self.run
        data: dict[str, Any] = {
            "status": self.status,
            "running": self.running,
            "text": self.text,
            "percent": self.percent,
        }
        if run is not None:
            data.update(
                id=run.pk,
                kind=run.kind,
                seen=run.seen,
                total=run.total,
                created=run.created,
                updated=run.updated,
                deleted=run.deleted,
                conflicts=run.conflicts,
                failed=run.failed,
                success=run.success,
                started_at=run.started_at.isoformat(),
                finished_at=run.finished_at.isoformat() if run.finished_at else None,
            )
        return data


def latest_runs(connections: Iterable[Connection]) -> dict[int, RunSummary]:
    """{connection id: summary of its latest run}; the connections carry `latest_run_id`."""
    latest = {c.pk: getattr(c, "latest_run_id", None) for c in connections}
    runs = SyncRun.objects.in_bulk([run_id for run_id in latest.values() if run_id])
    return {pk: RunSummary(runs.get(run_id) if run_id else None) for pk, run_id in latest.items()}


@dataclasses.dataclass(frozen=True)
class DashboardRow:
    connection: Connection
    last_run: RunSummary

    @property
    def webhooks(self) -> WebhookState:
        return webhook_state(self.connection)


def dashboard_rows() -> list[DashboardRow]:
    connections = list(connections_with_health().order_by("name"))
    runs = latest_runs(connections)
    return [DashboardRow(c, runs[c.pk]) for c in connections]


def latest_run_of(connection: Connection) -> RunSummary:
    return RunSummary(
        SyncRun.objects.filter(connection=connection).order_by("-started_at", "-id").first()
    )


@dataclasses.dataclass(frozen=True)
class WebhookState:
    """Webhook health as a person should read it: "yes" only for a connection that has a
    secret and has received a webhook, and whose polls found nothing a webhook missed."""

    status: str  # "healthy", "unhealthy", "no_secret", "never", "polled"
    text: str

    @property
    def ok(self) -> bool:
        # A tracker without webhooks (Redmine) is healthy when polled: nothing is missing.
        return self.status in ("healthy", "polled")


def webhook_state(connection: Connection) -> WebhookState:
    if not connection.receives_webhooks:
        return WebhookState("polled", "polled (no webhooks)")
    if not connection.webhook_secret:
        return WebhookState("no_secret", "no secret")
    if not connection.webhook_healthy:
        return WebhookState("unhealthy", "no")
    if connection.last_webhook_at is None:
        return WebhookState("never", "no webhook seen yet")
    return WebhookState("healthy", "yes")


# What a person should read instead of the transport's exception text (urllib3's
# "HTTPConnectionPool(host=…): Max retries exceeded … (Caused by NewConnectionError(…))").
_ERROR_WORDS = (
    (re.compile(r"connection refused|errno 111", re.I), "the tracker refused the connection"),
    (
        re.compile(r"name or service not known|nodename nor servname|getaddrinfo failed", re.I),
        "the tracker's host name does not resolve",
    ),
    (re.compile(r"timed? ?out|timeout", re.I), "the tracker did not answer in time"),
    (
        re.compile(r"certificate verify failed|SSLError", re.I),
        "the tracker's TLS certificate is not trusted",
    ),
    (re.compile(r"network is unreachable|no route to host", re.I), "the network is unreachable"),
    (
        re.compile(r"RemoteDisconnected|connection reset|connection aborted", re.I),
        "the tracker closed the connection",
    ),
)
_TRANSPORT_DUMP = re.compile(r"(HTTPS?ConnectionPool|Max retries exceeded|Caused by)", re.I)


def error_in_words(text: str) -> str:
    """A tracker error as a sentence; a transport dump is replaced by what it means (with the
    address it was about), anything else is kept as it is."""
    if not text or not _TRANSPORT_DUMP.search(text):
        return text
    host = re.search(r"host='([^']*)', port=(\d+)", text)
    where = f" ({host.group(1)}:{host.group(2)})" if host else ""
    prefix = text.split(":", 1)[0] + ": " if text.startswith(("permanent:", "transient:")) else ""
    for pattern, words in _ERROR_WORDS:
        if pattern.search(text):
            return f"{prefix}{words}{where}"
    return f"{prefix}the tracker could not be reached{where}"

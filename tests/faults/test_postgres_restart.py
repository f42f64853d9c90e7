"""PostgreSQL restarted under load: the service says so while it is down and recovers by itself.

One scenario, run once for the module: gunicorn and a Celery worker run against a private
PostgreSQL; one thread posts signed webhooks the way a tracker does (a 5xx is retried with the
same delivery id) and another polls `/healthz`. PostgreSQL is stopped (`pg_ctl stop -m fast`)
in the middle of it and started again on the same port and data directory; neither gunicorn nor
the worker is restarted. The tests below check what the scenario recorded.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from integrations.fake_trackers.base import OutgoingWebhook
from integrations.models import Connection, DeliveryStatus, WebhookDelivery
from issues.polling import sync_connection
from issues.tasks import sweep_webhook_deliveries
from syndarix_sync.queueing import publish
from tests.faults.conftest import (
    CapturingGitea,
    Stack,
    connect,
    gitea_fake,
    mirror_differences,
    service_stack,
)
from tests.faults.processes import PrivatePostgres, wait_until

# Not a module-wide pytestmark: the middleware test at the end needs no service.
scenario = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def with_services(test: Any) -> Any:
    for mark in scenario:
        test = mark(test)
    return test


ISSUES = 5
ROUNDS = 8  # edits per issue: ISSUES * ROUNDS webhooks, a good part of them during the outage
DOWN_SECONDS = 3.0
ACCEPTED_BEFORE_OUTAGE = 8
POST_PACE_SECONDS = 0.05
TRACKER_RETRY_SECONDS = 0.2  # how soon the "tracker" redelivers a webhook answered 5xx
HEALTH_PACE_SECONDS = 0.1
RECOVERY_SECONDS = 5.0  # /healthz must be 200 again this soon after PostgreSQL is back
REQUEST_TIMEOUT = 10.0


@dataclasses.dataclass(frozen=True)
class Attempt:
    kind: str  # "webhook" or "healthz"
    started: float  # time.monotonic()
    ended: float
    status: int  # -1: no HTTP answer at all
    body: str
    retry_after: str | None
    delivery_id: str = ""

    def within(self, start: float, end: float) -> bool:
        return self.started >= start and self.ended <= end


@dataclasses.dataclass
class Outcome:
    stack: Stack
    gitea: CapturingGitea
    connection: Connection
    hooks: list[OutgoingWebhook]
    attempts: list[Attempt]
    stop_done: float = 0.0  # pg_ctl stop returned: PostgreSQL is down
    start_begin: float = 0.0  # pg_ctl start called
    start_done: float = 0.0  # PostgreSQL accepts connections again
    web_pid: int = 0
    worker_pid: int = 0

    def of(self, kind: str) -> list[Attempt]:
        return [a for a in self.attempts if a.kind == kind]

    def report(self) -> str:
        timeline = [
            f"{a.started - self.stop_done:+7.2f}s {a.kind} {a.status} {a.body[:80]}"
            for a in self.attempts
            if a.status not in (200, 202)
        ][:60]
        return (
            f"PostgreSQL down at 0s, start at {self.start_begin - self.stop_done:+.2f}s, up at "
            f"{self.start_done - self.stop_done:+.2f}s\n"
            + "\n".join(timeline)
            + "\n"
            + self.stack.tails()
        )


def _attempt(kind: str, call: Any, delivery_id: str = "") -> Attempt:
    started = time.monotonic()
    try:
        response = call()
    except requests.RequestException as exc:
        return Attempt(kind, started, time.monotonic(), -1, repr(exc), None, delivery_id)
    return Attempt(
        kind,
        started,
        time.monotonic(),
        response.status_code,
        response.text,
        response.headers.get("Retry-After"),
        delivery_id,
    )


def post_like_a_tracker(
    url: str, hooks: list[OutgoingWebhook], out: list[Attempt], stop: threading.Event
) -> None:
    session = requests.Session()
    for hook in hooks:
        while not stop.is_set():
            attempt = _attempt(
                "webhook",
                lambda h=hook: session.post(
                    url, data=h.body, headers=h.headers, timeout=REQUEST_TIMEOUT
                ),
                hook.delivery_id,
            )
            out.append(attempt)
            if attempt.status in (200, 202):
                break
            time.sleep(TRACKER_RETRY_SECONDS)
        time.sleep(POST_PACE_SECONDS)


def consuming(node: str, on: bool) -> None:
    """Start or stop a worker's consumption of queue `sync` (Celery remote control). A solo
    worker answers between tasks, so once it has answered "off" it runs nothing."""
    from syndarix_sync.celery import app

    command = app.control.add_consumer if on else app.control.cancel_consumer
    replies = command("sync", destination=[node], reply=True, timeout=5)
    assert replies, f"{node} did not answer {'add' if on else 'cancel'}_consumer"


def poll_health(url: str, out: list[Attempt], stop: threading.Event) -> None:
    session = requests.Session()
    while not stop.is_set():
        out.append(_attempt("healthz", lambda: session.get(url, timeout=REQUEST_TIMEOUT)))
        time.sleep(HEALTH_PACE_SECONDS)


@pytest.fixture(scope="module")
def outcome(private_postgres: PrivatePostgres, django_db_blocker: Any) -> Iterator[Outcome]:
    with service_stack(private_postgres, django_db_blocker) as stack, gitea_fake() as gitea:
        gitea.seed(ISSUES)
        connection = connect(gitea)
        assert sync_connection(connection_id=connection.pk, full=True).success
        gitea.take_hooks()
        for round_ in range(ROUNDS):
            for number in range(1, ISSUES + 1):
                if round_ % 3 == 2:
                    gitea.edit_issue(number, labels=["bug"] if round_ % 2 else ["docs", "feature"])
                else:
                    gitea.edit_issue(number, title=f"issue {number}, edit {round_}")
        hooks = gitea.take_hooks()
        stack.start(
            workers=("worker",),
            WEBHOOK_SWEEP_AFTER_SECONDS="1",
            WEBHOOK_PROCESSING_LEASE_SECONDS="3",
        )
        assert stack.web is not None
        result = Outcome(stack, gitea, connection, hooks, attempts=[])
        result.web_pid, result.worker_pid = stack.web.pid, stack.processes[-1].pid
        worker_node = f"worker@{socket.gethostname()}"
        pg = stack.db.pg

        stop = threading.Event()
        threads = [
            threading.Thread(
                target=post_like_a_tracker,
                args=(f"{stack.base_url}/webhooks/gitea/", hooks, result.attempts, stop),
                daemon=True,
            ),
            threading.Thread(
                target=poll_health,
                args=(f"{stack.base_url}/healthz", result.attempts, stop),
                daemon=True,
            ),
        ]
        for thread in threads:
            thread.start()
        try:
            wait_until(
                lambda: (
                    sum(1 for a in result.of("webhook") if a.status == 202)
                    >= ACCEPTED_BEFORE_OUTAGE
                ),
                timeout=20,
                message=lambda: f"webhooks to be accepted before the outage\n{stack.tails()}",
            )
            # The worker is made idle for the moment of the stop — where a worker spends most
            # of its life: not in a task, holding an open connection. (A task caught inside a
            # transaction drops its connection on the failed rollback and hides the problem.)
            # The web keeps taking webhooks meanwhile; they wait in Redis.
            consuming(worker_node, False)
            pg.stop("fast")
            result.stop_done = time.monotonic()
            consuming(worker_node, True)  # it now takes tasks while PostgreSQL is down
            time.sleep(DOWN_SECONDS)
            result.start_begin = time.monotonic()
            pg.start()
            result.start_done = time.monotonic()
            stack.db.reconnect()
            wait_until(
                lambda: not threads[0].is_alive(),
                timeout=60,
                message=lambda: f"every webhook to be accepted\n{result.report()}",
            )
            wait_until(
                lambda: any(
                    a.status == 200 and a.started >= result.start_done for a in result.of("healthz")
                ),
                timeout=RECOVERY_SECONDS + 10,
                message=lambda: f"/healthz to recover\n{result.report()}",
            )
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=REQUEST_TIMEOUT + 5)
        yield result


@with_services
def test_healthz_is_503_while_postgresql_is_down_and_200_again_soon_after(outcome: Outcome) -> None:
    health = outcome.of("healthz")
    assert all(a.status in (200, 503) for a in health), outcome.report()
    assert all(a.ended - a.started < 5 for a in health), "a /healthz hung\n" + outcome.report()
    assert any(a.status == 200 and a.ended < outcome.stop_done for a in health)
    down = [a for a in health if a.within(outcome.stop_done, outcome.start_begin)]
    assert down, "no /healthz answer while PostgreSQL was down\n" + outcome.report()
    for attempt in down:
        assert attempt.status == 503, outcome.report()
        body = attempt.body
        assert '"status": "degraded"' in body and '"database": "down' in body, body
    recovered = min(a.ended for a in health if a.status == 200 and a.started >= outcome.start_done)
    assert recovered - outcome.start_done < RECOVERY_SECONDS, outcome.report()
    # Nobody restarted anything: the same gunicorn and the same worker are still up.
    web, worker = outcome.stack.processes[0], outcome.stack.processes[-1]
    assert web.alive() and web.pid == outcome.web_pid, outcome.report()
    assert worker.alive() and worker.pid == outcome.worker_pid, outcome.report()


@with_services
def test_webhooks_are_refused_with_503_while_postgresql_is_down(outcome: Outcome) -> None:
    webhooks = outcome.of("webhook")
    # 503 (retry later) or an acknowledgement — never a 500 or a dropped connection.
    assert {a.status for a in webhooks} <= {200, 202, 503}, outcome.report()
    down = [a for a in webhooks if a.within(outcome.stop_done, outcome.start_begin)]
    assert down, "no webhook was posted while PostgreSQL was down\n" + outcome.report()
    for attempt in down:
        assert attempt.status == 503, outcome.report()
        assert '"detail": "database unavailable"' in attempt.body, attempt.body
        assert attempt.retry_after is not None and int(attempt.retry_after) > 0
    assert any(a.status == 202 and a.started >= outcome.start_done for a in webhooks)


@with_services
def test_every_acknowledged_webhook_is_stored_exactly_once(outcome: Outcome) -> None:
    webhooks = outcome.of("webhook")
    acknowledged = {a.delivery_id for a in webhooks if a.status == 202}
    answered = {a.delivery_id for a in webhooks if a.status in (200, 202)}
    # The tracker's retries ended with a 2xx for every webhook it had to send.
    assert answered == {h.delivery_id for h in outcome.hooks}, outcome.report()
    stored = list(WebhookDelivery.objects.values_list("delivery_id", flat=True))
    assert len(stored) == len(set(stored)), "a delivery was stored twice"
    assert acknowledged <= set(stored), outcome.report()
    # A 503 may still have stored its delivery (the answer failed after the commit); the
    # tracker's retry then got "duplicate". Stored is therefore exactly what was sent.
    assert set(stored) == {h.delivery_id for h in outcome.hooks}


@with_services
def test_the_worker_recovers_and_every_stored_webhook_is_applied_once(outcome: Outcome) -> None:
    ids = list(WebhookDelivery.objects.values_list("pk", flat=True))

    def all_processed() -> bool:
        # The periodic sweep, sent through the broker as beat sends it.
        publish(sweep_webhook_deliveries)
        statuses = set(WebhookDelivery.objects.filter(pk__in=ids).values_list("status", flat=True))
        return statuses == {DeliveryStatus.PROCESSED}

    wait_until(
        all_processed,
        timeout=20,
        interval=2.0,
        message=lambda: (
            "every delivery to be processed: "
            + str(sorted(WebhookDelivery.objects.values_list("pk", "status", "attempts", "error")))
            + "\n"
            + outcome.report()
        ),
    )
    rows = list(WebhookDelivery.objects.values("pk", "status", "attempts"))
    assert all(r["attempts"] == 1 for r in rows), rows
    assert mirror_differences(outcome.gitea, outcome.connection) == [], outcome.report()
    worker = outcome.stack.processes[-1]
    assert worker.alive() and worker.pid == outcome.worker_pid


def test_a_database_error_in_a_view_is_answered_503_with_retry_after() -> None:
    from django.conf import settings
    from django.db import InterfaceError, OperationalError
    from django.http import HttpResponse
    from django.test import RequestFactory

    from syndarix_sync.middleware import DatabaseUnavailableMiddleware

    assert "syndarix_sync.middleware.DatabaseUnavailableMiddleware" in settings.MIDDLEWARE
    middleware = DatabaseUnavailableMiddleware(lambda request: HttpResponse())
    request = RequestFactory().post("/webhooks/gitea/")
    for error in (OperationalError("connection refused"), InterfaceError("connection closed")):
        response = middleware.process_exception(request, error)
        assert response is not None
        assert response.status_code == 503
        assert response["Retry-After"] == "5"
        assert response["Content-Type"] == "application/json"
        assert response.content == b'{"detail": "database unavailable"}'
    # Anything else is not the database being away: a bug stays a 500.
    assert middleware.process_exception(request, ValueError("bug")) is None

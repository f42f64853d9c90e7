"""Redis stopped while webhooks arrive: they are still acknowledged (202, stored in
PostgreSQL), and once Redis is back the sweep applies each of them exactly once.

Real processes: gunicorn serves `/webhooks/gitea/`, a Celery worker (pool solo) consumes queue
`sync`, both on a private PostgreSQL and a private Redis that the test stops and restarts on
the same port. The sweep is sent through the broker, as beat sends it.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from integrations.fake_trackers.base import OutgoingWebhook
from integrations.models import DeliveryStatus, WebhookDelivery
from issues.polling import sync_connection
from issues.tasks import sweep_webhook_deliveries
from syndarix_sync.queueing import publish
from tests.faults.conftest import CapturingGitea, Stack, connect, mirror_differences
from tests.faults.processes import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

ISSUES = 6
# Far below the default minute, so the sweep finds the deliveries without a long wait.
SWEEP_AFTER_SECONDS = "1"


def post(stack: Stack, hook: OutgoingWebhook) -> requests.Response:
    return requests.post(
        f"{stack.base_url}/webhooks/gitea/", data=hook.body, headers=hook.headers, timeout=15
    )


def statuses(ids: list[int]) -> dict[int, str]:
    return dict(WebhookDelivery.objects.filter(pk__in=ids).values_list("pk", "status"))


def test_webhooks_are_acknowledged_while_redis_is_down_and_applied_once_after(
    stack: Stack, gitea: CapturingGitea
) -> None:
    gitea.seed(ISSUES)
    connection = connect(gitea)
    assert sync_connection(connection_id=connection.pk, full=True).success
    assert mirror_differences(gitea, connection) == []
    gitea.take_hooks()
    stack.start(workers=("worker",), WEBHOOK_SWEEP_AFTER_SECONDS=SWEEP_AFTER_SECONDS)
    accepted: dict[str, int] = {}  # X-Gitea-Delivery → stored delivery pk, for every 202

    def deliver(hook: OutgoingWebhook, *, expect: int = 202) -> requests.Response:
        started = time.monotonic()
        response = post(stack, hook)
        elapsed = time.monotonic() - started
        assert response.status_code == expect, (
            f"{hook.delivery_id}: {response.status_code} {response.text}\n{stack.tails()}"
        )
        # Publishing fails fast when the broker is down: the tracker is not kept waiting.
        assert elapsed < 3, f"webhook answered in {elapsed:.1f}s\n{stack.tails()}"
        if response.status_code == 202:
            accepted[hook.delivery_id] = response.json()["delivery"]
        return response

    # Redis up: the normal path (queued after commit, processed by the worker).
    gitea.edit_issue(1, title="before the outage")
    for hook in gitea.take_hooks():
        deliver(hook)
    wait_until(
        lambda: set(statuses(list(accepted.values())).values()) == {DeliveryStatus.PROCESSED},
        timeout=20,
        message=lambda: f"the first deliveries to be processed\n{stack.tails()}",
    )

    # Redis down: every delivery is still stored and acknowledged, and none is processed.
    stack.redis.stop()
    health = requests.get(f"{stack.base_url}/healthz", timeout=10)
    assert health.status_code == 503, health.text
    assert health.json()["database"] == "ok"
    assert health.json()["broker"].startswith("down")
    during: list[OutgoingWebhook] = []
    for number in range(1, ISSUES + 1):
        gitea.edit_issue(number, title=f"changed while Redis was down #{number}")
        gitea.edit_issue(number, labels=["bug", "docs"] if number % 2 else [])
        if number % 3 == 0:
            gitea.edit_issue(number, state="closed")
    during = gitea.take_hooks()
    assert len(during) > ISSUES
    for hook in during:
        deliver(hook)
    # A tracker's redelivery of a stored webhook is answered "duplicate" and stores nothing.
    deliver(during[0], expect=200)
    during_ids = [accepted[h.delivery_id] for h in during]
    assert set(statuses(during_ids).values()) == {DeliveryStatus.RECEIVED}, stack.tails()

    # Redis back, on the same port and empty: nothing of the outage is in any queue. The
    # sweep — sent through the broker as beat sends it — finds the stored deliveries.
    stack.redis.start()
    wait_until(
        lambda: requests.get(f"{stack.base_url}/healthz", timeout=10).status_code == 200,
        timeout=15,
        message="/healthz to be 200 again",
    )
    time.sleep(float(SWEEP_AFTER_SECONDS))
    wait_until(
        lambda: publish(sweep_webhook_deliveries), timeout=10, message="the sweep to be queued"
    )
    wait_until(
        lambda: set(statuses(during_ids).values()) == {DeliveryStatus.PROCESSED},
        timeout=45,
        message=lambda: (
            f"the swept deliveries to be processed: {statuses(during_ids)}\n{stack.tails()}"
        ),
    )

    # After the outage the web publishes again by itself: a new delivery goes straight through.
    gitea.edit_issue(2, body="after the outage")
    after = gitea.take_hooks()
    for hook in after:
        deliver(hook)
    after_ids = [accepted[h.delivery_id] for h in after]
    wait_until(
        lambda: set(statuses(after_ids).values()) == {DeliveryStatus.PROCESSED},
        timeout=20,
        message=lambda: f"the deliveries after the outage to be processed\n{stack.tails()}",
    )

    # Nothing acknowledged is lost, nothing is stored twice, nothing is processed twice.
    rows = list(WebhookDelivery.objects.values("pk", "delivery_id", "status", "attempts", "error"))
    assert sorted(r["delivery_id"] for r in rows) == sorted(accepted), rows
    assert {r["pk"] for r in rows} == set(accepted.values())
    assert all(r["status"] == DeliveryStatus.PROCESSED for r in rows), rows
    assert all(r["attempts"] == 1 for r in rows), rows
    # Every change made in the tracker is in the mirror.
    assert mirror_differences(gitea, connection) == [], stack.tails()

    # One delivery of the outage, followed by its correlation id across the two processes:
    # the web's lines (answered 202, queue unavailable) and the worker's (processed after
    # the sweep, an hour later for all it knows) — all JSON, all carrying the same id.
    swept = WebhookDelivery.objects.get(pk=during_ids[-1])
    web_lines = json_lines(stack.processes[0].log_text(), swept.correlation_id)
    worker_lines = json_lines(stack.processes[1].log_text(), swept.correlation_id)
    assert {"request", "webhook", "queue_unavailable"} <= {line["event"] for line in web_lines}
    assert "delivery_processed" in {line["event"] for line in worker_lines}, stack.tails()
    assert {line.get("task") for line in worker_lines} == {"issues.tasks.process_webhook_event"}


def json_lines(log: str, correlation_id: str) -> list[dict[str, Any]]:
    """The lines of a process's log that carry `correlation_id` (each must be JSON)."""
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("correlation_id") == correlation_id]

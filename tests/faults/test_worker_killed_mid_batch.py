"""A worker SIGKILLed in the middle of a batch of webhook deliveries: nothing it had written
is kept, nothing acknowledged is lost, and the next worker applies every delivery once.

Real processes on a private PostgreSQL and Redis: gunicorn acknowledges the deliveries of two
trackers' connections, then a Celery worker (pool solo) claims all of them in one batch. The
test holds a row lock on one issue of the second connection, so the worker stops inside its
batch: the first connection's issues already merged and written (uncommitted), the second
one's waiting for the lock. It is killed there.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import psycopg
import pytest
import requests

from integrations.fake_trackers.base import OutgoingWebhook
from integrations.models import Connection, DeliveryStatus, WebhookDelivery
from issues.models import Direction, Issue, SyncLog
from issues.polling import sync_connection
from issues.tasks import sweep_webhook_deliveries
from syndarix_sync.queueing import publish
from tests.faults.conftest import (
    API_TOKEN,
    REPOSITORY,
    WEBHOOK_SECRET,
    CapturingGitea,
    Stack,
    connect,
    gitea_fake,
    mirror_differences,
)
from tests.faults.processes import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

ISSUES = 4  # per tracker
EDITS = 2  # per issue: two deliveries each, the older one coalesced into the newer
SWEEP_AFTER_SECONDS = "1"


def post(stack: Stack, connection: Connection, hook: OutgoingWebhook) -> int:
    response = requests.post(
        f"{stack.base_url}/webhooks/gitea/{connection.pk}/",
        data=hook.body,
        headers=hook.headers,
        timeout=15,
    )
    assert response.status_code == 202, f"{response.status_code} {response.text}"
    return int(response.json()["delivery"])


def waiting_for_a_lock(dsn: str, database: str) -> list[tuple[int, bool]]:
    """(pid, has it written sync-log rows) of each session of `database` waiting for a lock."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT a.pid, EXISTS (SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            " WHERE l.pid = a.pid AND c.relname = 'issues_synclog'"
            " AND l.mode = 'RowExclusiveLock')"
            " FROM pg_stat_activity a WHERE a.datname = %s AND a.wait_event_type = 'Lock'",
            [database],
        ).fetchall()
    return [(int(pid), bool(wrote)) for pid, wrote in rows]


def sessions(dsn: str, pid: int) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    return int(row[0]) if row else 0


def test_a_worker_killed_mid_batch_loses_nothing_and_nothing_is_applied_twice(
    stack: Stack, gitea: CapturingGitea
) -> None:
    with gitea_fake() as other:
        first, second = gitea, other
        for fake in (first, second):
            fake.seed(ISSUES)
        connections = [connect(first)]
        connections.append(
            Connection.objects.create(
                name="faults-second",
                provider="gitea",
                base_url=second.url,
                repository=REPOSITORY,
                api_token=API_TOKEN,
                webhook_secret=WEBHOOK_SECRET,
            )
        )
        for connection in connections:
            assert sync_connection(connection_id=connection.pk, full=True).success
        before = {
            c.pk: dict(Issue.objects.filter(connection=c).values_list("pk", "title"))
            for c in connections
        }
        logged_before = SyncLog.objects.count()
        last_logged = SyncLog.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        stack.start(workers=(), WEBHOOK_SWEEP_AFTER_SECONDS=SWEEP_AFTER_SECONDS)

        accepted: list[int] = []
        for fake, connection in zip((first, second), connections, strict=True):
            fake.take_hooks()
            for edit in range(EDITS):
                for number in range(1, ISSUES + 1):
                    fake.edit_issue(number, title=f"{connection.name} #{number} edit {edit}")
            accepted += [post(stack, connection, hook) for hook in fake.take_hooks()]
        assert len(accepted) == 2 * ISSUES * EDITS

        # Hold the second connection's first issue: the batch stops on it, mid-way.
        dsn = stack.db.pg.dsn(stack.db.name)
        held = min(before[connections[1].pk])
        holder = psycopg.connect(dsn)
        try:
            holder.execute("SELECT id FROM issues_issue WHERE id = %s FOR UPDATE", [held])
            worker = stack.start_worker("worker-a", WEBHOOK_SWEEP_AFTER_SECONDS=SWEEP_AFTER_SECONDS)
            (blocked,) = wait_until(
                lambda: waiting_for_a_lock(dsn, stack.db.name),
                timeout=30,
                message=lambda: f"worker-a to block inside its batch\n{stack.tails()}",
            )
            pid, wrote = blocked
            # Inside the batch: the first connection's rows written, not committed.
            assert wrote, "the batch had not written anything yet when it blocked"
            worker.kill()
        finally:
            holder.rollback()  # the dead worker's session gets the lock, cannot answer, ends
            holder.close()
        wait_until(lambda: sessions(dsn, pid) == 0, timeout=20, message="the dead session to end")

        # Nothing of the killed batch was kept: every delivery still waits, the mirror is
        # as it was, no sync-log row was added.
        statuses = Counter(WebhookDelivery.objects.values_list("status", flat=True))
        assert statuses == {DeliveryStatus.RECEIVED: len(accepted)}, stack.tails()
        for connection in connections:
            now = dict(Issue.objects.filter(connection=connection).values_list("pk", "title"))
            assert now == before[connection.pk]
        assert SyncLog.objects.count() == logged_before

        # The next worker, woken by the sweep (the killed worker's message stays unacked).
        stack.start_worker("worker-b", WEBHOOK_SWEEP_AFTER_SECONDS=SWEEP_AFTER_SECONDS)
        time.sleep(float(SWEEP_AFTER_SECONDS))
        assert publish(sweep_webhook_deliveries)

        def all_processed() -> bool:
            done = WebhookDelivery.objects.filter(status=DeliveryStatus.PROCESSED).count()
            return done == len(accepted)

        wait_until(
            all_processed,
            timeout=45,
            message=lambda: f"worker-b to process every delivery\n{stack.tails()}",
        )
        rows: list[dict[str, Any]] = list(WebhookDelivery.objects.values("pk", "attempts"))
        assert sorted(r["pk"] for r in rows) == sorted(accepted)
        assert {r["attempts"] for r in rows} == {1}, rows  # each finished exactly once
        assert mirror_differences(first, connections[0]) == []
        assert mirror_differences(second, connections[1]) == []
        # Applied once: one inbound change per issue (the older edit coalesced), no more.
        changes = Counter(
            SyncLog.objects.filter(direction=Direction.INBOUND)
            .filter(pk__gt=last_logged)
            .values_list("issue_id", flat=True)
        )
        assert changes == dict.fromkeys([pk for c in connections for pk in before[c.pk]], 1), (
            changes
        )

"""A worker SIGKILLed in the middle of an outbox batch: its rows come back when the lease runs
out, another worker finishes them, and the tracker is written exactly once per issue.

The worst moment is chosen on purpose: the worker dies after its K-th write reached the tracker
but before the answer came back, so that write is applied in the tracker and recorded nowhere
in the database. The push that takes it over must read first and see it is already there.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import Connection
from issues.models import Issue, OutboxEntry, OutboxStatus, SyncStatus
from issues.outbox import claim_issue_batch
from issues.polling import sync_connection
from issues.services.issues import issue_update
from issues.tasks import drain_outbox
from syndarix_sync.queueing import publish
from tests.faults.conftest import CapturingGitea, Stack, connect, mirror_differences
from tests.faults.processes import wait_until, wait_worker

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

ISSUES = 6
KILL_AFTER_WRITES = 3
LEASE_SECONDS = 7
# Long enough to SIGKILL the worker while it waits for the answer to a write already applied.
PATCH_ANSWER_DELAY = 0.8


def new_title(number: int) -> str:
    return f"edited locally #{number}"


def landed(gitea: CapturingGitea) -> int:
    """Local edits the tracker has applied."""
    return sum(1 for i in gitea.issue_list() if i.title == new_title(i.number))


def rows_by_issue(connection: Connection) -> dict[str, list[OutboxEntry]]:
    rows: dict[str, list[OutboxEntry]] = {}
    for row in OutboxEntry.objects.filter(connection=connection).select_related("issue"):
        rows.setdefault(row.issue.external_number, []).append(row)
    return rows


def push_tasks_done(log: str) -> int:
    return sum(
        1
        for line in log.splitlines()
        if "issues.tasks.push_issue_to_external[" in line and "succeeded" in line
    )


def test_a_killed_workers_batch_is_taken_over_after_the_lease_and_written_once(
    stack: Stack, gitea: CapturingGitea
) -> None:
    gitea.seed(ISSUES)
    connection = connect(gitea)
    assert sync_connection(connection_id=connection.pk, full=True).success
    assert mirror_differences(gitea, connection) == []
    gitea.take_hooks()
    gitea.reset_requests()

    # Beat's periodic drain is first in line, then an agent edits every issue: N outbox rows,
    # and each edit queues its own push after commit (behind the drain).
    assert publish(drain_outbox)
    for issue in Issue.objects.filter(connection=connection).order_by("external_number"):
        issue_update(issue=issue, changes={"title": new_title(int(issue.external_number))})
    assert OutboxEntry.objects.filter(status=OutboxStatus.PENDING).count() == ISSUES

    gitea.patch_answer_delay = PATCH_ANSWER_DELAY
    lease = {"OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS)}
    first = stack.start_worker("worker-a", **lease)
    first_id = f":{first.pid}"  # claimed_by is host:pid, and pool solo works in that pid

    # The drain claims the whole batch in one short transaction, before its first push.
    wait_until(
        lambda: not OutboxEntry.objects.filter(status=OutboxStatus.PENDING).exists(),
        timeout=20,
        message=lambda: f"worker-a to claim the batch\n{stack.tails()}",
    )
    claimers = set(OutboxEntry.objects.values_list("claimed_by", flat=True))
    assert len(claimers) == 1 and claimers.pop().endswith(first_id), stack.tails()
    # The second worker starts now: its start-up overlaps the first one's pushes.
    second = stack.launch_worker("worker-b", **lease)

    wait_until(
        lambda: landed(gitea) >= KILL_AFTER_WRITES,
        timeout=20,
        interval=0.01,
        message=lambda: f"{KILL_AFTER_WRITES} writes to land\n{stack.tails()}",
    )
    first.kill()  # SIGKILL while it waits for the answer to its last write
    killed_at = timezone.now()
    gitea.patch_answer_delay = 0.0
    assert landed(gitea) == KILL_AFTER_WRITES
    assert gitea.count_requests("PATCH") == KILL_AFTER_WRITES

    # What the dead worker leaves: K-1 pushes recorded; the K-th written but not recorded;
    # the rest claimed and never started. All of those stay leased to the dead worker.
    rows = rows_by_issue(connection)
    done = sorted(n for n, rs in rows.items() if all(r.status == OutboxStatus.DONE for r in rs))
    leased = sorted(
        n for n, rs in rows.items() if all(r.status == OutboxStatus.IN_PROGRESS for r in rs)
    )
    assert len(done) == KILL_AFTER_WRITES - 1, rows
    assert len(leased) == ISSUES - KILL_AFTER_WRITES + 1, rows
    lease_ends = min(r.claimed_until for n in leased for r in rows[n] if r.claimed_until)
    assert lease_ends > killed_at, "the lease ran out before the kill: make LEASE_SECONDS longer"
    # Nobody can take them while the lease holds.
    assert claim_issue_batch() == {}

    # The second worker consumes the pushes the edits queued: the rows are leased, so each is
    # a no-op until the lease runs out (checked only while it verifiably still holds).
    wait_worker(second)
    wait_until(
        lambda: push_tasks_done(second.log_text()) == ISSUES,
        timeout=30,
        message=lambda: f"worker-b to run the {ISSUES} queued pushes\n{stack.tails()}",
    )
    if timezone.now() < lease_ends - timedelta(seconds=0.5):
        assert gitea.count_requests("PATCH") == KILL_AFTER_WRITES, stack.tails()
        assert OutboxEntry.objects.filter(status=OutboxStatus.IN_PROGRESS).count() == len(leased)

    # After the lease, the periodic drain (sent as beat sends it) takes the rows over.
    wait_until(lambda: timezone.now() > lease_ends, timeout=LEASE_SECONDS + 5)
    time.sleep(0.2)
    assert publish(drain_outbox)
    wait_until(
        lambda: OutboxEntry.objects.exclude(status=OutboxStatus.DONE).count() == 0,
        timeout=30,
        message=lambda: f"every row to be done: {rows_by_issue(connection)}\n{stack.tails()}",
    )

    # Exactly one write per issue reached the tracker, and tracker and mirror agree.
    assert gitea.writes_per_issue() == dict.fromkeys(range(1, ISSUES + 1), 1), stack.tails()
    assert landed(gitea) == ISSUES
    assert mirror_differences(gitea, connection) == []
    rows = rows_by_issue(connection)
    assert not OutboxEntry.objects.filter(status=OutboxStatus.FAILED).exists()
    for number in leased:  # taken over: claimed twice, by the dead worker and by worker-b
        assert [r.attempts for r in rows[number]] == [2], rows[number]
        assert all(r.claimed_by.endswith(f":{second.pid}") for r in rows[number]), rows[number]
    for number in done:
        assert [r.attempts for r in rows[number]] == [1], rows[number]
    assert set(Issue.objects.values_list("sync_status", flat=True)) == {SyncStatus.SYNCED}

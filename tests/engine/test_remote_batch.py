"""Issue 18 (1): `apply_remote_batch`, the one inbound path — a batch of remote states applied
in one transaction, its writes in a fixed number of statements whatever its size, each state
with its own correlation id, the metrics counted, and the engine's guards kept per state.

Against the simulated Gitea over loopback: the states are what its API lists.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from django.db import connection as db_connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from integrations.providers.base import RemoteIssue
from integrations.providers.registry import client_for
from issues.canonical import remote_snapshot, remote_state_hash
from issues.engine import RemoteState
from issues.models import Conflict, Issue, RemoteTombstone, SyncLog, Trigger
from issues.services.issues import issue_update
from issues.services.sync import remote_batch_apply
from tests.engine.conftest import Harness


def listed(h: Harness) -> list[RemoteIssue]:
    client = client_for(h.connection)
    try:
        return sorted(client.list_issues().issues, key=lambda r: int(r.number))
    finally:
        client.close()


def apply(h: Harness, remotes: list[RemoteIssue], trigger: str = Trigger.POLL, **kw: Any) -> Any:
    states = [RemoteState(r, trigger, **kw) for r in remotes]
    return remote_batch_apply(connection=h.connection, states=states)


def operations(status: str) -> float:
    text = Client().get("/metrics").content.decode()
    for line in text.splitlines():
        if line.startswith("sync_operations_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            if labels == {"platform": "gitea", "status": status}:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_batch_writes_in_the_same_few_statements_whatever_its_size(harness: Harness) -> None:
    h = harness
    for n in range(45):
        h.fake.seed_issue(title=f"Issue {n}")
    remotes = listed(h)

    def statements(batch: list[RemoteIssue]) -> list[str]:
        with CaptureQueriesContext(db_connection) as captured:
            apply(h, batch)
        return [q["sql"].split(" ", 1)[0] for q in captured.captured_queries]

    small, large = statements(remotes[:3]), statements(remotes[3:])
    # New issues: the keys of the issues and of their log rows drawn in one query, then one
    # COPY of the issues (in a savepoint) and one of the log rows.
    assert small == large
    assert Issue.objects.filter(connection=h.connection).count() == 45
    assert large == ["SELECT", "SELECT", "SELECT", "SAVEPOINT", "COPY", "RELEASE", "COPY"], large

    for remote in remotes:
        h.fake.edit_issue(int(remote.number), title=f"Edited {remote.number}", notify=False)
    edited = listed(h)
    small, large = statements(edited[:3]), statements(edited[3:])
    assert small == large  # changed rows: one UPDATE, one INSERT of their log rows
    assert large.count("UPDATE") == 1, large
    assert len(large) <= 8, large
    assert set(Issue.objects.values_list("title", flat=True)) == {
        f"Edited {r.number}" for r in remotes
    }
    # Unchanged (the same states again): no write at all.
    assert "UPDATE" not in statements(edited) and "INSERT" not in statements(edited)


def test_results_are_in_order_and_the_mirror_matches_the_tracker(harness: Harness) -> None:
    h = harness
    for n in range(4):
        h.fake.seed_issue(title=f"Issue {n}", labels=["bug"] if n % 2 else [])
    first = listed(h)
    apply(h, first[:2])
    h.fake.edit_issue(1, title="Changed", notify=False)
    results = apply(h, listed(h))
    assert [r.outcome for r in results] == ["updated", "unchanged", "created", "created"]
    rows = {i.external_id: i for i in Issue.objects.filter(connection=h.connection)}
    assert [r.issue_id for r in results] == [rows[x.external_id].pk for x in first]
    for remote in listed(h):
        row = rows[remote.external_id]
        assert row.snapshot() == remote_snapshot(remote)
        assert row.remote_hash == remote_state_hash(remote, remote_snapshot(remote))


def test_each_state_keeps_its_correlation_id_and_the_metrics_count_each(harness: Harness) -> None:
    h = harness
    for n in range(3):
        h.fake.seed_issue(title=f"Issue {n}")
    before = operations("success")
    states = [
        RemoteState(remote, Trigger.WEBHOOK, correlation_id=f"cid-{remote.number}")
        for remote in listed(h)
    ]
    remote_batch_apply(connection=h.connection, states=states)
    logged = dict(SyncLog.objects.values_list("issue__external_number", "correlation_id"))
    assert logged == {"1": "cid-1", "2": "cid-2", "3": "cid-3"}
    assert operations("success") - before >= 3  # other test processes count too


def test_an_issue_named_twice_is_applied_in_order(harness: Harness) -> None:
    h = harness
    h.fake.seed_issue(title="Old")
    (old,) = listed(h)
    h.fake.edit_issue(1, title="New", notify=False)
    (new,) = listed(h)

    results = apply(h, [old, new])  # created, then updated by the newer state
    assert [r.outcome for r in results] == ["created", "updated"]
    assert Issue.objects.get().title == "New"
    assert [r.outcome for r in apply(h, [new, old])] == ["unchanged", "stale"]
    assert Issue.objects.get().title == "New"


def test_the_guards_hold_per_state_inside_a_batch(harness: Harness) -> None:
    """A tombstoned issue is not resurrected by a delivery, a conflict is recorded, and the
    other states of the batch are applied all the same."""
    h = harness
    for n in range(3):
        h.fake.seed_issue(title=f"Issue {n}")
    remotes = listed(h)
    apply(h, remotes[:2])
    RemoteTombstone.objects.create(connection=h.connection, external_id=remotes[2].external_id)
    issue_update(issue=Issue.objects.get(external_number="1"), changes={"title": "Local"})
    h.fake.edit_issue(1, title="Remote", notify=False)
    h.fake.edit_issue(2, title="Also remote", notify=False)

    results = apply(h, listed(h), trigger=Trigger.WEBHOOK)
    assert [r.outcome for r in results] == ["conflict", "updated", "stale"]
    assert Conflict.objects.get(resolved=False).field == "title"
    assert Issue.objects.get(external_number="2").title == "Also remote"
    assert not Issue.objects.filter(external_number="3").exists()


@pytest.mark.django_db(transaction=True)
def test_a_new_issue_another_transaction_inserted_first_is_merged_into_its_row(
    harness: Harness,
) -> None:
    """Two transactions see the same new issue (a reconciliation page and a delivery): the
    one that writes second hits the unique external id, and applies its states again — the
    collided one merged into the other's row, the rest of its batch created, no duplicate."""
    h = harness
    for n in range(3):
        h.fake.seed_issue(title=f"Issue {n}")
    remotes = listed(h)
    h.fake.edit_issue(2, title="Edited after the page", notify=False)
    (newer,) = [r for r in listed(h) if r.number == "2"]
    other: dict[str, Any] = {}

    def webhook_worker() -> None:
        try:
            (other["result"],) = remote_batch_apply(
                connection=h.connection, states=[RemoteState(newer, Trigger.WEBHOOK)]
            )
        finally:
            db_connection.close()

    def after_the_lock(execute: Any, sql: str, *args: Any) -> Any:
        # The batch found no row for any of its issues; before it writes them, the other
        # transaction inserts issue 2 and commits.
        if "nextval" in sql and "issues_issue" in str(args[0]) and not other:
            thread = threading.Thread(target=webhook_worker)
            thread.start()
            thread.join(10)
        return execute(sql, *args)

    with db_connection.execute_wrapper(after_the_lock):
        results = apply(h, remotes, trigger=Trigger.RECONCILE)

    assert other["result"].outcome == "created"
    rows = {i.external_number: i for i in Issue.objects.filter(connection=h.connection)}
    assert sorted(rows) == ["1", "2", "3"]  # no duplicate, nothing lost
    assert [r.outcome for r in results] == ["created", "stale", "created"]
    assert [r.issue_id for r in results] == [rows["1"].pk, rows["2"].pk, rows["3"].pk]
    assert rows["2"].title == "Edited after the page"  # the page's older state did not win
    created = SyncLog.objects.filter(action="create").values_list("issue__external_number")
    assert sorted(n for (n,) in created) == ["1", "2", "3"]  # one create each


# --- full reconciliation through the batch -------------------------------------------------


def test_a_reconciliation_creates_through_the_batch_with_the_runs_id_log_and_metrics(
    harness: Harness,
) -> None:
    """Before: the full sync bulk-inserted new issues itself — sync-log rows without a
    correlation id, no `sync_log` line, no metric."""
    h = harness
    for n in range(60):  # two pages of the fake's 50
        h.fake.seed_issue(title=f"Issue {n}")
    before = operations("success")
    run = h.poll(full=True)
    assert run.success and run.created == 60
    ids = set(SyncLog.objects.values_list("correlation_id", flat=True))
    assert len(ids) == 1 and ids != {""}  # the run's own id, on every row
    assert operations("success") - before >= 60  # other test processes count too


def test_a_reconciliation_skips_unchanged_issues_without_a_lock_or_a_write(
    harness: Harness,
) -> None:
    h = harness
    for n in range(60):
        h.fake.seed_issue(title=f"Issue {n}")
    h.poll(full=True)
    h.fake.edit_issue(7, title="Changed", notify=False)
    with CaptureQueriesContext(db_connection) as captured:
        run = h.poll(full=True)
    issue_writes = [
        q["sql"]
        for q in captured.captured_queries
        if '"issues_issue"' in q["sql"].split(" WHERE ")[0]
        and q["sql"].startswith(("UPDATE", "INSERT", "COPY"))
    ]
    locks = [q["sql"] for q in captured.captured_queries if "FOR UPDATE" in q["sql"]]
    assert (run.unchanged, run.updated) == (59, 1)
    assert len(issue_writes) == 1 and len(locks) == 1, (issue_writes, locks)
    assert Issue.objects.get(external_number="7").title == "Changed"


def test_a_first_import_gathers_statistics_so_a_pages_lock_probes_the_ids(
    harness: Harness,
) -> None:
    """Before: on an issue table never analyzed (a new installation), PostgreSQL planned a
    page's lock (`connection = … AND external_id IN (…)`) as a scan of all the connection's
    rows, each page slower than the last — quadratic over a first import."""
    h = harness
    with db_connection.cursor() as cursor:
        # As on a new installation (rolled back with the test).
        cursor.execute("DELETE FROM pg_statistic WHERE starelid = 'issues_issue'::regclass")
    for n in range(120):
        h.fake.seed_issue(title=f"Issue {n}")
    assert h.poll(full=True).created == 120

    ids = list(Issue.objects.order_by("-pk").values_list("external_id", flat=True)[:50])
    plan = (
        Issue.objects.select_for_update()
        .filter(connection=h.connection, external_id__in=ids)
        .order_by("pk")
        .explain()
    )
    # The planner knows the ids pick one row each (without statistics: a guess of 1 row,
    # and a plan that reads every row of the connection once the table is large).
    estimated = re.match(r"LockRows .*rows=(\d+)", plan)
    assert estimated and int(estimated.group(1)) == len(ids), plan

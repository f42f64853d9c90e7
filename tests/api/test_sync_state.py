"""sync/status/, sync/history/, sync/mappings/ and sync/conflicts/ (list, read, resolve)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from issues.models import (
    Conflict,
    Issue,
    OutboxEntry,
    OutboxStatus,
    SyncLog,
    SyncRun,
)
from tests.api.conftest import ids, make_conflict, make_connection, make_issue

SPEC_CONFLICT_FIELDS = {
    "id",
    "issue",
    "field",
    "base_value",
    "local_value",
    "remote_value",
    "detected_at",
    "resolved",
    "resolution",
}
SPEC_STATUS_FIELDS = {
    "id",
    "name",
    "provider",
    "pending_outbox",
    "failed_outbox",
    "open_conflicts",
    "last_webhook_at",
    "last_polled_at",
    "webhook_healthy",
}


def _outbox(issue, status, n=1):
    for _ in range(n):
        OutboxEntry.objects.create(
            connection=issue.connection,
            issue=issue,
            operation="update",
            changes={"title": "x"},
            status=status,
            next_attempt_at=timezone.now(),
        )


def test_status_counts_per_connection(world):
    _outbox(world.alpha_issue, OutboxStatus.PENDING, 2)
    _outbox(world.alpha_issue, OutboxStatus.IN_PROGRESS)
    _outbox(world.alpha_issue, OutboxStatus.FAILED)
    _outbox(world.alpha_issue, OutboxStatus.DONE, 3)
    make_conflict(world.alpha_issue, "title")
    make_conflict(world.alpha_issue, "state", resolved=True)
    polled = timezone.now() - timedelta(minutes=3)
    world.beta.last_polled_at = polled
    world.beta.webhook_healthy = False
    world.beta.save()
    rows = world.client().get("/api/v1/sync/status/").json()["results"]
    by_name = {row["name"]: row for row in rows}
    assert set(by_name["alpha"]) >= SPEC_STATUS_FIELDS
    assert (
        by_name["alpha"]["pending_outbox"],
        by_name["alpha"]["failed_outbox"],
        by_name["alpha"]["open_conflicts"],
    ) == (3, 1, 2)
    assert (
        by_name["beta"]["pending_outbox"],
        by_name["beta"]["failed_outbox"],
        by_name["beta"]["open_conflicts"],
    ) == (0, 0, 1)
    assert by_name["beta"]["webhook_healthy"] is False
    assert by_name["beta"]["last_polled_at"].startswith(polled.strftime("%Y-%m-%dT%H:%M"))
    assert by_name["alpha"]["provider"] == "gitea"


def test_status_costs_the_same_queries_for_many_connections(world, django_assert_num_queries):
    client = world.client()
    client.get("/api/v1/sync/status/")  # warm-up: last_used_at written once

    def queries_for_status():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            assert client.get("/api/v1/sync/status/").status_code == 200
        return len(captured)

    few = queries_for_status()
    for n in range(8):
        extra = make_connection(f"extra-{n}")
        issue = make_issue(extra, n)
        _outbox(issue, OutboxStatus.PENDING)
        make_conflict(issue)
    assert queries_for_status() == few


def test_sync_history_lists_runs_with_filters(world):
    ok = SyncRun.objects.create(
        connection=world.alpha,
        kind="poll",
        success=True,
        seen=4,
        finished_at=timezone.now() + timedelta(seconds=5),
    )
    SyncRun.objects.create(
        connection=world.alpha, kind="reconcile", success=False, error="transient: boom"
    )
    SyncRun.objects.create(connection=world.beta, kind="poll", success=True)
    client = world.client()
    assert client.get("/api/v1/sync/history/").json()["count"] == 3
    rows = client.get(f"/api/v1/sync/history/?connection={world.alpha.pk}&success=true").json()
    assert ids(rows["results"]) == [ok.pk]
    assert rows["results"][0]["seen"] == 4 and rows["results"][0]["duration_seconds"] >= 0
    failed = client.get("/api/v1/sync/history/?kind=reconcile").json()["results"]
    # The reason in words, never the stored text (which may quote the tracker: SPEC §8).
    assert (
        failed[0]["error"]
        == "transient: the tracker call failed (details in the admin and the logs)"
    )
    assert failed[0]["duration_seconds"] is None
    assert client.get("/api/v1/sync/history/?kind=weekly").status_code == 400


def test_mappings_pair_local_ids_with_tracker_ids(world):
    local = make_issue(
        world.alpha, 9, external_id=None, external_number="", remote_url="", sync_status="pending"
    )
    client = world.client()
    rows = client.get(f"/api/v1/sync/mappings/?connection={world.alpha.pk}").json()["results"]
    assert {row["id"]: row["external_id"] for row in rows} == {
        world.alpha_issue.pk: "1001",
        local.pk: None,
    }
    row = next(r for r in rows if r["id"] == world.alpha_issue.pk)
    assert set(row) == {
        "id",
        "connection",
        "external_id",
        "external_number",
        "remote_url",
        "sync_status",
    }
    assert row["external_number"] == "1" and row["remote_url"].endswith("/issues/1")
    linked = client.get("/api/v1/sync/mappings/?linked=false").json()["results"]
    assert ids(linked) == [local.pk]
    by_id = client.get("/api/v1/sync/mappings/?external_id=1002").json()["results"]
    assert ids(by_id) == [world.beta_issue.pk]


# --- conflicts -------------------------------------------------------------------------------


def test_conflicts_list_and_filters(world):
    done = make_conflict(world.alpha_issue, "title", resolved=True, resolution="remote_wins")
    client = world.client()
    all_rows = client.get("/api/v1/sync/conflicts/").json()
    assert all_rows["count"] == 3
    assert set(all_rows["results"][0]) >= SPEC_CONFLICT_FIELDS
    open_rows = client.get("/api/v1/sync/conflicts/?resolved=false").json()["results"]
    assert ids(open_rows) == sorted([world.alpha_conflict.pk, world.beta_conflict.pk])
    assert {row["resolution"] for row in open_rows} == {""}
    closed = client.get("/api/v1/sync/conflicts/?resolved=true").json()["results"]
    assert ids(closed) == [done.pk] and closed[0]["resolution"] == "remote_wins"
    by_issue = client.get(f"/api/v1/sync/conflicts/?issue={world.beta_issue.pk}").json()
    assert ids(by_issue["results"]) == [world.beta_conflict.pk]
    by_conn = client.get(f"/api/v1/sync/conflicts/?connection={world.alpha.pk}").json()
    assert by_conn["count"] == 2
    assert client.get("/api/v1/sync/conflicts/?field=colour").status_code == 400


def test_read_one_conflict(world):
    response = world.client().get(f"/api/v1/sync/conflicts/{world.alpha_conflict.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert (
        body["issue"],
        body["field"],
        body["base_value"],
        body["local_value"],
        body["remote_value"],
        body["resolved"],
    ) == (world.alpha_issue.pk, "body", "base", "local", "remote", False)


def _resolve(world, conflict, payload, key=None):
    return world.client(key).post(
        f"/api/v1/sync/conflicts/{conflict.pk}/resolve/", payload, format="json"
    )


@pytest.mark.parametrize(
    ("payload", "expected_body", "pushed"),
    [
        ({"strategy": "remote_wins"}, "remote", False),
        ({"strategy": "local_wins"}, "local", True),
        ({"strategy": "merge", "values": {"body": "local + remote"}}, "local + remote", True),
        ({"strategy": "merge", "values": {"body": "remote"}}, "remote", False),
    ],
)
def test_resolve_applies_the_strategy_through_the_service(world, payload, expected_body, pushed):
    issue = world.alpha_issue
    Issue.objects.filter(pk=issue.pk).update(body="remote", sync_status="conflict")
    response = _resolve(world, world.alpha_conflict, payload)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["resolved"] is True and body["resolution"] == payload["strategy"]
    assert body["resolved_value"] == expected_body
    issue.refresh_from_db()
    assert issue.body == expected_body
    assert issue.sync_status == ("pending" if pushed else "synced")
    assert OutboxEntry.objects.filter(issue=issue).exists() is pushed
    conflict = Conflict.objects.get(pk=world.alpha_conflict.pk)
    assert conflict.resolved_by == world.agent
    assert SyncLog.objects.filter(issue=issue, action="resolve").count() == 1


def test_resolving_twice_is_409(world):
    assert _resolve(world, world.alpha_conflict, {"strategy": "remote_wins"}).status_code == 200
    again = _resolve(world, world.alpha_conflict, {"strategy": "local_wins"})
    assert again.status_code == 409 and again.json()["code"] == "already_resolved"


@pytest.mark.parametrize(
    ("payload", "bad_field"),
    [
        ({}, "strategy"),
        ({"strategy": "coin_flip"}, "strategy"),
        ({"strategy": "merge"}, "values"),
        ({"strategy": "merge", "values": {"title": "wrong field"}}, "values"),
        ({"strategy": "merge", "values": "body"}, "values"),
        ({"strategy": "merge", "values": {"body": ["not", "text"]}}, "values"),
        ({"strategy": "remote_wins", "value": "typo"}, "value"),
    ],
)
def test_bad_resolve_input_is_400_naming_the_field(world, payload, bad_field):
    response = _resolve(world, world.alpha_conflict, payload)
    assert response.status_code == 400, response.content
    assert bad_field in response.json()
    assert not Conflict.objects.get(pk=world.alpha_conflict.pk).resolved


def test_merge_of_a_label_conflict_validates_the_list(world):
    conflict = make_conflict(
        world.beta_issue, "labels", base_value=["docs"], local_value=["docs", "a"], remote_value=[]
    )
    bad = _resolve(world, conflict, {"strategy": "merge", "values": {"labels": ["", "x"]}})
    assert bad.status_code == 400
    assert "labels" in bad.json()["values"]
    good = _resolve(world, conflict, {"strategy": "merge", "values": {"labels": ["b", "a"]}})
    assert good.status_code == 200
    assert good.json()["resolved_value"] == ["a", "b"]
    world.beta_issue.refresh_from_db()
    assert world.beta_issue.labels == ["a", "b"]


@pytest.mark.parametrize(
    ("path", "bad_field"),
    [
        ("/api/v1/sync/mappings/?connection=abc", "connection"),
        ("/api/v1/sync/mappings/?sync_status=lost", "sync_status"),
        ("/api/v1/sync/history/?connection=-4", "connection"),
        ("/api/v1/sync/conflicts/?issue=x", "issue"),
        ("/api/v1/sync/configs/?enabled=perhaps&provider=svn", "provider"),
    ],
)
def test_bad_query_parameters_are_400_naming_them(world, path, bad_field):
    response = world.client().get(path)
    assert response.status_code == 400, response.content
    assert bad_field in response.json()

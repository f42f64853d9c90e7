"""issues/ endpoints: list + filters + pagination, create, update, close/reopen, history,
refresh — with the 400s, 404s and 409s an agent can meet."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.providers.base import NotFoundError
from issues.models import (
    Action,
    Conflict,
    Issue,
    OutboxEntry,
    OutboxOperation,
    SyncLog,
    SyncStatus,
    Trigger,
)
from tests.api.conftest import make_conflict, make_connection, make_issue

SPEC_ISSUE_FIELDS = {
    "id",
    "connection",
    "title",
    "body",
    "state",
    "labels",
    "assignees",
    "milestone",
    "external_id",
    "external_number",
    "remote_url",
    "sync_status",
    "sync_error",  # SPEC §6
    "created_at",
    "updated_at",
    "remote_updated_at",
}


@pytest.fixture
def catalogue(world):
    """Issues with distinct states, labels, assignees and statuses on their own connection."""
    alpha = make_connection("catalogue")
    rows = {
        "crash": make_issue(
            alpha,
            10,
            title="Crash on save",
            body="stack trace",
            labels=["bug", "ui"],
            assignees=["alice"],
        ),
        "docs": make_issue(
            alpha,
            11,
            title="Write docs",
            body="mention the crash",
            labels=["docs"],
            assignees=["bob"],
            state="closed",
        ),
        "perf": make_issue(
            alpha,
            12,
            title="Slow start",
            labels=["perf"],
            assignees=["alice", "carol"],
            sync_status=SyncStatus.PENDING,
        ),
        "unicode": make_issue(alpha, 13, title="Ünïcode label", labels=["été", 'a"b']),
    }
    return rows


def _titles(response):
    assert response.status_code == 200, response.content
    return sorted(row["title"] for row in response.json()["results"])


# --- list, filters, pagination ---------------------------------------------------------------


def test_an_issue_has_exactly_the_spec_fields(world):
    response = world.client().get(f"/api/v1/issues/{world.alpha_issue.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == SPEC_ISSUE_FIELDS
    assert body["labels"] == ["bug"] and body["assignees"] == ["alice"]
    assert body["milestone"] is None and body["connection"] == world.alpha.pk
    assert body["external_number"] == "1"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("state=closed", ["Write docs"]),
        ("label=bug", ["Crash on save"]),
        ("label=été", ["Ünïcode label"]),
        ('label=a"b', ["Ünïcode label"]),
        ("label=bu", []),  # an element, not a substring
        ("assignee=alice", ["Crash on save", "Slow start"]),
        ("assignee=carol", ["Slow start"]),
        ("sync_status=pending", ["Slow start"]),
        ("search=CRASH", ["Crash on save", "Write docs"]),  # title or body
        ("search=trace", ["Crash on save"]),
        ("external_number=12", ["Slow start"]),
        ("state=open&label=bug&assignee=alice", ["Crash on save"]),
    ],
)
def test_issue_filters(world, catalogue, query, expected):
    connection = catalogue["crash"].connection_id
    response = world.client().get(f"/api/v1/issues/?connection={connection}&{query}")
    assert _titles(response) == expected


def test_filter_by_connection(world, catalogue):
    beta = world.client().get(f"/api/v1/issues/?connection={world.beta.pk}")
    assert _titles(beta) == ["Issue 2"]


def test_updated_since_filter(world, catalogue):
    old = timezone.now() - timedelta(days=3)
    Issue.objects.exclude(pk=catalogue["crash"].pk).update(updated_at=old)
    assert Issue.objects.count() == 6
    since = (timezone.now() - timedelta(days=1)).isoformat()
    response = world.client().get("/api/v1/issues/", {"updated_since": since})
    assert _titles(response) == ["Crash on save"]


def test_ordering(world, catalogue):
    connection = catalogue["crash"].connection_id
    client = world.client()
    response = client.get(f"/api/v1/issues/?connection={connection}&ordering=id")
    numbers = [row["external_number"] for row in response.json()["results"]]
    assert numbers == ["10", "11", "12", "13"]
    response = client.get(f"/api/v1/issues/?connection={connection}&ordering=-id")
    assert [row["external_number"] for row in response.json()["results"]] == numbers[::-1]


@pytest.mark.parametrize(
    ("query", "bad_field"),
    [
        ("state=bogus", "state"),
        ("sync_status=nope", "sync_status"),
        ("connection=abc", "connection"),
        ("connection=99999999999999999999999", "connection"),
        ("connection=1.5", "connection"),
        ("updated_since=yesterday", "updated_since"),
        ("updated_since=9999-12-31T23:59:59-12:00", "updated_since"),
        ("ordering=title", "ordering"),
        (f"label={'x' * 300}", "label"),
    ],
)
def test_bad_filter_values_are_400_naming_the_parameter(world, query, bad_field):
    response = world.client().get(f"/api/v1/issues/?{query}")
    assert response.status_code == 400, response.content
    assert bad_field in response.json()


def test_pagination_counts_and_links(world):
    for number in range(100, 125):
        make_issue(world.alpha, number)
    client = world.client()
    first = client.get("/api/v1/issues/?page_size=10").json()
    assert first["count"] == 27 and len(first["results"]) == 10
    assert first["previous"] is None and "page=2" in first["next"]
    last = client.get("/api/v1/issues/?page_size=10&page=3").json()
    assert len(last["results"]) == 7 and last["next"] is None
    seen = {
        row["id"]
        for page in (1, 2, 3)
        for row in client.get(f"/api/v1/issues/?page_size=10&page={page}").json()["results"]
    }
    assert len(seen) == 27
    assert client.get("/api/v1/issues/?page_size=10&page=4").status_code == 404
    assert len(client.get("/api/v1/issues/?page_size=1000").json()["results"]) == 27
    assert len(client.get("/api/v1/issues/").json()["results"]) == 27  # default 50


# --- create ----------------------------------------------------------------------------------


def test_create_issue_queues_it_for_the_tracker(world):
    response = world.client().post(
        "/api/v1/issues/",
        {
            "connection": world.alpha.pk,
            "title": "  New crash  ",
            "body": "  indented\n",
            "labels": ["bug", "bug", "ui"],
            "assignees": ["alice"],
            "milestone": "v1",
        },
        format="json",
        headers={"X-Correlation-ID": "agent-run-42"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == SPEC_ISSUE_FIELDS
    assert body["title"] == "New crash" and body["body"] == "  indented\n"
    assert body["labels"] == ["bug", "ui"] and body["milestone"] == "v1"
    assert body["sync_status"] == "pending" and body["external_id"] is None
    issue = Issue.objects.get(pk=body["id"])
    entry = OutboxEntry.objects.get(issue=issue)
    assert entry.operation == OutboxOperation.CREATE and entry.correlation_id == "agent-run-42"
    log = SyncLog.objects.get(issue=issue)
    assert (log.action, log.trigger) == (Action.CREATE, Trigger.API)


def test_create_with_only_connection_and_title(world):
    response = world.client().post(
        "/api/v1/issues/", {"connection": world.alpha.pk, "title": "Minimal"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["body"], body["state"], body["labels"], body["milestone"]) == (
        "",
        "open",
        [],
        None,
    )


def test_create_on_a_connection_without_create_remote_is_synced_locally(world):
    world.alpha.create_remote = False
    world.alpha.save()
    response = world.client().post(
        "/api/v1/issues/", {"connection": world.alpha.pk, "title": "Local"}, format="json"
    )
    assert response.json()["sync_status"] == "synced"
    assert not OutboxEntry.objects.exists()


def test_create_on_an_inbound_only_connection_is_409(world):
    world.alpha.direction = "inbound"
    world.alpha.save()
    response = world.client().post(
        "/api/v1/issues/", {"connection": world.alpha.pk, "title": "No"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "read_only_connection"
    assert not Issue.objects.filter(title="No").exists()


@pytest.mark.parametrize(
    ("payload", "bad_field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": None}, "title"),
        ({"title": 12}, "title"),
        ({"title": "x" * 1001}, "title"),
        ({"title": "ok", "body": ["not", "text"]}, "body"),
        ({"title": "ok", "state": "deleted"}, "state"),
        ({"title": "ok", "labels": "bug"}, "labels"),
        ({"title": "ok", "labels": [""]}, "labels"),
        ({"title": "ok", "labels": [1]}, "labels"),
        ({"title": "ok", "labels": [None]}, "labels"),
        ({"title": "ok", "labels": ["l"] * 101}, "labels"),
        ({"title": "ok", "labels": ["x" * 256]}, "labels"),
        ({"title": "ok", "assignees": [{"login": "a"}]}, "assignees"),
        ({"title": "ok", "milestone": 3}, "milestone"),
        ({"title": "nul\u0000byte"}, "title"),
        ({"title": "lone \ud800 surrogate"}, "title"),
        ({"title": "ok", "labels": ["\udfff"]}, "labels"),
        ({"title": "ok", "priority": "high"}, "priority"),
    ],
)
def test_create_with_bad_input_is_400_naming_the_field(world, payload, bad_field):
    # Sent as ASCII-escaped JSON, as a client would send a lone surrogate.
    raw = json.dumps({"connection": world.alpha.pk, **payload})
    response = world.client().generic(
        "POST", "/api/v1/issues/", raw, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert bad_field in response.json()
    assert Issue.objects.count() == 2


@pytest.mark.parametrize("connection", [None, "alpha", 0, -1, 2**70, 987654])
def test_create_with_a_bad_connection_is_400(world, connection):
    response = world.client().post(
        "/api/v1/issues/", {"connection": connection, "title": "t"}, format="json"
    )
    assert response.status_code == 400
    assert "connection" in response.json()


def test_a_body_that_is_not_json_is_400(world):
    response = world.client().generic(
        "POST", "/api/v1/issues/", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    response = world.client().post("/api/v1/issues/", ["a", "list"], format="json")
    assert response.status_code == 400


# --- update ----------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_sent(world):
    issue = world.alpha_issue
    response = world.client().patch(
        f"/api/v1/issues/{issue.pk}/",
        {"title": "Renamed", "labels": ["bug", "ui"], "milestone": ""},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["title"], body["labels"], body["assignees"], body["milestone"]) == (
        "Renamed",
        ["bug", "ui"],
        ["alice"],
        None,
    )
    assert body["sync_status"] == "conflict"  # the seeded conflict on `body` is still open
    entry = OutboxEntry.objects.get(issue=issue)
    assert entry.changes == {"title": "Renamed", "labels": ["bug", "ui"]}


def test_patch_ignores_output_only_fields_an_agent_echoes_back(world):
    client = world.client()
    issue = client.get(f"/api/v1/issues/{world.beta_issue.pk}/").json()
    issue.pop("body")  # the field with the open conflict
    issue["title"] = "Echoed and edited"
    issue["sync_status"] = "synced"
    response = client.patch(f"/api/v1/issues/{world.beta_issue.pk}/", issue, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["title"] == "Echoed and edited"


def test_patch_with_nothing_to_change_is_200_and_changes_nothing(world):
    response = world.client().patch(f"/api/v1/issues/{world.alpha_issue.pk}/", {}, format="json")
    assert response.status_code == 200
    assert not OutboxEntry.objects.exists() and not SyncLog.objects.exists()


def test_patch_of_a_field_in_conflict_is_409_with_the_fields(world):
    issue, conflict = world.alpha_issue, world.alpha_conflict
    response = world.client().patch(
        f"/api/v1/issues/{issue.pk}/", {"body": "mine", "title": "also"}, format="json"
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "issue_in_conflict"
    assert body["conflicting_fields"] == ["body"] and body["conflicts"] == [conflict.pk]
    issue.refresh_from_db()
    assert issue.title == "Issue 1"  # nothing applied, not even the free field


def test_patch_with_force_settles_the_conflict(world):
    issue, conflict = world.alpha_issue, world.alpha_conflict
    response = world.client().patch(
        f"/api/v1/issues/{issue.pk}/", {"body": "mine", "force": True}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["body"] == "mine"
    conflict.refresh_from_db()
    assert conflict.resolved and conflict.resolved_value == "mine"


@pytest.mark.parametrize(
    ("payload", "bad_field"),
    [
        ({"title": ""}, "title"),
        ({"title": None}, "title"),
        ({"state": "done"}, "state"),
        ({"labels": None}, "labels"),
        ({"labels": [""]}, "labels"),
        ({"force": "sometimes"}, "force"),
        ({"titel": "typo"}, "titel"),
    ],
)
def test_patch_with_bad_input_is_400_naming_the_field(world, payload, bad_field):
    response = world.client().patch(
        f"/api/v1/issues/{world.alpha_issue.pk}/", payload, format="json"
    )
    assert response.status_code == 400, response.content
    assert bad_field in response.json()


def test_patch_on_an_inbound_only_connection_is_409(world):
    world.beta.direction = "inbound"
    world.beta.save()
    response = world.client().patch(
        f"/api/v1/issues/{world.beta_issue.pk}/", {"title": "x"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "read_only_connection"


@pytest.mark.parametrize("issue_id", ["0", "987654", str(2**63), str(10**30)])
def test_unknown_issue_ids_are_404(world, issue_id):
    client = world.client()
    assert client.get(f"/api/v1/issues/{issue_id}/").status_code == 404
    assert client.patch(f"/api/v1/issues/{issue_id}/", {}, format="json").status_code == 404
    assert client.post(f"/api/v1/issues/{issue_id}/close/").status_code == 404


# --- close, reopen, history ------------------------------------------------------------------


def test_close_and_reopen(world):
    client, issue = world.client(), world.beta_issue
    closed = client.post(f"/api/v1/issues/{issue.pk}/close/")
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    again = client.post(f"/api/v1/issues/{issue.pk}/close/")
    assert again.status_code == 200 and again.json()["state"] == "closed"
    reopened = client.post(f"/api/v1/issues/{issue.pk}/reopen/")
    assert reopened.status_code == 200 and reopened.json()["state"] == "open"
    history = client.get(f"/api/v1/issues/{issue.pk}/history/").json()
    assert [row["action"] for row in history["results"]] == ["reopen", "close"]
    assert history["count"] == 2
    assert {row["direction"] for row in history["results"]} == {"outbound"}


def test_close_while_the_state_is_in_conflict_is_409(world):
    make_conflict(
        world.beta_issue, "state", base_value="open", local_value="closed", remote_value="open"
    )
    response = world.client().post(f"/api/v1/issues/{world.beta_issue.pk}/close/")
    assert response.status_code == 409
    assert response.json()["conflicting_fields"] == ["state"]


def test_history_is_the_issues_own_and_paginated(world):
    client = world.client()
    for n in range(4):
        client.patch(f"/api/v1/issues/{world.beta_issue.pk}/", {"title": f"v{n}"}, format="json")
    client.patch(f"/api/v1/issues/{world.alpha_issue.pk}/", {"title": "other"}, format="json")
    page = client.get(f"/api/v1/issues/{world.beta_issue.pk}/history/?page_size=3").json()
    assert page["count"] == 4 and len(page["results"]) == 3
    assert page["results"][0]["after"]["title"] == "v3"
    assert page["results"][0]["before"]["title"] == "v2"
    assert {row["issue"] for row in page["results"]} == {world.beta_issue.pk}


# --- refresh -----------------------------------------------------------------------------------


def test_refresh_of_an_issue_not_yet_in_the_tracker_is_409(world):
    local = make_issue(world.alpha, 50, external_id=None, external_number="", remote_url="")
    response = world.client().post(f"/api/v1/issues/{local.pk}/refresh/")
    assert response.status_code == 409
    assert response.json()["code"] == "not_in_tracker"


def test_refresh_when_the_tracker_fails_is_502(world, monkeypatch):
    class GoneTracker:
        def get_issue(self, number):
            raise NotFoundError(f"issue {number} not found")

        def close(self):
            pass

    monkeypatch.setattr("issues.api.views.client_for", lambda connection: GoneTracker())
    response = world.client().post(f"/api/v1/issues/{world.alpha_issue.pk}/refresh/")
    assert response.status_code == 502
    assert response.json()["code"] == "NotFoundError"
    assert Issue.objects.filter(pk=world.alpha_issue.pk).exists()


def test_refresh_for_a_provider_without_a_client_is_409(world):
    jira = make_connection("jira-board", provider="jira", repository="PROJ")
    issue = make_issue(jira, 7)
    response = world.client().post(f"/api/v1/issues/{issue.pk}/refresh/")
    assert response.status_code == 409
    assert response.json()["code"] == "provider_unsupported"


def test_conflict_counts_match_sync_status(world):
    assert Conflict.objects.filter(resolved=False).count() == 2
    response = world.client().get("/api/v1/issues/?sync_status=conflict")
    assert response.json()["count"] == 0  # seeded rows keep `synced`; the engine sets it


@pytest.mark.parametrize(
    "path",
    ["/api/v1/issues/abc/", "/api/v1/issues/-1/close/", "/api/v1/nothing/", "/api/v1/issues/1/\n/"],
)
def test_unknown_api_paths_are_json_404s(world, path):
    for method in ("get", "post", "delete"):
        response = getattr(world.client(), method)(path)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_a_missing_trailing_slash_is_pointed_out(world):
    response = world.client().post("/api/v1/issues", {"title": "x"}, format="json")
    assert response.status_code == 404
    assert response.json()["detail"].endswith("/api/v1/issues/")


def test_updated_since_with_an_extreme_offset_is_accepted(world):
    response = world.client().get("/api/v1/issues/", {"updated_since": "2020-01-01T00:00:00+18:56"})
    assert response.status_code == 200
    assert response.json()["count"] == 2

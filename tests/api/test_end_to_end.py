"""The API against a real fake Gitea on loopback and the real database: an issue created by
an agent reaches the tracker, a tracker edit comes back on refresh, and a conflict made by
both sides is resolved through the API and pushed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from integrations.fake_trackers.gitea import FakeGitea
from integrations.models import Connection
from integrations.providers.base import split_marker
from issues.models import Issue
from issues.outbox import drain
from issues.polling import sync_connection
from issues.services.tokens import api_token_create
from tests.api.conftest import client_with


class Tracker:
    def __init__(self, fake: FakeGitea, connection: Connection, client: Any) -> None:
        self.fake = fake
        self.connection = connection
        self.api = client
        self.hooks: list[Any] = []
        # Webhooks are captured, not delivered: each test decides what reaches the mirror.
        fake.webhook_sink = self.hooks.append


@pytest.fixture
def tracker(db: Any, django_user_model: Any) -> Iterator[Tracker]:
    fake = FakeGitea(repository="acme/widgets", token="gitea-token", webhook_secret="s")
    fake.start()
    connection = Connection.objects.create(
        name="acme",
        provider="gitea",
        base_url=fake.url,
        repository="acme/widgets",
        api_token="gitea-token",
        webhook_secret="s",
    )
    _, key = api_token_create(user=django_user_model.objects.create_user("agent"))
    try:
        yield Tracker(fake, connection, client_with(key))
    finally:
        fake.stop()


def test_an_issue_created_through_the_api_is_created_in_the_tracker(tracker):
    tracker.fake.seed_issue(title="Existing", labels=["bug"])  # makes the label known
    created = tracker.api.post(
        "/api/v1/issues/",
        {
            "connection": tracker.connection.pk,
            "title": "Crash on save",
            "body": "Steps…",
            "labels": ["bug"],
            "assignees": ["alice"],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    issue_id = created.json()["id"]
    assert created.json()["sync_status"] == "pending"

    report = drain()
    assert report.pushed == 1

    issue = tracker.api.get(f"/api/v1/issues/{issue_id}/").json()
    assert issue["sync_status"] == "synced"
    assert issue["external_number"] and issue["external_id"]
    number = int(issue["external_number"])
    assert issue["remote_url"] == f"{tracker.fake.url}/acme/widgets/issues/{number}"
    remote = tracker.fake.issues[number]
    body, marker = split_marker(remote.body)  # the create marker stays hidden from users
    assert marker is not None
    assert (remote.title, body, remote.labels, remote.assignees) == (
        "Crash on save",
        "Steps…",
        ["bug"],
        ["alice"],
    )
    mapping = tracker.api.get("/api/v1/sync/mappings/").json()["results"]
    assert {row["id"]: row["external_number"] for row in mapping}[issue_id] == str(number)


def test_close_through_the_api_closes_it_in_the_tracker(tracker):
    remote = tracker.fake.seed_issue(title="To close")
    sync_connection(connection_id=tracker.connection.pk, full=True)
    issue = Issue.objects.get(external_number=str(remote.number))
    assert tracker.api.post(f"/api/v1/issues/{issue.pk}/close/").json()["state"] == "closed"
    drain()
    assert tracker.fake.issues[remote.number].state == "closed"


def test_refresh_fetches_the_tracker_state_now(tracker):
    remote = tracker.fake.seed_issue(title="Original")
    sync_connection(connection_id=tracker.connection.pk, full=True)
    issue = Issue.objects.get(external_number=str(remote.number))
    tracker.fake.advance_clock(5)
    tracker.fake.edit_issue(
        remote.number, notify=False, title="Edited in Gitea", labels=["triaged"]
    )
    response = tracker.api.post(f"/api/v1/issues/{issue.pk}/refresh/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["outcome"] == "updated"
    assert (body["issue"]["title"], body["issue"]["labels"]) == ("Edited in Gitea", ["triaged"])
    again = tracker.api.post(f"/api/v1/issues/{issue.pk}/refresh/").json()
    assert again["outcome"] == "unchanged"
    history = tracker.api.get(f"/api/v1/issues/{issue.pk}/history/").json()["results"]
    assert history[0]["trigger"] == "manual" and history[0]["direction"] == "inbound"


def test_a_conflict_made_by_both_sides_is_resolved_through_the_api(tracker):
    remote = tracker.fake.seed_issue(title="Crash on save")
    sync_connection(connection_id=tracker.connection.pk, full=True)
    issue = Issue.objects.get(external_number=str(remote.number))
    api = tracker.api

    assert (
        api.patch(
            f"/api/v1/issues/{issue.pk}/", {"title": "local title"}, format="json"
        ).status_code
        == 200
    )
    tracker.fake.advance_clock(5)
    tracker.fake.edit_issue(remote.number, notify=False, title="remote title")
    refreshed = api.post(f"/api/v1/issues/{issue.pk}/refresh/").json()
    assert refreshed["outcome"] == "conflict"
    assert refreshed["issue"]["sync_status"] == "conflict"
    assert refreshed["issue"]["title"] == "remote title"  # the mirror keeps the remote value

    conflicts = api.get("/api/v1/sync/conflicts/?resolved=false").json()["results"]
    assert [
        (c["field"], c["base_value"], c["local_value"], c["remote_value"]) for c in conflicts
    ] == [("title", "Crash on save", "local title", "remote title")]
    status = api.get("/api/v1/sync/status/").json()["results"][0]
    assert status["open_conflicts"] == 1

    blocked = api.patch(f"/api/v1/issues/{issue.pk}/", {"title": "third"}, format="json")
    assert blocked.status_code == 409 and blocked.json()["conflicting_fields"] == ["title"]

    resolved = api.post(
        f"/api/v1/sync/conflicts/{conflicts[0]['id']}/resolve/",
        {"strategy": "local_wins"},
        format="json",
    )
    assert resolved.status_code == 200, resolved.content
    drain()
    assert tracker.fake.issues[remote.number].title == "local title"
    final = api.get(f"/api/v1/issues/{issue.pk}/").json()
    assert (final["title"], final["sync_status"]) == ("local title", "synced")
    assert api.get("/api/v1/sync/status/").json()["results"][0]["open_conflicts"] == 0

"""The real engine against a real Redmine 5.0 (issue 14, item 3): polls, full passes and the
outbox through `RedmineClient`, with a human's edits made over Redmine's REST API.

Each test gets a fresh project (issue tracking, versions v1/v2, members alice/bob/carol, the
global "Labels" field); the database rows are per test.
"""

from __future__ import annotations

import math
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.utils import timezone

from integrations.models import ConflictPolicy, Connection
from integrations.providers.base import ProviderClient
from integrations.providers.registry import client_for
from issues.models import Issue, OutboxEntry, SyncRun
from issues.outbox import drain
from issues.polling import sync_connection
from issues.services.tokens import api_token_create
from tests.api.conftest import client_with
from tests.redmine.server import (
    OUTSIDER,
    SCRIPT,
    RedmineProject,
    RedmineServer,
    drop_project,
    make_project,
)

pytestmark = [pytest.mark.redmine, pytest.mark.timeout(600)]
PAGE = 100  # Redmine's largest `limit`


class Redmine:
    """A human in Redmine (REST as the admin) and the connection the engine syncs with."""

    def __init__(self, project: RedmineProject, connection: Connection, api: Any) -> None:
        self.project = project
        self.connection = connection
        self.api = api  # the product's REST API, as an agent
        self.http = project.server.session()

    def url(self, path: str) -> str:
        return f"{self.project.url}{path}"

    def create(self, **fields: Any) -> int:
        fields.setdefault("subject", "an issue")
        response = self.http.post(
            self.url("/issues.json"),
            json={"issue": {"project_id": self.project.identifier, **fields}},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        return int(response.json()["issue"]["id"])

    def get(self, issue_id: int) -> dict[str, Any]:
        response = self.http.get(
            self.url(f"/issues/{issue_id}.json"), params={"include": "journals"}, timeout=30
        )
        assert response.status_code == 200, response.text
        return dict(response.json()["issue"])

    def put(self, issue_id: int, **fields: Any) -> None:
        response = self.http.put(
            self.url(f"/issues/{issue_id}.json"), json={"issue": fields}, timeout=30
        )
        assert response.status_code == 204, response.text

    def labels(self, issue: dict[str, Any]) -> set[str]:
        field = self.project.server.labels_field_id
        return set(next(f["value"] for f in issue["custom_fields"] if f["id"] == field))

    def labels_form(self, *values: str) -> list[dict[str, Any]]:
        return [{"id": self.project.server.labels_field_id, "value": list(values) or [""]}]

    def user(self, login: str) -> int:
        return self.project.server.users[login]

    def poll(self, *, full: bool = False) -> SyncRun:
        run = sync_connection(connection_id=self.connection.pk, full=full)
        assert run.success, run.error
        return run

    def client(self) -> ProviderClient:
        return client_for(self.connection)

    def mirror(self, issue_id: int) -> Issue:
        return Issue.objects.get(connection=self.connection, external_number=str(issue_id))


@pytest.fixture
def redmine(
    db: Any, django_user_model: Any, redmine_server: RedmineServer, request: Any
) -> Iterator[Redmine]:
    project = make_project(redmine_server, request.node.name[:30])
    connection = Connection.objects.create(
        name=project.identifier,
        provider="redmine",
        base_url=project.url,
        repository=project.identifier,
        api_token=project.api_key,
    )
    _, key = api_token_create(
        user=django_user_model.objects.create_user("agent"), all_connections=True
    )
    try:
        yield Redmine(project, connection, client_with(key))
    finally:
        drop_project(project)


def test_a_full_sync_of_120_issues_is_exact_with_one_list_request_per_100(redmine: Redmine):
    n = 120
    assignees = ("alice", "bob", "carol")
    for i in range(n):
        fields: dict[str, Any] = {"subject": f"issue {i}", "description": f"line 1\nline {i}"}
        if i % 3 == 0:
            fields["custom_fields"] = redmine.labels_form("bug", "docs")
        if i % 4 == 0:
            fields["assigned_to_id"] = redmine.user(assignees[i % 3])
        if i % 5 == 0:
            fields["fixed_version_id"] = redmine.project.versions["v2"]
        redmine.create(**fields)

    run = redmine.poll(full=True)

    # One listing request per 100 issues, plus one read per distinct assignee (Redmine's
    # issue JSON names a user by id and display name only; the login is read once).
    assert run.requests == math.ceil(n / PAGE) + len(assignees)
    assert (run.seen, run.created) == (n, n)
    listed: list[dict[str, Any]] = []
    for offset in (0, PAGE):
        listed += redmine.http.get(
            redmine.url("/issues.json"),
            params={
                "project_id": redmine.project.identifier,
                "status_id": "*",
                "limit": PAGE,
                "offset": offset,
            },
            timeout=30,
        ).json()["issues"]
    logins = {redmine.user(login): login for login in assignees}
    assert Issue.objects.filter(connection=redmine.connection).count() == n
    for remote in listed:
        mirror = redmine.mirror(remote["id"])
        assigned = remote.get("assigned_to")
        version = remote.get("fixed_version")
        assert (
            mirror.title,
            mirror.body,
            mirror.state,
            set(mirror.labels),
            mirror.assignees,
            mirror.milestone or None,
            mirror.remote_url,
        ) == (
            remote["subject"],
            remote["description"].replace("\r\n", "\n"),
            "open",
            redmine.labels(remote),
            [logins[assigned["id"]]] if assigned else [],
            version["name"] if version else None,
            f"{redmine.project.url}/issues/{remote['id']}",
        )

    # Nothing changed: the next poll writes nothing and reads one page.
    again = redmine.poll()
    assert (again.created, again.updated) == (0, 0)


def test_a_local_edit_reaches_redmine_and_its_echo_writes_nothing_more(redmine: Redmine):
    number = redmine.create(subject="Crash on save", description="first")
    redmine.poll(full=True)
    issue = redmine.mirror(number)

    response = redmine.api.patch(
        f"/api/v1/issues/{issue.pk}/",
        {
            "title": "Crash on save (local)",
            "body": "two\nlines",
            "labels": ["bug", "security"],
            "assignees": ["bob"],
            "milestone": "v1",
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    assert drain().pushed == 1

    remote = redmine.get(number)
    assert (
        remote["subject"],
        remote["description"],
        redmine.labels(remote),
        remote["assigned_to"]["id"],
        remote["fixed_version"]["name"],
    ) == ("Crash on save (local)", "two\r\nlines", {"bug", "security"}, redmine.user("bob"), "v1")
    updated_on, journals = remote["updated_on"], len(remote["journals"])
    assert journals == 1  # one PUT, one journal

    for _ in range(2):  # the echo: two more polls and drains change and write nothing
        run = redmine.poll()
        assert (run.updated, run.conflicts) == (0, 0)
        assert drain().pushed == 0
    after = redmine.get(number)
    assert (after["updated_on"], len(after["journals"])) == (updated_on, journals)
    assert redmine.mirror(number).sync_status == "synced"
    assert not OutboxEntry.objects.filter(issue__connection=redmine.connection, status="pending")


def test_a_redmine_edit_reaches_the_mirror_on_the_next_poll(redmine: Redmine):
    number = redmine.create(subject="Before")
    redmine.poll(full=True)

    redmine.put(
        number,
        subject="Edited in Redmine",
        custom_fields=redmine.labels_form("feature"),
        assigned_to_id=redmine.user("carol"),
        status_id=redmine.project.server.status_id("In Progress"),
    )
    run = redmine.poll()

    mirror = redmine.mirror(number)
    assert run.updated == 1
    assert (mirror.title, mirror.labels, mirror.assignees, mirror.state) == (
        "Edited in Redmine",
        ["feature"],
        ["carol"],
        "open",
    )
    # The tracker's own status (the mirror's column for it comes with SPEC §6's fields).
    assert redmine.client().get_issue(str(number)).tracker_status == "In Progress"
    assert drain().pushed == 0  # an inbound change is not pushed back


def test_different_fields_on_both_sides_are_both_kept(redmine: Redmine):
    number = redmine.create(subject="Shared", custom_fields=redmine.labels_form("bug"))
    redmine.poll(full=True)
    issue = redmine.mirror(number)

    redmine.api.patch(f"/api/v1/issues/{issue.pk}/", {"title": "local title"}, format="json")
    redmine.put(number, custom_fields=redmine.labels_form("bug", "docs"))  # a human, meanwhile
    redmine.poll()
    drain()

    remote = redmine.get(number)
    assert (remote["subject"], redmine.labels(remote)) == ("local title", {"bug", "docs"})
    mirror = redmine.mirror(number)
    assert (mirror.title, set(mirror.labels), mirror.sync_status) == (
        "local title",
        {"bug", "docs"},
        "synced",
    )


def test_the_same_field_on_both_sides_conflicts_and_local_wins_lands_in_redmine(
    redmine: Redmine,
):
    assert redmine.connection.conflict_policy == ConflictPolicy.MANUAL
    number = redmine.create(subject="Original")
    redmine.poll(full=True)
    issue = redmine.mirror(number)

    redmine.api.patch(f"/api/v1/issues/{issue.pk}/", {"title": "local title"}, format="json")
    redmine.put(number, subject="remote title")
    run = redmine.poll()
    assert run.conflicts == 1
    conflicts = redmine.api.get("/api/v1/sync/conflicts/?resolved=false").json()["results"]
    assert [(c["field"], c["local_value"], c["remote_value"]) for c in conflicts] == [
        ("title", "local title", "remote title")
    ]

    resolved = redmine.api.post(
        f"/api/v1/sync/conflicts/{conflicts[0]['id']}/resolve/",
        {"strategy": "local_wins"},
        format="json",
    )
    assert resolved.status_code == 200, resolved.content
    drain()

    assert redmine.get(number)["subject"] == "local title"
    assert redmine.mirror(number).sync_status == "synced"


def test_a_local_create_makes_one_redmine_issue_with_its_id_and_url(redmine: Redmine):
    created = redmine.api.post(
        "/api/v1/issues/",
        {
            "connection": redmine.connection.pk,
            "title": "Made here",
            "body": "from an agent",
            "labels": ["docs"],
            "assignees": ["alice"],
            "milestone": "v2",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    assert drain().pushed == 1
    drain()

    issue = Issue.objects.get(pk=created.json()["id"])
    listed = redmine.http.get(
        redmine.url("/issues.json"),
        params={"project_id": redmine.project.identifier, "status_id": "*"},
        timeout=30,
    ).json()["issues"]
    assert [i["id"] for i in listed] == [int(issue.external_number)]
    remote = listed[0]
    assert issue.remote_url == f"{redmine.project.url}/issues/{remote['id']}"
    assert (remote["subject"], redmine.labels(remote), remote["assigned_to"]["id"]) == (
        "Made here",
        {"docs"},
        redmine.user("alice"),
    )
    assert remote["fixed_version"]["name"] == "v2"
    assert remote["description"].startswith("from an agent")  # then the hidden create marker
    redmine.poll()
    assert Issue.objects.filter(connection=redmine.connection).count() == 1


def test_close_and_reopen_through_the_configured_statuses(redmine: Redmine):
    number = redmine.create(subject="To close")
    redmine.poll(full=True)
    issue = redmine.mirror(number)

    assert redmine.api.post(f"/api/v1/issues/{issue.pk}/close/").status_code == 200
    drain()
    remote = redmine.get(number)
    assert (remote["status"]["name"], redmine.mirror(number).state) == ("Closed", "closed")
    assert redmine.client().get_issue(str(number)).tracker_status == "Closed"

    assert redmine.api.post(f"/api/v1/issues/{issue.pk}/reopen/").status_code == 200
    drain()
    assert redmine.get(number)["status"]["name"] == "New"
    assert redmine.mirror(number).state == "open"
    journals = len(redmine.get(number)["journals"])
    redmine.poll()
    assert len(redmine.get(number)["journals"]) == journals


def test_close_and_reopen_use_the_statuses_named_in_config_json(redmine: Redmine):
    Connection.objects.filter(pk=redmine.connection.pk).update(
        config_json={"closed_status": "Rejected", "open_status": "In Progress"}
    )
    number = redmine.create(subject="To reject")
    redmine.poll(full=True)
    issue = redmine.mirror(number)

    redmine.api.post(f"/api/v1/issues/{issue.pk}/close/")
    drain()
    assert redmine.get(number)["status"]["name"] == "Rejected"
    redmine.api.post(f"/api/v1/issues/{issue.pk}/reopen/")
    drain()
    assert redmine.get(number)["status"]["name"] == "In Progress"
    assert redmine.mirror(number).state == "open"


def test_an_issue_deleted_in_redmine_is_gone_after_a_full_sync(redmine: Redmine):
    kept = redmine.create(subject="kept")
    doomed = redmine.create(subject="doomed")
    redmine.poll(full=True)

    assert redmine.http.delete(redmine.url(f"/issues/{doomed}.json"), timeout=30).status_code == 204
    assert redmine.poll().deleted == 0  # a hard delete leaves no trace in a listing
    run = redmine.poll(full=True)

    assert run.deleted == 1
    numbers = set(
        Issue.objects.filter(connection=redmine.connection).values_list(
            "external_number", flat=True
        )
    )
    assert numbers == {str(kept)}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"assignees": [OUTSIDER]}, "assignees"),  # an active user, no project member
        ({"assignees": ["alice", "bob"]}, "assignees"),  # Redmine holds one
        ({"labels": ["no-such-label"]}, "labels"),
        ({"milestone": "v9"}, "milestone"),
    ],
    ids=["non-member", "two-assignees", "label", "version"],
)
def test_a_value_redmine_cannot_hold_is_a_400_at_the_api_and_nothing_is_queued(
    redmine: Redmine, change: dict[str, Any], field: str
):
    number = redmine.create(subject="t")
    redmine.poll(full=True)
    issue = redmine.mirror(number)

    response = redmine.api.patch(f"/api/v1/issues/{issue.pk}/", change, format="json")

    assert response.status_code == 400, response.content
    assert field in str(response.json())
    assert not OutboxEntry.objects.filter(issue=issue).exists()
    created = redmine.api.post(
        "/api/v1/issues/",
        {"connection": redmine.connection.pk, "title": "new", **change},
        format="json",
    )
    assert created.status_code == 400, created.content
    assert not OutboxEntry.objects.exists()


def test_a_wrong_api_key_fails_the_sync_run_with_a_clear_message(redmine: Redmine):
    Connection.objects.filter(pk=redmine.connection.pk).update(api_token="0" * 40)

    run = sync_connection(connection_id=redmine.connection.pk, full=True)

    assert run.success is False
    assert "permanent" in run.error and "HTTP 401" in run.error, run.error
    assert Connection.objects.get(pk=redmine.connection.pk).sync_lock_until is None


@pytest.mark.skipif(
    bool(os.environ.get("REDMINE_URL")) or os.geteuid() != 0,
    reason="stopping and starting Redmine needs our own server and root (the script's rule)",
)
def test_a_push_while_redmine_is_stopped_backs_off_and_lands_once_it_is_back(redmine: Redmine):
    number = redmine.create(subject="Before the outage")
    redmine.poll(full=True)
    issue = redmine.mirror(number)
    redmine.api.patch(f"/api/v1/issues/{issue.pk}/", {"title": "during the outage"}, format="json")

    stop = subprocess.run(
        [str(SCRIPT), "stop"], capture_output=True, text=True, timeout=60, check=False
    )
    assert stop.returncode == 0, stop.stderr
    try:
        with pytest.raises(requests.ConnectionError):
            requests.get(redmine.project.url, timeout=5)
        report = drain()
        entry = OutboxEntry.objects.get(issue=issue)
        assert (report.pushed, entry.status, entry.attempts) == (0, "pending", 1)
        assert entry.next_attempt_at > timezone.now()  # backs off, no hot retry
        assert "cannot connect" in entry.last_error
    finally:
        start = subprocess.run(
            [str(SCRIPT), "start"], capture_output=True, text=True, timeout=300, check=False
        )
        assert start.returncode == 0, start.stderr

    assert drain().pushed == 0  # not due yet
    OutboxEntry.objects.filter(pk=entry.pk).update(next_attempt_at=timezone.now())
    assert drain().pushed == 1
    assert redmine.get(number)["subject"] == "during the outage"
    assert redmine.mirror(number).sync_status == "synced"

"""A Jira connection through the engine, against the fake Jira on loopback (no mocks): a full
sync mirrors the project, a signed webhook is re-read through REST v3 and applied, local edits
are pushed through the outbox (one PUT with label verbs, a transition for the state), our own
echo changes nothing, a deletion in Jira removes the mirror, a local create carries its marker,
and a close the workflow cannot make directly fails that push with a clear error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection as db_connection
from django.test import Client
from django.utils import timezone

from integrations.fake_trackers.base import Fault, OutgoingWebhook
from integrations.fake_trackers.jira import FakeJira
from integrations.models import Connection
from issues.inbound import process_delivery
from issues.models import Issue, OutboxEntry, OutboxStatus
from issues.outbox import drain
from issues.polling import sync_connection
from issues.services.issues import issue_create, issue_update
from tests.factories import ConnectionFactory

SECRET = "jira-engine-secret"
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fake() -> Iterator[FakeJira]:
    tracker = FakeJira(webhook_secret=SECRET)
    hooks: list[OutgoingWebhook] = []
    tracker.webhook_sink = hooks.append
    tracker.hooks = hooks  # type: ignore[attr-defined]
    with tracker:
        yield tracker


@pytest.fixture
def connection(fake: FakeJira) -> Connection:
    return ConnectionFactory.create(
        provider="jira",
        base_url=fake.url,
        repository=fake.key,
        api_token=fake.token,
        webhook_secret=SECRET,
        config_json={"email": fake.email},
        create_remote=True,
    )


def deliver_all(fake: FakeJira) -> list[int]:
    """POST every queued delivery to the intake and process it, as the worker would."""
    fake.drain_webhooks()
    hooks: list[OutgoingWebhook] = fake.hooks  # type: ignore[attr-defined]
    taken, hooks[:] = list(hooks), []
    statuses = []
    for hook in taken:
        headers = {k: v for k, v in hook.headers.items() if k.lower() != "content-type"}
        response = Client().post(
            "/webhooks/jira/", data=hook.body, content_type="application/json", headers=headers
        )
        statuses.append(response.status_code)
        if response.status_code == 202:
            process_delivery(response.json()["delivery"])
    return statuses


def mirror(connection: Connection, key: str) -> Issue:
    return Issue.objects.get(connection=connection, external_number=key)


def test_a_full_sync_mirrors_the_project(fake: FakeJira, connection: Connection):
    fake.seed_issue(
        title="First", body="a\n\nb", labels=["bug"], assignees=["alice"], milestone="v1"
    )
    fake.seed_issue(title="Second", status="Done")

    sync_connection(connection_id=connection.pk, full=True)

    first, second = mirror(connection, "PROJ-1"), mirror(connection, "PROJ-2")
    assert (first.title, first.body, first.labels, first.assignees, first.milestone) == (
        "First",
        "a\n\nb",
        ["bug"],
        ["alice"],
        "v1",
    )
    assert (first.state, first.remote_url) == ("open", f"{fake.url}/browse/PROJ-1")
    assert second.state == "closed"  # status Done, category done


def test_a_webhook_is_re_read_and_applied_and_our_echo_changes_nothing(
    fake: FakeJira, connection: Connection
):
    seeded = fake.seed_issue(title="Before")
    sync_connection(connection_id=connection.pk, full=True)

    fake.edit_issue(seeded.number, title="Edited in Jira", labels=["docs"])
    assert deliver_all(fake) == [202]
    issue = mirror(connection, "PROJ-1")
    assert (issue.title, issue.labels) == ("Edited in Jira", ["docs"])

    issue_update(issue=issue, changes={"body": "ours\nline two", "labels": ["docs", "ui"]})
    drain()
    assert fake.issues[seeded.number].body == "ours\nline two"
    assert fake.issues[seeded.number].labels == ["docs", "ui"]
    before = mirror(connection, "PROJ-1").updated_at
    assert deliver_all(fake) == [202]  # the echo of our own PUT
    after = mirror(connection, "PROJ-1")
    assert (after.body, after.updated_at, after.sync_status) == ("ours\nline two", before, "synced")
    assert not OutboxEntry.objects.exclude(status=OutboxStatus.DONE).exists()


def test_close_and_reopen_are_pushed_as_transitions(fake: FakeJira, connection: Connection):
    seeded = fake.seed_issue(title="t", status="In Progress")
    sync_connection(connection_id=connection.pk, full=True)

    issue_update(issue=mirror(connection, "PROJ-1"), changes={"state": "closed"})
    drain()
    assert fake.statuses[seeded.number] == "Done"
    issue_update(issue=mirror(connection, "PROJ-1"), changes={"state": "open"})
    drain()
    assert fake.statuses[seeded.number] == "To Do"
    assert mirror(connection, "PROJ-1").state == "open"


def test_the_echo_of_the_edit_put_before_the_transition_does_not_revert_the_close(
    fake: FakeJira, connection: Connection
):
    """Soak seed 50 (jira, remote_wins): title and state pushed together are two requests on
    Jira (the PUT, then a transition). The PUT's echo was processed before the transition
    was sent: our title showing in it was taken for proof that the whole write had landed,
    the state still open for someone reopening after it — the close was undone."""
    seeded = fake.seed_issue(title="t")
    sync_connection(connection_id=connection.pk, full=True)
    Connection.objects.filter(pk=connection.pk).update(conflict_policy="remote_wins")

    def echo_first() -> None:
        # While the PUT's answer is on the wire, its echo arrives and is processed.
        try:
            deliver_all(fake)
        finally:
            db_connection.close()  # this thread's database connection

    fake.inject(Fault(status=0, method="PUT", after=echo_first))
    issue_update(issue=mirror(connection, "PROJ-1"), changes={"title": "t2", "state": "closed"})
    drain()
    deliver_all(fake)
    OutboxEntry.objects.update(next_attempt_at=timezone.now())
    drain()
    deliver_all(fake)

    assert (fake.issues[seeded.number].title, fake.statuses[seeded.number]) == ("t2", "Done")
    assert (mirror(connection, "PROJ-1").title, mirror(connection, "PROJ-1").state) == (
        "t2",
        "closed",
    )


def test_a_close_the_workflow_cannot_make_fails_the_push_with_a_clear_error(
    fake: FakeJira, connection: Connection
):
    seeded = fake.seed_issue(title="t", status="In Review")
    sync_connection(connection_id=connection.pk, full=True)

    issue_update(issue=mirror(connection, "PROJ-1"), changes={"state": "closed"})
    drain()

    assert fake.statuses[seeded.number] == "In Review"
    # The refused field fails on a row of its own (issue 12 #12), once: permanent, not retried.
    row = OutboxEntry.objects.get(status=OutboxStatus.FAILED)
    assert row.attempts <= 1 and set(row.changes) == {"state"}
    assert not OutboxEntry.objects.filter(status=OutboxStatus.PENDING).exists()
    assert "In Review" in row.last_error and "close_transition" in row.last_error
    posts = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/transitions")]
    assert posts == []


def test_a_local_create_is_pushed_with_its_marker(fake: FakeJira, connection: Connection):
    sync_connection(connection_id=connection.pk, full=True)
    issue = issue_create(connection=connection, title="Made here", body="text", labels=["bug"])
    drain()

    issue.refresh_from_db()
    number = int(issue.external_number.rsplit("-", 1)[1])
    assert (fake.issues[number].title, fake.issues[number].labels) == ("Made here", ["bug"])
    assert "syndarix" in fake.properties[number]
    assert deliver_all(fake) == [202]  # jira:issue_created for our own create: no duplicate
    assert Issue.objects.filter(connection=connection).count() == 1


def test_a_deletion_in_jira_removes_the_mirror(fake: FakeJira, connection: Connection):
    seeded = fake.seed_issue(title="doomed")
    sync_connection(connection_id=connection.pk, full=True)
    fake.delete_issue(seeded.number)

    assert deliver_all(fake) == [202]

    assert not Issue.objects.filter(connection=connection, external_number="PROJ-1").exists()


def test_an_incremental_poll_finds_an_edit_whose_webhook_was_lost(
    fake: FakeJira, connection: Connection
):
    seeded = fake.seed_issue(title="t")
    sync_connection(connection_id=connection.pk, full=True)
    fake.edit_issue(seeded.number, title="edited, webhook lost")
    fake.drain_webhooks()
    fake.hooks.clear()  # type: ignore[attr-defined]

    sync_connection(connection_id=connection.pk, full=False)

    assert mirror(connection, "PROJ-1").title == "edited, webhook lost"
    jql = [r.query["jql"][0] for r in fake.requests if r.path.endswith("/search/jql")][-1]
    assert "updated >=" in jql

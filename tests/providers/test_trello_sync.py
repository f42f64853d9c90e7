"""A Trello connection syncs and pushes against the simulated Trello as a Gitea one does: the
real intake, worker, engine, outbox and database, the fake over HTTP — no mocks.

Every Trello action is delivered signed over the connection's public webhook URL (as Trello
signs), and every one makes the worker re-read the card.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from integrations.fake_trackers.trello import FakeTrello
from integrations.models import Connection
from issues.models import Issue, OutboxEntry, OutboxStatus, SyncStatus
from issues.services.issues import issue_create, issue_update
from tests.engine.conftest import Harness

SECRET = "trello-app-secret"
PUBLIC_URL = "https://sync.example.com"
USERS = ("alice", "bob", "carol")


class TrelloHarness(Harness):
    fake: Any

    def post(self, hook: Any) -> Any:
        # The path of the callback URL Trello was given (and signed the delivery over).
        return self.client.post(
            self.connection.webhook_url.removeprefix(PUBLIC_URL),
            data=hook.body,
            content_type="application/json",
            headers={k: v for k, v in hook.headers.items() if k.lower() != "content-type"},
        )

    def writes(self) -> int:
        return sum(self.fake.count_requests(m) for m in ("POST", "PUT", "DELETE"))


def make_harness(settings: Any, **config: str) -> TrelloHarness:
    settings.PUBLIC_URL = PUBLIC_URL
    fake = FakeTrello(token="trello-token", webhook_secret=SECRET)
    fake.known_users.update(USERS)
    fake.start()
    connection = Connection.objects.create(
        name="board",
        provider="trello",
        base_url=fake.url,
        repository=fake.repository,
        api_token="trello-token",
        webhook_secret=SECRET,
        config_json={"api_key": fake.api_key, **config},
    )
    fake.webhook_url = connection.webhook_url
    return TrelloHarness(fake, connection)


@pytest.fixture
def harness(db: Any, settings: Any) -> Iterator[TrelloHarness]:
    made = make_harness(settings)
    try:
        yield made
    finally:
        made.fake.stop()


def mirrored(h: TrelloHarness, **seed: Any) -> tuple[Any, Issue]:
    card = h.fake.seed_issue(notify=True, **{"title": "Crash on save", **seed})
    h.deliver_all()
    return card, h.issue(card.number)


def test_a_card_created_in_trello_is_mirrored_by_its_webhook(harness: TrelloHarness):
    card, issue = mirrored(harness, body="steps", labels=["bug"], assignees=["bob"])

    assert issue.snapshot() == {
        "title": "Crash on save",
        "body": "steps",
        "state": "open",
        "labels": ["bug"],
        "assignees": ["bob"],
        "milestone": None,
    }
    assert issue.external_id == harness.fake.card_id(card.number)
    assert issue.remote_url == harness.fake.render_card(card)["shortUrl"]
    assert issue.sync_status == SyncStatus.SYNCED


def test_a_local_edit_is_pushed_and_its_echoes_change_nothing(harness: TrelloHarness):
    card, issue = mirrored(harness, labels=["bug"], assignees=["alice"])
    issue_update(
        issue=issue,
        changes={
            "title": "Crash on save (macOS)",
            "labels": ["docs"],
            "assignees": ["alice", "carol"],
            "state": "closed",
        },
    )

    assert harness.drain().pushed == 1

    remote = harness.fake.issues[card.number]
    assert (remote.title, remote.labels, remote.assignees, remote.state) == (
        "Crash on save (macOS)",
        ["docs"],
        ["alice", "carol"],
        "closed",  # archived
    )
    writes = harness.writes()
    echoes = harness.take_hooks()
    assert len(echoes) >= 4  # one action per call: rename, label ±, member +, archive
    for hook in echoes:
        assert harness.deliver(hook).status_code == 202
    issue = harness.issue(card.number)
    assert issue.sync_status == SyncStatus.SYNCED and issue.state == "closed"
    assert harness.drain().pushed == 0 and harness.writes() == writes
    assert not OutboxEntry.objects.filter(status=OutboxStatus.PENDING).exists()


def test_a_label_added_in_trello_arrives_as_the_full_card(harness: TrelloHarness):
    card, _ = mirrored(harness, labels=["bug"])
    harness.fake.edit_issue(card.number, labels=["bug", "feature"], assignees=["bob"])

    harness.deliver_all()

    issue = harness.issue(card.number)
    assert (issue.labels, issue.assignees) == (["bug", "feature"], ["bob"])


def test_a_local_create_lands_in_the_first_list_once(harness: TrelloHarness):
    issue = issue_create(connection=harness.connection, title="From here", labels=["bug"])

    harness.drain()
    harness.deliver_all()  # the createCard echo must not make a second issue

    issue.refresh_from_db()
    assert issue.external_number
    card = harness.fake.issues[int(issue.external_number)]
    assert (card.title, card.labels) == ("From here", ["bug"])
    assert harness.fake.card_list(card.number) == "To Do"
    assert Issue.objects.filter(connection=harness.connection).count() == 1


def test_a_card_deleted_in_trello_is_deleted_here(harness: TrelloHarness):
    card, issue = mirrored(harness)
    harness.fake.delete_issue(card.number)

    harness.deliver_all()

    assert not Issue.objects.filter(pk=issue.pk).exists()


def test_a_missed_webhook_is_caught_by_the_next_poll(harness: TrelloHarness):
    card, _ = mirrored(harness)
    harness.fake.edit_issue(card.number, notify=False, title="Edited, webhook lost")

    harness.poll()

    assert harness.issue(card.number).title == "Edited, webhook lost"


def test_with_a_done_list_closing_moves_the_card_there(db: Any, settings: Any):
    h = make_harness(settings, done_list="Done")
    try:
        card, issue = mirrored(h)
        issue_update(issue=issue, changes={"state": "closed"})
        h.drain()
        h.deliver_all()

        assert h.fake.card_list(card.number) == "Done"
        assert h.fake.issues[card.number].state == "open"  # moved, not archived
        assert h.issue(card.number).state == "closed"

        h.fake.move_card(card.number, "Doing")  # a human drags it back
        h.deliver_all()
        assert h.issue(card.number).state == "open"
        h.fake.move_card(card.number, "Done")  # and into the done list again
        h.deliver_all()
        assert h.issue(card.number).state == "closed"
    finally:
        h.fake.stop()


def test_a_milestone_for_a_trello_issue_is_a_400_at_the_api(harness: TrelloHarness):
    from tests.api.conftest import World

    world = World()
    _, issue = mirrored(harness)
    client = world.client(world.staff_key)

    refused = client.patch(f"/api/v1/issues/{issue.pk}/", {"milestone": "v1"}, format="json")
    created = client.post(
        "/api/v1/issues/",
        {"connection": harness.connection.pk, "title": "t", "milestone": "v1"},
        format="json",
    )

    assert refused.status_code == 400 and "milestone" in str(refused.json())
    assert created.status_code == 400 and "milestone" in str(created.json())
    assert harness.issue(int(issue.external_number)).milestone is None

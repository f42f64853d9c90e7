"""TrelloClient against the simulated Trello: what the conformance suite does not cover —
the OAuth header, archive vs the done list, lists and members, action-driven polls, paging,
per-key and per-token 429s, and the webhook registration with its HEAD check."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
import requests

from integrations.fake_trackers.trello import FakeTrello
from integrations.providers.base import (
    IssueFields,
    IssueState,
    NotFoundError,
    RateLimitedError,
    ValidationFailedError,
)
from integrations.providers.trello import TrelloClient, TrelloWebhooks, trello_config


@pytest.fixture
def fake() -> Iterator[FakeTrello]:
    tracker = FakeTrello(webhook_secret="app-secret").start()
    yield tracker
    tracker.stop()


def make_client(fake: FakeTrello, **config: Any) -> TrelloClient:
    options = {k: config.pop(k) for k in ("allow_create_labels", "gate") if k in config}
    return TrelloClient(
        base_url=fake.url,
        repository=fake.repository,
        token=fake.token,
        config={"api_key": fake.api_key, **config},
        timeout=2.0,
        backoff_factor=0.01,
        **options,
    )


@pytest.fixture
def client(fake: FakeTrello) -> Iterator[TrelloClient]:
    made = make_client(fake)
    yield made
    made.close()


def test_credentials_travel_in_the_oauth_header_never_in_the_url(fake: FakeTrello, client):
    card = fake.seed_issue(title="t", labels=["bug"])
    client.get_issue(str(card.number))
    client.update_issue(str(card.number), IssueFields(title="t2", labels=frozenset({"docs"})))
    client.list_issues()

    assert fake.requests
    for request in fake.requests:
        assert request.headers["Authorization"] == (
            f'OAuth oauth_consumer_key="{fake.api_key}", oauth_token="{fake.token}"'
        )
        assert "key" not in request.query and "token" not in request.query
        assert fake.token not in request.path


def test_a_wrong_key_or_token_is_refused(fake: FakeTrello):
    wrong = TrelloClient(
        base_url=fake.url, repository=fake.repository, token="nope", config={"api_key": "k"}
    )
    with pytest.raises(Exception, match="401"):
        wrong.check_access()


def test_a_card_maps_onto_the_canonical_issue(fake: FakeTrello, client: TrelloClient):
    card = fake.seed_issue(title="Name", body="Desc", labels=["bug"], assignees=["alice"])
    fake.move_card(card.number, "Doing", notify=False)

    issue = client.get_issue(str(card.number))

    assert issue.number == str(card.number)
    assert issue.external_id == fake.card_id(card.number)
    assert (issue.title, issue.body, issue.state) == ("Name", "Desc", IssueState.OPEN)
    assert (issue.labels, issue.assignees) == (frozenset({"bug"}), frozenset({"alice"}))
    assert issue.milestone is None
    assert issue.tracker_status == "Doing"
    assert issue.remote_url == fake.render_card(card)["shortUrl"]
    assert issue.updated_at is not None and issue.created_at is not None


def test_an_archived_card_is_closed_and_a_full_pass_lists_it(fake, client):
    fake.seed_issue(title="open")
    archived = fake.seed_issue(title="archived", state="closed")

    listed = {i.title: i for i in client.list_issues().issues}

    assert set(listed) == {"open", "archived"}
    assert listed["archived"].state is IssueState.CLOSED
    assert listed["archived"].number == str(archived.number)


def test_a_missing_card_is_not_found(client: TrelloClient):
    with pytest.raises(NotFoundError):
        client.get_issue("99")


# --- the done list -----------------------------------------------------------------------------


def test_with_a_done_list_a_card_there_is_closed_and_closing_moves_it(fake: FakeTrello):
    client = make_client(fake, done_list="Done")
    done = fake.seed_issue(title="finished", list_name="Done")
    card = fake.seed_issue(title="work", list_name="Doing")

    assert client.get_issue(str(done.number)).state is IssueState.CLOSED
    closed = client.update_issue(str(card.number), IssueFields(state=IssueState.CLOSED))

    assert closed.state is IssueState.CLOSED and closed.tracker_status == "Done"
    assert fake.card_list(card.number) == "Done"
    assert fake.issues[card.number].state == "open"  # moved, not archived

    reopened = client.update_issue(
        str(card.number), IssueFields(state=IssueState.OPEN), current=closed
    )

    assert reopened.state is IssueState.OPEN
    assert fake.card_list(card.number) == "To Do"


def test_reopening_an_archived_card_in_the_done_list_unarchives_and_moves_it(fake: FakeTrello):
    client = make_client(fake, done_list="Done", new_list="Doing")
    card = fake.seed_issue(title="x", list_name="Done", state="closed")

    reopened = client.update_issue(str(card.number), IssueFields(state=IssueState.OPEN))

    assert reopened.state is IssueState.OPEN
    assert fake.issues[card.number].state == "open"
    assert fake.card_list(card.number) == "Doing"


def test_a_card_is_created_in_the_first_list_or_the_new_list(fake: FakeTrello, client):
    first = client.create_issue(IssueFields(title="a", body="b"), marker="m-1")
    elsewhere = make_client(fake, new_list="Doing").create_issue(IssueFields(title="c"))

    assert first.tracker_status == "To Do" and (first.body, first.marker) == ("b", "m-1")
    assert fake.card_list(int(elsewhere.number)) == "Doing"


def test_a_done_list_the_board_lacks_is_refused_by_the_access_check(fake: FakeTrello):
    with pytest.raises(ValidationFailedError, match="Finished"):
        make_client(fake, done_list="Finished").check_access()


# --- fields Trello cannot hold or does not know ------------------------------------------------


def test_a_milestone_is_refused_before_anything_is_sent(fake: FakeTrello, client):
    card = fake.seed_issue(title="t")
    fake.reset_requests()

    with pytest.raises(ValidationFailedError) as caught:
        client.update_issue(str(card.number), IssueFields(milestone="v1"))

    assert caught.value.field == "milestone"
    assert fake.requests == []
    assert client.capabilities.milestones is False


def test_clearing_the_milestone_is_no_change(fake: FakeTrello, client: TrelloClient):
    card = fake.seed_issue(title="t")
    current = client.get_issue(str(card.number))
    fake.reset_requests()

    result = client.update_issue(str(card.number), IssueFields(milestone=None), current=current)

    assert result == current and fake.requests == []


def test_an_unknown_label_is_created_only_when_the_connection_allows(fake: FakeTrello):
    card = fake.seed_issue(title="t")
    with pytest.raises(ValidationFailedError) as caught:
        make_client(fake).update_issue(str(card.number), IssueFields(labels=frozenset({"new"})))
    assert caught.value.field == "labels"

    result = make_client(fake, allow_create_labels=True).update_issue(
        str(card.number), IssueFields(labels=frozenset({"new"}))
    )

    assert result.labels == frozenset({"new"}) and "new" in fake.known_labels


def test_members_are_added_and_removed_one_by_one(fake: FakeTrello, client: TrelloClient):
    card = fake.seed_issue(title="t", assignees=["alice", "bob"])
    current = client.get_issue(str(card.number))
    fake.edit_issue(card.number, notify=False, assignees=["alice", "bob", "dave"])  # meanwhile
    fake.reset_requests()

    result = client.update_issue(
        str(card.number), IssueFields(assignees=frozenset({"alice", "carol"})), current=current
    )

    assert result.assignees == frozenset({"alice", "carol", "dave"})
    calls = [(r.method, r.path.rsplit("/", 2)[-2]) for r in fake.requests if "idMembers" in r.path]
    assert sorted(m for m, _ in calls) == ["DELETE", "POST"]


# --- polls: the board's actions since the cursor -----------------------------------------------


def test_an_incremental_poll_reads_actions_and_fetches_only_the_cards_they_touch(fake, client):
    quiet = fake.seed_issue(title="quiet")
    busy = fake.seed_issue(title="busy")
    gone = fake.seed_issue(title="gone")
    fake.advance_clock(60)
    since = fake.now()
    fake.edit_issue(busy.number, notify=False, title="busier", labels=["bug"])
    fake.delete_issue(gone.number, notify=False)
    fake.reset_requests()

    result = client.list_issues(since=since - timedelta(seconds=1))

    assert [i.title for i in result.issues] == ["busier"]
    assert result.issues[0].labels == frozenset({"bug"})
    card_reads = [r.path for r in fake.requests if r.path.startswith("/1/cards/")]
    assert card_reads == [f"/1/cards/{fake.card_id(busy.number)}"]
    assert any(r.path.endswith("/actions") for r in fake.requests)
    assert quiet.number not in [int(i.number) for i in result.issues]


def test_a_full_pass_pages_backwards_with_before(fake: FakeTrello):
    class SmallPages(TrelloClient):
        max_page_size: ClassVar[int] = 3

    for n in range(7):
        fake.seed_issue(title=f"card {n}")
    client = SmallPages(
        base_url=fake.url,
        repository=fake.repository,
        token=fake.token,
        config={"api_key": fake.api_key},
    )
    fake.reset_requests()

    result = client.list_issues()

    assert sorted(i.title for i in result.issues) == [f"card {n}" for n in range(7)]
    listings = [r for r in fake.requests if r.path.endswith("/cards")]
    assert len(listings) == 3 and "before" not in listings[0].query
    assert all("before" in r.query for r in listings[1:])


# --- rate limits: per key and per token --------------------------------------------------------


class Gate:
    def __init__(self) -> None:
        self.held = 0.0

    def check(self) -> None:
        if self.held:
            raise RateLimitedError("paused", retry_after=self.held)

    def hold(self, seconds: float) -> None:
        self.held = seconds

    def release_thread(self) -> None:
        pass  # nothing is bound to a thread here


@pytest.mark.parametrize("limit", ["key_limit", "token_limit"])
def test_a_429_for_the_key_or_the_token_pauses_the_connection(fake: FakeTrello, limit: str):
    setattr(fake, limit, 2)
    card = fake.seed_issue(title="t")
    gate = Gate()
    client = make_client(fake, gate=gate)

    client.get_issue(str(card.number))  # lists + card: the two allowed calls
    with pytest.raises(RateLimitedError):
        client.get_issue(str(card.number))

    assert gate.held > 0
    sent = len(fake.requests)
    with pytest.raises(RateLimitedError):
        client.get_issue(str(card.number))
    assert len(fake.requests) == sent  # the paused gate sends nothing


# --- the webhook: HEAD check at registration, signed deliveries --------------------------------


class Callback(BaseHTTPRequestHandler):
    status = 200
    received: ClassVar[list[tuple[str, dict[str, str], bytes]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_HEAD(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Callback.received.append((self.path, dict(self.headers), body))
        self.do_HEAD()


@pytest.fixture
def callback() -> Iterator[tuple[str, type[Callback]]]:
    handler = type("Handler", (Callback,), {"status": 200})
    Callback.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/trello/7/", handler
    server.shutdown()
    server.server_close()


def register(fake: FakeTrello, url: str) -> requests.Response:
    return requests.post(
        f"{fake.url}/1/webhooks",
        json={"callbackURL": url, "idModel": fake.repository, "description": "sync"},
        headers={
            "Authorization": f'OAuth oauth_consumer_key="{fake.api_key}", oauth_token="{fake.token}"'
        },
        timeout=5,
    )


def test_a_webhook_is_created_only_when_the_callback_answers_the_head_check(fake, callback):
    url, handler = callback
    handler.status = 404
    refused = register(fake, url)
    handler.status = 200
    created = register(fake, url)

    assert refused.status_code == 400 and "did not return 200" in refused.text
    assert created.status_code == 200 and created.json()["callbackURL"] == url
    assert list(fake.webhooks) == [created.json()["id"]]


def test_deliveries_are_signed_over_the_body_and_the_registered_url(fake, callback):
    url, _ = callback
    assert register(fake, url).status_code == 200
    card = fake.seed_issue(title="t")

    fake.edit_issue(card.number, title="renamed")
    fake.drain_webhooks()

    ((path, headers, body),) = Callback.received
    verifier = TrelloWebhooks()
    assert path == "/webhooks/trello/7/"
    assert verifier.verify(secret="app-secret", body=body, headers=headers, url=url)
    assert not verifier.verify(secret="app-secret", body=body, headers=headers, url=url + "x")


# --- config_json --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({}, "api_key"),
        ({"api_key": ""}, "api_key"),
        ({"api_key": "  "}, "api_key"),
        ({"api_key": "k", "colour": "x"}, "colour"),
        ({"api_key": "k", "done_list": 3}, "done_list"),
    ],
)
def test_config_json_is_validated(config: dict[str, Any], problem: str):
    with pytest.raises(ValueError, match=problem):
        trello_config(config)


def test_a_valid_config():
    parsed = trello_config({"api_key": " k ", "done_list": "Done", "new_list": ""})
    assert (parsed.api_key, parsed.done_list, parsed.new_list) == ("k", "Done", None)


def test_a_card_moved_to_another_board_is_not_listed_by_a_poll(fake: FakeTrello, client):
    """The card still exists (GET /cards/{id} answers it), but on a board we do not mirror."""
    stays = fake.seed_issue(title="stays")
    leaves = fake.seed_issue(title="leaves")
    since = fake.now()
    fake.edit_issue(stays.number, notify=False, title="stays, edited")
    fake.move_to_board(leaves.number, "6100000000000000000000b2", notify=False)

    polled = client.list_issues(since=since)

    assert [i.title for i in polled.issues] == ["stays, edited"]
    with pytest.raises(NotFoundError):
        client.get_issue(str(leaves.number))

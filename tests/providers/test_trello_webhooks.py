"""TrelloWebhooks and the intake for Trello: the HEAD check, the signature over body + the
public callback URL, and every captured payload in shared/fixtures/trello parsed to its event.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st

from integrations.fake_trackers.trello import FakeTrello
from integrations.models import Connection, WebhookDelivery
from integrations.providers import webhooks
from integrations.providers.base import EventKind, WebhookPayloadError
from integrations.providers.shapes import ShapeError
from integrations.providers.trello import BoardNames, TrelloWebhooks, parse_card
from tests.security.test_parser_fuzz import mutations
from tests.shared_data import missing_shared, shared_fixture_paths, trello_signature

SECRET = "trello-app-secret"
BOARD = "53582e2da0fac5676a714277"
PUBLIC_URL = "https://sync.example.com"
verifier = TrelloWebhooks()
FIXTURES = shared_fixture_paths("trello")

# An independent reading of each capture: (kind, number, card id) — None for ignored ones.
EXPECTED: dict[str, tuple[EventKind, str | None, str | None]] = {
    "adding_attachment_to_card": (EventKind.IGNORED, None, None),
    "adding_comment_to_card": (EventKind.IGNORED, None, None),
    "adding_description_to_card": (EventKind.ISSUE, "8", "595940ccdd7b429f714ac9f3"),
    "adding_label_to_card": (EventKind.ISSUE, "2", "53582e2da0fac5676a71427f"),
    "adding_new_list_to_board": (EventKind.IGNORED, None, None),
    "archiving_card": (EventKind.ISSUE, "8", "53582e2da0fac5676a71428b"),
    "changing_cards_list": (EventKind.ISSUE, "2", "53582e2da0fac5676a71427f"),
    "changing_description_on_card": (EventKind.ISSUE, "8", "595940ccdd7b429f714ac9f3"),
    "changing_due_date_on_card": (EventKind.IGNORED, None, None),
    "moving_card_within_single_list": (EventKind.IGNORED, None, None),
    "removing_description_from_card": (EventKind.ISSUE, "8", "595940ccdd7b429f714ac9f3"),
    "removing_due_date_from_card": (EventKind.IGNORED, None, None),
    "removing_member_from_card": (EventKind.ISSUE, "8", "53582e2da0fac5676a71428b"),
    "reopening_card": (EventKind.ISSUE, "8", "53582e2da0fac5676a71428b"),
    "setting_due_date_to_card": (EventKind.IGNORED, None, None),
}


def test_every_capture_has_an_expectation():
    if not FIXTURES:
        missing_shared("shared/fixtures/trello is not here")
    assert sorted(p.stem for p in FIXTURES) == sorted(EXPECTED)


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_every_capture_parses_to_its_event(path: Path):
    body = path.read_bytes()
    payload = json.loads(body)
    event = verifier.event_name(headers={}, payload=payload)
    assert event == payload["action"]["type"] and verifier.is_known_event(event)

    parsed = verifier.parse(event=event, payload=payload, base_url="https://api.trello.com")

    kind, number, card_id = EXPECTED[path.stem]
    assert parsed.kind == kind, parsed.reason
    assert parsed.repository == payload["action"]["data"]["board"]["id"]
    if kind == EventKind.ISSUE:
        # A Trello action carries a partial card: the worker re-reads the whole card.
        assert parsed.issue is None
        assert (parsed.issue_number, parsed.issue_external_id) == (number, card_id)
    else:
        assert parsed.reason


def action_payload(kind: str, *, card: dict[str, Any] | None = None, **data: Any) -> dict[str, Any]:
    return {
        "model": {"id": BOARD, "name": "Board"},
        "action": {
            "id": "6000000000000000000000a1",
            "type": kind,
            "date": "2026-11-21T10:00:00.000Z",
            "data": {
                "board": {"id": BOARD, "name": "Board", "shortLink": "iqXXzYEj"},
                "card": card
                if card is not None
                else {"id": "6000000000000000000000c1", "idShort": 12, "name": "Card"},
                **data,
            },
        },
    }


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        ("createCard", {"list": {"id": "l1", "name": "To Do"}}, EventKind.ISSUE),
        ("updateCard", {"old": {"name": "Old name"}}, EventKind.ISSUE),
        ("addMemberToCard", {"idMember": "m1"}, EventKind.ISSUE),
        ("removeLabelFromCard", {"label": {"id": "x", "name": "bug"}}, EventKind.ISSUE),
        ("deleteCard", {"list": {"id": "l1"}}, EventKind.ISSUE_DELETED),
        ("updateCard", {"old": {"dueComplete": False}}, EventKind.IGNORED),
        ("updateList", {"old": {"name": "x"}}, EventKind.IGNORED),
    ],
)
def test_card_actions_the_captures_lack(kind: str, data: dict[str, Any], expected: EventKind):
    """No capture of createCard, rename, addMemberToCard or deleteCard: shaped as Trello's
    documented actions."""
    parsed = verifier.parse(event=kind, payload=action_payload(kind, **data), base_url="")

    assert parsed.kind == expected
    if expected != EventKind.IGNORED:
        assert parsed.issue_external_id == "6000000000000000000000c1"
        assert parsed.issue_number == "12"


def test_a_deleted_card_without_its_number_is_still_a_deletion():
    payload = action_payload("deleteCard", card={"id": "6000000000000000000000c1"})

    parsed = verifier.parse(event="deleteCard", payload=payload, base_url="")

    assert parsed.kind == EventKind.ISSUE_DELETED
    assert parsed.issue_external_id == "6000000000000000000000c1"


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "text",
        {},
        {"action": []},
        {"action": {"type": "updateCard"}},
        {"action": {"type": "updateCard", "data": {"board": {"id": BOARD}}}},
        {"action": {"type": "updateCard", "data": {"board": {"id": 5}, "card": {"id": "c"}}}},
        action_payload("updateCard", card={"id": "c", "idShort": True}, old={"name": "x"}),
        action_payload("updateCard", card={"id": "c", "idShort": -1}, old={"name": "x"}),
        action_payload("updateCard", card={"id": 7, "idShort": 1}, old={"name": "x"}),
        action_payload("updateCard", old=["name"]),
    ],
)
def test_a_payload_trello_would_not_send_is_refused(payload: Any):
    event = verifier.event_name(headers={}, payload=payload if isinstance(payload, dict) else None)
    with pytest.raises(WebhookPayloadError):
        verifier.parse(event=event or "updateCard", payload=payload, base_url="")


# --- the signature: body + the exact callback URL ----------------------------------------------


def test_the_signature_covers_the_body_and_the_callback_url():
    body = b'{"action": {}}'
    url = f"{PUBLIC_URL}/webhooks/trello/3/"
    headers = {"X-Trello-Webhook": trello_signature(SECRET, body, url)}

    assert verifier.verify(secret=SECRET, body=body, headers=headers, url=url)
    assert not verifier.verify(secret=SECRET, body=body, headers=headers, url=url + "?x=1")
    assert not verifier.verify(secret=SECRET, body=body, headers=headers, url=url[:-1])
    assert not verifier.verify(secret=SECRET, body=body + b" ", headers=headers, url=url)
    assert not verifier.verify(secret="other", body=body, headers=headers, url=url)
    assert not verifier.verify(secret="", body=body, headers=headers, url=url)
    assert not verifier.verify(secret=SECRET, body=body, headers={}, url=url)
    # Only the body signed (another provider's scheme) is not a Trello signature.
    assert not verifier.verify(
        secret=SECRET,
        body=body,
        headers={"X-Trello-Webhook": trello_signature(SECRET, body, "")},
        url=url,
    )


def test_the_registry_serves_trello():
    assert isinstance(webhooks("trello"), TrelloWebhooks)


def test_one_action_sent_to_two_webhooks_is_two_deliveries():
    payload = action_payload("updateCard", old={"name": "x"})
    first = {**payload, "webhook": {"id": "6000000000000000000000f1"}}
    second = {**payload, "webhook": {"id": "6000000000000000000000f2"}}

    one = verifier.delivery_id(headers={}, body=json.dumps(first).encode())
    again = verifier.delivery_id(headers={}, body=json.dumps(first).encode())
    other = verifier.delivery_id(headers={}, body=json.dumps(second).encode())

    assert one == again != other


# --- the intake ------------------------------------------------------------------------------


@pytest.fixture
def connection(db: Any, settings: Any) -> Connection:
    settings.PUBLIC_URL = PUBLIC_URL
    return Connection.objects.create(
        name="board",
        provider="trello",
        base_url="https://api.trello.com",
        repository=BOARD,
        api_token="trello-token",
        webhook_secret=SECRET,
    )


def deliver(body: bytes, path: str, *, signed_url: str | None = None, secret: str = SECRET):
    headers = {}
    if signed_url is not None:
        headers["X-Trello-Webhook"] = trello_signature(secret, body, signed_url)
    return Client().post(path, data=body, content_type="application/json", headers=headers)


def fixture_body(name: str) -> bytes:
    paths = [p for p in FIXTURES if p.stem == name]
    if not paths:
        missing_shared(f"shared/fixtures/trello/{name}.json is not here")
    return paths[0].read_bytes()


@pytest.mark.parametrize("with_id", [False, True], ids=["provider", "connection"])
def test_the_head_check_answers_200(connection: Connection, with_id: bool):
    """Trello sends a HEAD to the callback before it creates a webhook: no 200, no webhook."""
    path = f"/webhooks/trello/{connection.pk}/" if with_id else "/webhooks/trello/"

    response = Client().head(path)

    assert response.status_code == 200
    assert WebhookDelivery.objects.count() == 0


def test_a_delivery_signed_over_the_public_callback_url_is_accepted(connection: Connection):
    """Failed before: the intake verified against the URL the request arrived at
    (`http://testserver/…` here, an internal address behind a proxy), not the public URL
    Trello was given and signs."""
    body = fixture_body("archiving_card")

    response = deliver(
        body, connection.webhook_url[len(PUBLIC_URL) :], signed_url=connection.webhook_url
    )

    assert response.status_code == 202, response.content
    delivery = WebhookDelivery.objects.get()
    assert (delivery.event, bytes(delivery.body)) == ("updateCard", body)


@pytest.mark.parametrize(
    "signed_url",
    [
        "http://testserver/webhooks/trello/{pk}/",  # the address the request arrived at
        PUBLIC_URL + "/webhooks/trello/",  # another callback of this service
        PUBLIC_URL + "/webhooks/trello/{pk}/?x=1",
        PUBLIC_URL + "/webhooks/trello/{pk}",
    ],
)
def test_a_signature_over_another_url_is_a_401(connection: Connection, signed_url: str):
    body = fixture_body("archiving_card")

    response = deliver(
        body, f"/webhooks/trello/{connection.pk}/", signed_url=signed_url.format(pk=connection.pk)
    )

    assert response.status_code == 401
    assert WebhookDelivery.objects.count() == 0


def test_an_unsigned_or_wrongly_keyed_delivery_is_a_401(connection: Connection):
    body = fixture_body("archiving_card")
    path = f"/webhooks/trello/{connection.pk}/"

    assert deliver(body, path).status_code == 401
    assert deliver(body, path, signed_url=connection.webhook_url, secret="nope").status_code == 401
    assert WebhookDelivery.objects.count() == 0


def test_the_board_finds_the_connection(connection: Connection):
    body = fixture_body("adding_label_to_card")
    url = f"{PUBLIC_URL}/webhooks/trello/"

    assert deliver(body, "/webhooks/trello/", signed_url=url).status_code == 202
    assert WebhookDelivery.objects.get().connection == connection


def test_another_board_is_a_404(connection: Connection):
    body = fixture_body("adding_description_to_card")  # board 55351ade…, not ours
    url = f"{PUBLIC_URL}/webhooks/trello/"

    assert deliver(body, "/webhooks/trello/", signed_url=url).status_code == 404
    assert WebhookDelivery.objects.count() == 0


@pytest.mark.parametrize(
    "name", ["adding_comment_to_card", "moving_card_within_single_list", "adding_new_list_to_board"]
)
def test_an_action_we_ignore_is_a_204(connection: Connection, name: str):
    body = fixture_body(name)

    response = deliver(
        body, f"/webhooks/trello/{connection.pk}/", signed_url=connection.webhook_url
    )

    assert response.status_code == 204
    assert WebhookDelivery.objects.count() == 0


def test_a_redelivered_action_is_a_200(connection: Connection):
    body = fixture_body("reopening_card")
    path = f"/webhooks/trello/{connection.pk}/"

    assert deliver(body, path, signed_url=connection.webhook_url).status_code == 202
    assert deliver(body, path, signed_url=connection.webhook_url).status_code == 200
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"action": {"type": "updateCard", "data": []}}',
        b"[" * 5000 + b"]" * 5000,
        b'{"action": {"type": "updateCard", "data": {"board": {"id": "x"}, "card": 5}}}',
    ],
    ids=["garbage", "data_is_a_list", "deep_nesting", "card_is_a_number"],
)
def test_a_signed_malformed_body_is_a_400(connection: Connection, body: bytes):
    response = deliver(
        body, f"/webhooks/trello/{connection.pk}/", signed_url=connection.webhook_url
    )

    assert response.status_code == 400
    assert WebhookDelivery.objects.count() == 0


# --- fuzz: a mutated capture or card is parsed or refused, never a crash -----------------------


def _captures() -> list[Any]:
    return [json.loads(p.read_bytes()) for p in FIXTURES]


@fuzz_settings(max_examples=300, deadline=None, database=None)
@given(data=st.data())
def test_a_mutated_capture_is_parsed_or_refused(data: st.DataObject):
    captures = _captures()
    if not captures:
        missing_shared("shared/fixtures/trello is not here")
    payload = data.draw(mutations(captures))
    event = verifier.event_name(headers={}, payload=payload if isinstance(payload, dict) else None)
    with contextlib.suppress(WebhookPayloadError):
        verifier.parse(event=event, payload=payload, base_url="")


def _rendered_cards() -> list[Any]:
    fake = FakeTrello()
    try:
        cards = [
            fake.seed_issue(title="a", body="b", labels=["bug"], assignees=["alice"]),
            fake.seed_issue(title="c", state="closed"),
        ]
        return [fake.render_card(c, members=True) for c in cards] + [fake.render_card(cards[0])]
    finally:
        fake._server.server_close()


@fuzz_settings(max_examples=300, deadline=None, database=None)
@given(data=st.data())
def test_a_mutated_card_is_parsed_or_refused(data: st.DataObject):
    card = data.draw(mutations(_rendered_cards()))
    with contextlib.suppress(ShapeError):
        parse_card(card, names=BoardNames(), done_list="Done")

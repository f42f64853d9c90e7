"""OpenProjectWebhooks: `X-OP-Signature`, the body's `action`, and every shared fixture."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.fake_trackers.openproject import FakeOpenProject
from integrations.providers import webhooks
from integrations.providers.base import EventKind, IssueState, WebhookPayloadError
from integrations.providers.delivery import parse_delivery
from integrations.providers.openproject import OpenProjectWebhooks, parse_work_package
from integrations.providers.shapes import ShapeError
from tests.security.test_parser_fuzz import FUZZ, mutations
from tests.shared_data import (
    missing_shared,
    openproject_signature,
    shared_available,
    shared_fixture_paths,
)

BASE_URL = "https://op.example.com"
SECRET = "op-hook-secret"
verifier = OpenProjectWebhooks()
FIXTURES = shared_fixture_paths("openproject")


@pytest.fixture(autouse=True)
def _shared() -> None:
    if not shared_available() or not FIXTURES:
        missing_shared("../shared/fixtures/openproject is not here")


def receive(body: bytes, *, secret: str = SECRET, signature: str | None = None) -> Any:
    """What the intake does: verify the raw bytes, name the event, parse."""
    headers = {
        "Content-Type": "application/json",
        "X-OP-Signature": signature
        if signature is not None
        else openproject_signature(secret, body),
    }
    assert verifier.verify(secret=SECRET, body=body, headers=headers, url="")
    event = verifier.event_name(headers=headers, payload=json.loads(body))
    assert verifier.is_known_event(event)
    return parse_delivery(verifier, event=event, body=body, headers=headers, base_url=BASE_URL)


def test_the_registry_knows_openproject() -> None:
    assert isinstance(webhooks("openproject"), OpenProjectWebhooks)


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_every_fixture_parses_to_its_event(path: Path) -> None:
    body = path.read_bytes()
    parsed = receive(body)
    action = json.loads(body)["action"]

    assert parsed.kind is EventKind.ISSUE
    assert parsed.event == action
    assert parsed.action == action.split(":", 1)[1]
    assert parsed.repository == "demo-project"
    issue = parsed.issue
    assert issue is not None
    assert (issue.number, issue.external_id, parsed.issue_number) == ("37", "37", "37")
    assert issue.title == "Task1"
    assert issue.state is IssueState.OPEN and issue.tracker_status == "New"
    assert issue.assignees == frozenset({"nirved431@gmail.com"})
    assert (issue.labels, issue.milestone) == (frozenset(), None)
    assert issue.remote_url == "https://op.example.com/work_packages/37"
    assert issue.updated_at is not None and issue.created_at is not None


def test_the_fixtures_carry_their_descriptions() -> None:
    by_action = {
        json.loads(p.read_bytes())["action"]: receive(p.read_bytes()).issue for p in FIXTURES
    }
    assert by_action["work_package:created"].body == ""
    assert by_action["work_package:updated"].body == "dxvdsvds"  # description.raw, not html


def edited(path: Path, change: Any) -> bytes:
    payload = json.loads(path.read_bytes())
    change(payload["work_package"])
    return json.dumps(payload).encode()


def test_closed_follows_the_embedded_status_is_closed_and_names_category_and_version() -> None:
    def close(wp: dict[str, Any]) -> None:
        wp["_embedded"]["status"].update(name="Rejected", isClosed=True)
        wp["_embedded"]["category"] = {"_type": "Category", "id": 3, "name": "Backend"}
        wp["_links"]["category"] = {"href": "/api/v3/categories/3", "title": "Backend"}
        wp["_links"]["version"] = {"href": "/api/v3/versions/2", "title": "Sprint 2"}

    issue = receive(edited(FIXTURES[-1], close)).issue

    assert issue.state is IssueState.CLOSED and issue.tracker_status == "Rejected"
    assert issue.labels == frozenset({"Backend"})
    assert issue.milestone == "Sprint 2"  # from the link's title when nothing is embedded


def test_an_assignee_without_login_asks_for_a_re_read() -> None:
    """A webhook user who is no admin sees no logins: the delivery names the work package."""

    def hide(wp: dict[str, Any]) -> None:
        del wp["_embedded"]["assignee"]["login"]

    parsed = receive(edited(FIXTURES[-1], hide))

    assert parsed.kind is EventKind.ISSUE and parsed.issue is None
    assert parsed.issue_number == "37"


def test_the_create_marker_is_stripped_from_the_description() -> None:
    def mark(wp: dict[str, Any]) -> None:
        wp["description"]["raw"] = "text\n\n<!-- syndarix:create:5.9 -->"

    issue = receive(edited(FIXTURES[-1], mark)).issue

    assert (issue.body, issue.marker) == ("text", "5.9")


# --- signatures ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "sha1=",
        "sha256=00",
        "deadbeef",
        "sha1=" + hmac.new(b"other", b"x", hashlib.sha1).hexdigest(),
    ],
)
def test_a_wrong_or_missing_signature_is_refused(signature: str) -> None:
    body = FIXTURES[0].read_bytes()
    assert not verifier.verify(
        secret=SECRET, body=body, headers={"X-OP-Signature": signature}, url=""
    )
    assert not verifier.verify(secret=SECRET, body=body, headers={}, url="")


def test_the_signature_covers_the_raw_bytes() -> None:
    body = FIXTURES[0].read_bytes()
    reserialized = json.dumps(json.loads(body)).encode()
    headers = {
        "x-op-signature": openproject_signature(SECRET, body).upper().replace("SHA1", "sha1")
    }

    assert verifier.verify(secret=SECRET, body=body, headers=headers, url="")
    assert not verifier.verify(secret=SECRET, body=reserialized, headers=headers, url="")
    assert not verifier.verify(secret="", body=body, headers=headers, url="")


# --- events we do not mirror and bodies no tracker sends -----------------------------------


@pytest.mark.parametrize("action", ["project:updated", "time_entry:created", "attachment:created"])
def test_other_known_actions_are_ignored_explicitly(action: str) -> None:
    body = json.dumps({"action": action, "project": {"identifier": "demo-project"}}).encode()
    assert verifier.is_known_event(action)

    parsed = verifier.parse(event=action, payload=json.loads(body), base_url=BASE_URL)

    assert parsed.kind is EventKind.IGNORED and parsed.reason


def test_an_unknown_action_is_not_a_known_event_and_no_action_is_a_payload_error() -> None:
    assert not verifier.is_known_event("work_package:teleported")
    for payload in ({"action": 7}, [1, 2], {}):
        event = verifier.event_name(headers={}, payload=payload)
        assert event == "" and verifier.is_known_event(event)  # parsed, and refused
        with pytest.raises(WebhookPayloadError):
            verifier.parse(event=event, payload=payload, base_url=BASE_URL)


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.pop("work_package"),
        lambda p: p["work_package"].pop("subject"),
        lambda p: p["work_package"].update(id="37"),
        lambda p: p["work_package"]["_embedded"]["status"].update(isClosed="no"),
        lambda p: p["work_package"].update(_type="Project"),
        lambda p: p["work_package"].update(description=[]),
    ],
    ids=["no-wp", "no-subject", "string-id", "isclosed-string", "not-a-wp", "description-list"],
)
def test_a_malformed_work_package_is_a_payload_error(change: Any) -> None:
    payload = copy.deepcopy(json.loads(FIXTURES[-1].read_bytes()))
    change(payload)

    with pytest.raises(WebhookPayloadError):
        verifier.parse(event=payload["action"], payload=payload, base_url=BASE_URL)


def test_delivery_ids_name_one_change_of_one_work_package() -> None:
    ids = {verifier.delivery_id(headers={}, body=p.read_bytes()) for p in FIXTURES}
    assert ids == {
        "op:work_package:created:37:0:2024-12-31T13:09:24.969Z",
        "op:work_package:updated:37:1:2024-12-31T18:10:05.102Z",
    }
    # A redelivery is the same bytes, the same id; a body without those fields is hashed.
    assert verifier.delivery_id(headers={}, body=b"{}") == hashlib.sha256(b"{}").hexdigest()


# --- fuzz: mutated real captures and API answers parse or are refused cleanly ---------------


def test_mutated_captured_webhooks_parse_or_are_refused_cleanly() -> None:
    payloads = [json.loads(p.read_bytes()) for p in FIXTURES]

    @FUZZ
    @given(payload=mutations(payloads))
    def check(payload: Any) -> None:
        event = verifier.event_name(headers={}, payload=payload)
        try:
            parsed = verifier.parse(event=event, payload=payload, base_url=BASE_URL)
        except WebhookPayloadError:
            return
        if parsed.issue is not None:
            assert parsed.issue.number.isdigit() and parsed.issue.external_id

    check()


def test_mutated_api_answers_parse_or_are_refused_cleanly() -> None:
    with FakeOpenProject() as fake:
        answers = [
            fake.render_work_package(
                fake.seed_issue(title="t", labels=["bug"], assignees=["alice"], milestone="v1")
            ),
            fake.render_work_package(fake.seed_issue(title="closed", state="closed")),
        ]

    @FUZZ
    @given(data=mutations(answers))
    def check(data: Any) -> None:
        try:
            parse_work_package(data, base_url=BASE_URL)
        except ShapeError:
            return

    check()


def test_signature_checks_and_delivery_ids_never_raise() -> None:
    @FUZZ
    @given(
        signature=st.text(max_size=60) | st.sampled_from(["sha1=", "sha1=zz", "SHA1=" + "0" * 40]),
        body=st.binary(max_size=200),
        secret=st.text(max_size=20),
    )
    def check(signature: str, body: bytes, secret: str) -> None:
        headers = {"X-OP-Signature": signature}
        assert verifier.verify(secret=secret, body=body, headers=headers, url="") in (True, False)
        assert isinstance(verifier.delivery_id(headers=headers, body=body), str)

    check()

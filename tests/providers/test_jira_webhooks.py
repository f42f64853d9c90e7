"""Jira webhooks: the signature over the raw bytes, and every real capture in
shared/fixtures/jira parsed to the right event.

Jira names the event in the body (`webhookEvent`, with `issue_event_type_name` for the legacy
comment deliveries). Issue events carry the REST v2 representation (wiki markup), so they
name the issue and the worker re-reads it through v3: `issue` is None, `issue_number` the key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from integrations.providers import webhooks
from integrations.providers.base import EventKind, WebhookPayloadError
from integrations.providers.delivery import parse_delivery
from integrations.providers.jira import JiraWebhooks
from tests.security.test_parser_fuzz import FUZZ, mutations
from tests.shared_data import (
    SHARED_DIR,
    github_signature,
    shared_available,
    shared_fixture_paths,
)

SECRET = "jira-hook-secret"
BASE_URL = "https://acme.atlassian.net"
verifier = JiraWebhooks()


def receive(path: Path) -> Any:
    body = path.read_bytes()
    headers = {"X-Hub-Signature": github_signature(SECRET, body)}
    assert verifier.verify(secret=SECRET, body=body, headers=headers, url="")
    event = verifier.event_name(headers=headers, payload=json.loads(body))
    assert verifier.is_known_event(event)
    return parse_delivery(verifier, event=event, body=body, headers=headers, base_url=BASE_URL)


ISS, C, D = EventKind.ISSUE, EventKind.COMMENT, EventKind.ISSUE_DELETED
# Hand-checked readings of the captures: (kind, event, action, project, key, id).
EXPECTED: dict[str, tuple[EventKind, str, str, str, str, str]] = {
    "change_status_v2.json": (ISS, "jira:issue_updated", "issue_generic", "ABC", "TEST-1", "10000"),
    "comment_created.json": (C, "comment_created", "comment_created", "ZUL", "ZUL-1", "10000"),
    "comment_created_with_account_mention.json": (
        C,
        "comment_created",
        "comment_created",
        "SB",
        "SB-1",
        "10002",
    ),
    "comment_deleted.json": (C, "comment_deleted", "comment_deleted", "SP", "SP-1", "10000"),
    "comment_deleted_v2.json": (
        C,
        "jira:issue_updated",
        "issue_comment_deleted",
        "TOM",
        "TOM-1",
        "10000",
    ),
    "comment_edited_v2.json": (
        C,
        "jira:issue_updated",
        "issue_comment_edited",
        "BUG",
        "BUG-15",
        "10400",
    ),
    "comment_updated.json": (C, "comment_updated", "comment_updated", "SP", "SP-1", "10000"),
    "commented_markup_v2.json": (
        C,
        "jira:issue_updated",
        "issue_commented",
        "TEST",
        "TEST-7",
        "10100",
    ),
    "issue_created.json": (ISS, "jira:issue_created", "issue_created", "BUG", "BUG-15", "10400"),
    "issue_created_with_additional_fields.json": (
        ISS,
        "jira:issue_created",
        "issue_created",
        "BUG",
        "BUG-15",
        "10400",
    ),
    "issue_created_with_assignee.json": (
        ISS,
        "jira:issue_created",
        "issue_created",
        "TEST",
        "TEST-4",
        "10003",
    ),
    "issue_created_with_custom_fields.json": (
        ISS,
        "jira:issue_created",
        "issue_created",
        "KAN",
        "KAN-3",
        "10033",
    ),
    "issue_created_with_unicode.json": (
        ISS,
        "jira:issue_created",
        "issue_created",
        "BUG",
        "BUG-15",
        "10400",
    ),
    "issue_created_without_list_fields.json": (
        ISS,
        "jira:issue_created",
        "issue_created",
        "BUG",
        "BUG-15",
        "10400",
    ),
    "issue_deleted.json": (D, "jira:issue_deleted", "issue_deleted", "BUG", "BUG-15", "10400"),
    "issue_updated__priority.json": (
        ISS,
        "jira:issue_updated",
        "issue_updated",
        "TEST",
        "TEST-1",
        "10000",
    ),
    "issue_updated__status.json": (
        ISS,
        "jira:issue_updated",
        "issue_generic",
        "ABC",
        "TEST-1",
        "10000",
    ),
    "reassigned_v2.json": (ISS, "jira:issue_updated", "issue_generic", "BUG", "BUG-15", "10400"),
}
REJECTED = {"example_anomalous_payload.json"}

if shared_available():
    PARAMS = [pytest.param(p, id=p.name) for p in shared_fixture_paths("jira")]
else:
    PARAMS = [pytest.param(None, marks=pytest.mark.skip(reason=f"no {SHARED_DIR}"), id="absent")]


@pytest.mark.parametrize("path", PARAMS)
def test_every_jira_capture_parses_to_the_right_event(path: Path):
    if path.name in REJECTED:
        with pytest.raises(WebhookPayloadError, match="no webhookEvent"):
            receive(path)
        return
    parsed = receive(path)
    kind, event, action, project, key, external_id = EXPECTED[path.name]
    assert (parsed.kind, parsed.event, parsed.action, parsed.repository) == (
        kind,
        event,
        action,
        project,
    )
    assert (parsed.issue_number, parsed.issue_external_id) == (key, external_id)
    # Issue events name the issue; the worker reads its ADF state through REST v3.
    assert parsed.issue is None


@pytest.mark.skipif(not shared_available(), reason=f"no {SHARED_DIR}")
def test_the_table_covers_every_capture():
    assert {p.name for p in shared_fixture_paths("jira")} == set(EXPECTED) | REJECTED


def test_the_registry_serves_jira():
    assert isinstance(webhooks("jira"), JiraWebhooks)


BODY = b'{"webhookEvent":"jira:issue_updated","issue":{"id":"1","key":"P-1","fields":{}}}'


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({"X-Hub-Signature": github_signature(SECRET, BODY)}, True),
        (
            {"x-hub-signature": github_signature(SECRET, BODY).upper().replace("SHA256", "sha256")},
            True,
        ),
        ({"X-Hub-Signature": github_signature(SECRET, BODY)[7:]}, False),  # bare hex
        ({"X-Hub-Signature": github_signature("other", BODY)}, False),
        ({"X-Hub-Signature-256": github_signature(SECRET, BODY)}, False),  # GitHub's header
        ({"X-Hub-Signature": "sha256=\udcff"}, False),
        ({}, False),
    ],
    ids=["good", "case", "bare-hex", "wrong-secret", "github-header", "garbage", "missing"],
)
def test_the_signature_is_checked_over_the_raw_bytes(headers: dict[str, str], ok: bool):
    assert verifier.verify(secret=SECRET, body=BODY, headers=headers, url="") is ok
    assert verifier.verify(secret="", body=BODY, headers=headers, url="") is False


def test_a_signature_over_re_serialised_json_does_not_verify():
    reformatted = json.dumps(json.loads(BODY), indent=1).encode()
    headers = {"X-Hub-Signature": github_signature(SECRET, reformatted)}
    assert not verifier.verify(secret=SECRET, body=BODY, headers=headers, url="")


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ({"webhookEvent": "jira:version_released", "version": {"id": "1"}}, EventKind.IGNORED),
        ({"webhookEvent": "sprint_started", "sprint": {}}, EventKind.IGNORED),
        (
            {"webhookEvent": "jira:worklog_updated", "issue": {"id": "1", "key": "P-1"}},
            EventKind.IGNORED,
        ),
    ],
    ids=["version", "sprint", "worklog"],
)
def test_events_that_do_not_concern_issues_are_ignored(payload: dict[str, Any], kind: EventKind):
    assert (
        verifier.parse(event=payload["webhookEvent"], payload=payload, base_url=BASE_URL).kind
        == kind
    )


def test_an_unknown_event_is_not_known():
    assert not verifier.is_known_event("jira:something_new")
    assert verifier.event_name(headers={}, payload={"webhookEvent": "jira:issue_created"}) == (
        "jira:issue_created"
    )


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"webhookEvent": "jira:issue_created"},
        {"webhookEvent": "jira:issue_created", "issue": {"id": "1", "key": "not a key"}},
        {"webhookEvent": "jira:issue_deleted", "issue": {"id": 1, "key": "P-1"}},
        {"webhookEvent": "jira:issue_updated", "issue": {"id": "1", "key": "P-0"}},
        {"webhookEvent": 7},
    ],
    ids=["list", "no-issue", "bad-key", "int-id", "zero", "event-not-str"],
)
def test_a_malformed_issue_payload_is_refused(payload: Any):
    with pytest.raises(WebhookPayloadError):
        verifier.parse(event="jira:issue_created", payload=payload, base_url=BASE_URL)


def test_the_delivery_id_is_jiras_identifier_else_a_body_hash():
    assert verifier.delivery_id(headers={"X-Atlassian-Webhook-Identifier": "abc-1"}, body=b"x") == (
        "abc-1"
    )
    hashed = verifier.delivery_id(headers={"X-Atlassian-Webhook-Identifier": "a b"}, body=b"x")
    assert hashed == verifier.delivery_id(headers={}, body=b"x") and len(hashed) == 64


@pytest.mark.skipif(not shared_available(), reason=f"no {SHARED_DIR}")
def test_mutated_captures_parse_or_are_refused_cleanly():
    """The shared fuzz module's mutations (one subtree replaced or removed) over the Jira
    captures: a WebhookEvent naming an issue by a valid key, or a WebhookPayloadError."""
    payloads = [json.loads(p.read_bytes()) for p in shared_fixture_paths("jira")]

    @FUZZ
    @given(payload=mutations(payloads))
    def check(payload: Any) -> None:
        try:
            parsed = parse_delivery(
                verifier,
                event="",
                body=json.dumps(payload).encode(),
                headers={},
                base_url=BASE_URL,
            )
        except WebhookPayloadError:
            return
        assert isinstance(parsed.kind, EventKind) and parsed.issue is None
        if parsed.kind in (EventKind.ISSUE, EventKind.ISSUE_DELETED):
            assert parsed.issue_number and "-" in parsed.issue_number
            assert parsed.issue_external_id and parsed.repository

    check()

"""GiteaWebhooks: signatures, headers, and parsing of real (shared) and own payload fixtures."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.providers import webhooks
from integrations.providers.base import EventKind, IssueState, WebhookEvent, WebhookPayloadError
from integrations.providers.gitea import GiteaWebhooks, issue_web_url
from tests.shared_data import (
    LOCAL_FIXTURES,
    SHARED_DIR,
    event_from_fixture_name,
    gitea_signature,
    shared_available,
    shared_fixture_paths,
)

BASE_URL = "https://gitea.example.com"
SECRET = "It's a Secret to Everybody"
verifier = GiteaWebhooks()
OWN_FIXTURES = sorted((LOCAL_FIXTURES / "gitea").glob("*.json"))
ISSUE_EVENT_TYPES = {"issues", "issue_assign", "issue_label", "issue_milestone"}


def coarse_event(event_type: str) -> str:
    """What Gitea puts in X-Gitea-Event for a given X-Gitea-Event-Type."""
    if event_type in ISSUE_EVENT_TYPES:
        return "issues"
    if event_type == "pull_request_comment":
        return "issue_comment"
    if event_type.startswith("pull_request"):
        return "pull_request"
    return event_type


def headers_for(path: Path, body: bytes, secret: str = SECRET) -> dict[str, str]:
    event_type = event_from_fixture_name(path)
    delivery = str(uuid.uuid5(uuid.NAMESPACE_URL, path.name))
    return {
        "Content-Type": "application/json",
        "X-Gitea-Delivery": delivery,
        "X-Gitea-Event": coarse_event(event_type),
        "X-Gitea-Event-Type": event_type,
        "X-Gitea-Signature": gitea_signature(secret, body),
        "X-Gogs-Delivery": delivery,
        "X-Gogs-Event": coarse_event(event_type),
    }


def receive(path: Path, base_url: str = BASE_URL) -> WebhookEvent:
    """What the webhook endpoint does: verify on raw bytes, then name the event, then parse."""
    body = path.read_bytes()
    headers = headers_for(path, body)
    assert verifier.verify(secret=SECRET, body=body, headers=headers, url="")
    event = verifier.event_name(headers=headers, payload=None)
    assert verifier.is_known_event(event)
    return verifier.parse(event=event, payload=json.loads(body), base_url=base_url)


def expected_from_payload(event: str, payload: dict[str, Any]) -> dict[str, Any]:
    """An independent reading of a payload: what the canonical event must say about it."""
    issue = payload.get("issue") or {}
    is_pull = bool(payload.get("is_pull")) or issue.get("pull_request") is not None
    if event.startswith("pull_request") or is_pull:
        return {"kind": EventKind.IGNORED}
    if event in ISSUE_EVENT_TYPES and payload.get("action") == "deleted":
        return {"kind": EventKind.ISSUE_DELETED, "number": str(issue["number"])}
    if event in ISSUE_EVENT_TYPES:
        kind = EventKind.ISSUE
    elif event == "issue_comment":
        kind = EventKind.COMMENT
    else:
        return {"kind": EventKind.IGNORED}
    assignees = issue.get("assignees")
    if assignees is None:
        assignees = [issue["assignee"]] if issue.get("assignee") else []
    return {
        "kind": kind,
        "number": str(issue["number"]),
        "external_id": str(issue["id"]),
        "title": issue["title"],
        "state": issue["state"],
        "labels": frozenset(label["name"] for label in issue.get("labels") or []),
        "assignees": frozenset(user["login"] for user in assignees),
        "milestone": (issue.get("milestone") or {}).get("title"),
    }


def check_against_payload(parsed: WebhookEvent, payload: dict[str, Any], event: str) -> None:
    expected = expected_from_payload(event, payload)
    assert parsed.kind == expected["kind"]
    assert parsed.repository == payload["repository"]["full_name"]
    assert parsed.action == payload.get("action", "")
    if parsed.kind == EventKind.IGNORED:
        assert parsed.reason
        assert parsed.issue is None
        return
    assert parsed.issue_number == expected["number"]
    if parsed.kind == EventKind.ISSUE_DELETED:
        return
    issue = parsed.issue
    assert issue is not None
    assert issue.number == expected["number"]
    assert issue.external_id == expected["external_id"]
    assert issue.title == expected["title"]
    assert issue.state == IssueState(expected["state"])
    assert issue.labels == expected["labels"]
    assert issue.assignees == expected["assignees"]
    assert issue.milestone == expected["milestone"]
    if parsed.kind == EventKind.COMMENT:
        assert parsed.comment is not None
        assert parsed.comment.external_id == str(payload["comment"]["id"])
        assert parsed.comment.body == payload["comment"]["body"]
        assert parsed.comment.issue_number == expected["number"]


# --- the shared, real captured payloads ----------------------------------------------------

if shared_available():
    SHARED_PARAMS = [pytest.param(p, id=p.name) for p in shared_fixture_paths("gitea")]
else:
    SHARED_PARAMS = [
        pytest.param(
            None,
            marks=pytest.mark.skip(reason=f"shared fixtures not found at {SHARED_DIR}"),
            id="shared-absent",
        )
    ]

# Hand-checked canonical readings of the upstream captures (independent of the parser).
KNOWN_SHARED: dict[str, dict[str, Any]] = {
    "issues__opened.json": {
        "kind": EventKind.ISSUE,
        "action": "opened",
        "title": "Test issue",
        "state": IssueState.OPEN,
        "assignees": frozenset(),
        "repository": "kostekIV/test",
    },
    "issues__edited.json": {
        "kind": EventKind.ISSUE,
        "action": "edited",
        "title": "Test issue 2",
        "assignees": frozenset({"kostekIV"}),
    },
    "issues__assigned.json": {
        "kind": EventKind.ISSUE,
        "action": "assigned",
        "assignees": frozenset({"kostekIV"}),
    },
    "issues__closed.json": {
        "kind": EventKind.ISSUE,
        "action": "closed",
        "state": IssueState.CLOSED,
    },
    "issues__reopened.json": {
        "kind": EventKind.ISSUE,
        "action": "reopened",
        "state": IssueState.OPEN,
    },
    "issue_comment__new.json": {
        "kind": EventKind.COMMENT,
        "action": "created",
        "comment_body": "test comment",
        "comment_author": "kostekIV",
        "number": "3",
    },
    "issue_comment__edited.json": {
        "kind": EventKind.COMMENT,
        "action": "edited",
        "comment_body": "edit test comment",
        "comment_id": "24400",
    },
    "issue_comment__in_pr.json": {"kind": EventKind.IGNORED},
    "issue_comment__created_pr.json": {
        "kind": EventKind.IGNORED,
        "repository": "TestOrg/test-repo",
    },
    "issue_comment__edited_pr.json": {"kind": EventKind.IGNORED},
    "create__branch.json": {"kind": EventKind.IGNORED},
    "delete__branch.json": {"kind": EventKind.IGNORED},
}


@pytest.mark.parametrize("path", SHARED_PARAMS)
def test_every_shared_gitea_payload_parses_to_the_right_canonical_event(path):
    parsed = receive(path)
    payload = json.loads(path.read_bytes())
    check_against_payload(parsed, payload, event_from_fixture_name(path))

    known = KNOWN_SHARED.get(path.name)
    if known is None:
        return  # a capture added upstream later: the payload-derived checks above still ran
    assert parsed.kind == known["kind"]
    if "action" in known:
        assert parsed.action == known["action"]
    if "repository" in known:
        assert parsed.repository == known["repository"]
    if parsed.issue is not None:
        assert (
            parsed.issue.remote_url
            == f"{BASE_URL}/{parsed.repository}/issues/{parsed.issue.number}"
        )
        for field in ("title", "state", "assignees"):
            if field in known:
                assert getattr(parsed.issue, field) == known[field]
    if "comment_body" in known:
        assert parsed.comment is not None and parsed.comment.body == known["comment_body"]
    if "comment_author" in known:
        assert parsed.comment is not None and parsed.comment.author == known["comment_author"]
    if "comment_id" in known:
        assert parsed.comment is not None and parsed.comment.external_id == known["comment_id"]
    if "number" in known:
        assert parsed.issue_number == known["number"]


@pytest.mark.skipif(not shared_available(), reason=f"shared fixtures not found at {SHARED_DIR}")
def test_the_hand_checked_table_covers_every_shared_capture_known_today():
    names = {p.name for p in shared_fixture_paths("gitea")}
    assert set(KNOWN_SHARED) <= names


# --- own fixtures ---------------------------------------------------------------------------

OWN_EXPECTED: dict[str, dict[str, Any]] = {
    "issues__deleted.json": {"kind": EventKind.ISSUE_DELETED, "external_id": "5107", "number": "7"},
    "issue_label__label_updated.json": {
        "kind": EventKind.ISSUE,
        "action": "label_updated",
        "labels": frozenset({"bug", "größer 🚀"}),
    },
    "issue_label__label_cleared.json": {
        "kind": EventKind.ISSUE,
        "action": "label_cleared",
        "labels": frozenset(),
    },
    "issue_assign__unassigned.json": {
        "kind": EventKind.ISSUE,
        "action": "unassigned",
        "assignees": frozenset(),
    },
    "issue_milestone__milestoned.json": {
        "kind": EventKind.ISSUE,
        "action": "milestoned",
        "milestone": "v1.0 – Größe",
        "assignees": frozenset({"alice", "bob"}),
    },
    "issue_milestone__demilestoned.json": {
        "kind": EventKind.ISSUE,
        "action": "demilestoned",
        "milestone": None,
        # Gitea's own html_url (its public ROOT_URL) wins when it names this issue.
        "remote_url": "https://git.public.example.org/acme/widgets/issues/7",
    },
    "issues__edited_legacy_assignee.json": {
        "kind": EventKind.ISSUE,
        "action": "edited",
        "assignees": frozenset({"bob"}),
        "body": "new body",
    },
    "issue_comment__deleted.json": {
        "kind": EventKind.COMMENT,
        "action": "deleted",
        "comment_author": "bob",
    },
    "pull_request__opened.json": {"kind": EventKind.IGNORED},
    "ping__hook.json": {"kind": EventKind.IGNORED},
}


def test_own_fixtures_and_their_expectations_match_one_to_one():
    assert {p.name for p in OWN_FIXTURES} == set(OWN_EXPECTED)


@pytest.mark.parametrize("path", OWN_FIXTURES, ids=lambda p: p.name)
def test_own_fixture_parses_to_the_expected_event(path):
    parsed = receive(path)
    expected = OWN_EXPECTED[path.name]
    assert parsed.kind == expected["kind"]
    assert parsed.repository == "acme/widgets"
    if expected["kind"] == EventKind.ISSUE_DELETED:
        assert parsed.issue_external_id == expected["external_id"]
        assert parsed.issue_number == expected["number"]
        return
    if expected["kind"] == EventKind.IGNORED:
        assert parsed.reason
        return
    check_against_payload(parsed, json.loads(path.read_bytes()), event_from_fixture_name(path))
    assert parsed.action == expected["action"]
    assert parsed.issue is not None
    for field in ("labels", "assignees", "milestone", "remote_url", "body"):
        if field in expected:
            assert getattr(parsed.issue, field) == expected[field]
    if "comment_author" in expected:
        assert parsed.comment is not None and parsed.comment.author == expected["comment_author"]


def test_pull_request_event_is_ignored_with_a_reason():
    parsed = receive(LOCAL_FIXTURES / "gitea" / "pull_request__opened.json")
    assert parsed.kind == EventKind.IGNORED
    assert "pull request" in parsed.reason


def test_the_registry_serves_this_verifier():
    assert isinstance(webhooks("gitea"), GiteaWebhooks)


# --- signatures --------------------------------------------------------------------------------


def signature_paths() -> list[Path]:
    return (shared_fixture_paths("gitea") or [])[:3] + OWN_FIXTURES[:2]


@pytest.mark.parametrize("path", signature_paths(), ids=lambda p: p.name)
def test_a_signature_over_the_exact_file_bytes_verifies(path):
    body = path.read_bytes()
    headers = {"X-Gitea-Signature": gitea_signature(SECRET, body)}
    assert verifier.verify(secret=SECRET, body=body, headers=headers, url="") is True


@pytest.mark.parametrize("path", signature_paths(), ids=lambda p: p.name)
def test_a_signature_made_with_another_secret_fails(path):
    body = path.read_bytes()
    headers = {"X-Gitea-Signature": gitea_signature("another secret", body)}
    assert verifier.verify(secret=SECRET, body=body, headers=headers, url="") is False


def test_a_signature_of_another_body_fails():
    first, second = OWN_FIXTURES[0].read_bytes(), OWN_FIXTURES[1].read_bytes()
    headers = {"X-Gitea-Signature": gitea_signature(SECRET, second)}
    assert verifier.verify(secret=SECRET, body=first, headers=headers, url="") is False


def test_re_serialised_json_does_not_verify_against_the_raw_signature():
    body = OWN_FIXTURES[0].read_bytes()
    reserialised = json.dumps(json.loads(body)).encode()
    headers = {"X-Gitea-Signature": gitea_signature(SECRET, body)}
    assert verifier.verify(secret=SECRET, body=reserialised, headers=headers, url="") is False


def test_a_missing_signature_header_fails():
    body = OWN_FIXTURES[0].read_bytes()
    assert verifier.verify(secret=SECRET, body=body, headers={}, url="") is False
    assert (
        verifier.verify(secret=SECRET, body=body, headers={"X-Gitea-Signature": ""}, url="")
        is False
    )


def test_an_empty_secret_never_verifies_even_with_a_matching_signature():
    body = OWN_FIXTURES[0].read_bytes()
    headers = {"X-Gitea-Signature": gitea_signature("", body)}
    assert verifier.verify(secret="", body=body, headers=headers, url="") is False


def test_the_signature_header_is_found_case_insensitively_and_hex_case_is_ignored():
    body = b'{"action": "opened"}'
    headers = {"x-gitea-signature": gitea_signature(SECRET, body).upper()}
    assert verifier.verify(secret=SECRET, body=body, headers=headers, url="") is True


@pytest.mark.parametrize("value", ["sha256=" + "0" * 64, "zz", "é" * 64, "\udcff", "0" * 10_000])
def test_garbage_signatures_fail_without_raising(value):
    assert (
        verifier.verify(secret=SECRET, body=b"{}", headers={"X-Gitea-Signature": value}, url="")
        is False
    )


# --- header helpers -------------------------------------------------------------------------


def test_event_name_prefers_the_finer_event_type():
    headers = {"X-Gitea-Event": "issues", "X-Gitea-Event-Type": "issue_label"}
    assert verifier.event_name(headers=headers, payload=None) == "issue_label"


def test_event_name_falls_back_to_x_gitea_event_then_x_gogs_event():
    assert verifier.event_name(headers={"X-Gitea-Event": "issues"}, payload=None) == "issues"
    assert verifier.event_name(headers={"X-Gogs-Event": "issue_comment"}, payload=None) == (
        "issue_comment"
    )
    assert verifier.event_name(headers={}, payload={"action": "opened"}) == ""


def test_delivery_id_comes_from_the_header_else_from_the_body_hash():
    body = b'{"x": 1}'
    assert verifier.delivery_id(headers={"X-Gitea-Delivery": "abc-123"}, body=body) == "abc-123"
    assert verifier.delivery_id(headers={}, body=body) == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("value", ["", "   ", "x" * 500, "a b", "id;drop", "ü-123"])
def test_an_odd_delivery_header_falls_back_to_the_body_hash(value):
    body = b"{}"
    assert verifier.delivery_id(headers={"X-Gitea-Delivery": value}, body=body) == (
        hashlib.sha256(body).hexdigest()
    )


@pytest.mark.parametrize(
    "event",
    [
        "issues",
        "issue_label",
        "issue_assign",
        "issue_milestone",
        "issue_comment",
        "push",
        "create",
        "delete",
        "pull_request",
        "pull_request_comment",
        "release",
        "ping",
    ],
)
def test_events_gitea_sends_are_known(event):
    assert verifier.is_known_event(event)


@pytest.mark.parametrize("event", ["", "Issue Hook", "jira:issue_created", "issues2"])
def test_events_gitea_never_sends_are_unknown(event):
    assert not verifier.is_known_event(event)


# --- hostile input ----------------------------------------------------------------------------


def minimal_issue(**changes: Any) -> dict[str, Any]:
    issue = {"id": 1, "number": 2, "title": "t", "body": "b", "state": "open", "labels": []}
    issue.update(changes)
    return issue


def issue_payload(**changes: Any) -> dict[str, Any]:
    return {
        "action": "edited",
        "issue": minimal_issue(**changes),
        "repository": {"full_name": "acme/widgets"},
    }


@pytest.mark.parametrize("payload", [None, [], "issue", 42, 3.5, True, [{"action": "opened"}]])
def test_a_payload_that_is_not_an_object_is_a_payload_error(payload):
    with pytest.raises(WebhookPayloadError):
        verifier.parse(event="issues", payload=payload, base_url=BASE_URL)


@pytest.mark.parametrize(
    "payload",
    [
        {"action": "opened", "repository": {"full_name": "acme/widgets"}},
        {"action": "opened", "issue": None, "repository": {"full_name": "acme/widgets"}},
        {"action": "opened", "issue": [], "repository": {"full_name": "acme/widgets"}},
        {"issue": minimal_issue(), "repository": {"full_name": "acme/widgets"}},
        {"action": 7, "issue": minimal_issue()},
        issue_payload(id="1"),
        issue_payload(id=True),
        issue_payload(number=None),
        issue_payload(number=0),
        issue_payload(title=None),
        issue_payload(title=["t"]),
        issue_payload(state="merged"),
        issue_payload(labels={"name": "bug"}),
        issue_payload(labels=[{"name": 3}]),
        issue_payload(labels=["bug"]),
        issue_payload(assignees=[None]),
        issue_payload(assignees="bob"),
        issue_payload(assignees=[{"id": 3}]),
        issue_payload(milestone="v1"),
        issue_payload(milestone={"title": 1}),
        {"action": "edited", "issue": minimal_issue(), "repository": "acme/widgets"},
        {"action": "edited", "issue": minimal_issue(), "repository": {"full_name": 5}},
        {"action": "edited", "issue": minimal_issue()},
    ],
)
def test_wrong_issue_shapes_are_payload_errors(payload):
    with pytest.raises(WebhookPayloadError):
        verifier.parse(event="issues", payload=payload, base_url=BASE_URL)


@pytest.mark.parametrize(
    "payload",
    [
        {"action": "created", "issue": minimal_issue(), "repository": {"full_name": "a/b"}},
        {
            "action": "created",
            "issue": minimal_issue(),
            "comment": "hi",
            "repository": {"full_name": "a/b"},
        },
        {
            "action": "created",
            "issue": minimal_issue(),
            "comment": {"id": "9", "body": "x"},
            "repository": {"full_name": "a/b"},
        },
        {
            "action": "created",
            "issue": minimal_issue(),
            "comment": {"id": 9, "body": 5},
            "repository": {"full_name": "a/b"},
        },
        {
            "action": "created",
            "issue": minimal_issue(),
            "comment": {"id": 9, "body": "x"},
            "is_pull": "no",
            "repository": {"full_name": "a/b"},
        },
    ],
)
def test_wrong_comment_shapes_are_payload_errors(payload):
    with pytest.raises(WebhookPayloadError):
        verifier.parse(event="issue_comment", payload=payload, base_url=BASE_URL)


def test_a_huge_label_list_parses_to_the_full_set():
    labels = [{"id": n, "name": f"label-{n}"} for n in range(20_000)]
    parsed = verifier.parse(
        event="issue_label", payload=issue_payload(labels=labels), base_url=BASE_URL
    )
    assert parsed.issue is not None
    assert len(parsed.issue.labels) == 20_000


def test_unicode_everywhere_survives_parsing():
    payload = issue_payload(
        title="Ünïcødé 💥 \u202etxt.exe \u0000 末尾",
        body="𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
        labels=[{"name": "优先级:高"}, {"name": "🐛"}],
        assignees=[{"login": "Zoë"}],
        milestone={"title": "v2 – “quoted”"},
    )
    parsed = verifier.parse(event="issues", payload=payload, base_url=BASE_URL)
    assert parsed.issue is not None
    assert parsed.issue.title == "Ünïcødé 💥 \u202etxt.exe \u0000 末尾"
    assert parsed.issue.labels == frozenset({"优先级:高", "🐛"})
    assert parsed.issue.assignees == frozenset({"Zoë"})
    assert parsed.issue.milestone == "v2 – “quoted”"


def test_null_body_labels_and_assignees_read_as_empty():
    payload = issue_payload(body=None, labels=None, assignees=None, assignee=None, milestone=None)
    parsed = verifier.parse(event="issues", payload=payload, base_url=BASE_URL)
    assert parsed.issue is not None
    assert (parsed.issue.body, parsed.issue.labels, parsed.issue.assignees) == (
        "",
        frozenset(),
        frozenset(),
    )


def test_bad_timestamps_become_none_rather_than_errors():
    payload = issue_payload(updated_at="yesterday", created_at=12)
    parsed = verifier.parse(event="issues", payload=payload, base_url=BASE_URL)
    assert parsed.issue is not None
    assert parsed.issue.updated_at is None and parsed.issue.created_at is None


def test_an_unknown_issue_action_is_ignored_with_a_reason():
    payload = issue_payload()
    payload["action"] = "synchronized"
    parsed = verifier.parse(event="issues", payload=payload, base_url=BASE_URL)
    assert parsed.kind == EventKind.IGNORED
    assert "synchronized" in parsed.reason


def test_an_unknown_event_is_ignored_with_a_reason():
    parsed = verifier.parse(event="mystery", payload={"x": 1}, base_url=BASE_URL)
    assert parsed.kind == EventKind.IGNORED
    assert "mystery" in parsed.reason


def test_the_repository_falls_back_to_the_issue_repository_meta():
    payload = {"action": "opened", "issue": minimal_issue(repository={"full_name": "acme/meta"})}
    parsed = verifier.parse(event="issues", payload=payload, base_url=BASE_URL)
    assert parsed.issue is not None
    assert parsed.issue.remote_url == f"{BASE_URL}/acme/meta/issues/2"


SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=12)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["name", "login", "title", "id", "x"]), inner, max_size=3)
    ),
    max_leaves=6,
)
ISSUE_KEYS = st.fixed_dictionaries(
    {},
    optional={
        "id": JSON,
        "number": JSON,
        "title": JSON,
        "body": JSON,
        "state": JSON,
        "labels": JSON,
        "assignees": JSON,
        "assignee": JSON,
        "milestone": JSON,
        "html_url": JSON,
        "pull_request": JSON,
        "updated_at": JSON,
    },
)


@settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    event=st.sampled_from(["issues", "issue_label", "issue_comment", "push", "pull_request", "x"]),
    action=JSON,
    issue=ISSUE_KEYS | JSON,
    comment=JSON,
    repository=JSON,
)
def test_any_json_either_parses_or_is_a_payload_error(event, action, issue, comment, repository):
    payload = {"action": action, "issue": issue, "comment": comment, "repository": repository}
    try:
        parsed = verifier.parse(event=event, payload=payload, base_url=BASE_URL)
    except WebhookPayloadError:
        return
    assert isinstance(parsed, WebhookEvent)
    if parsed.kind == EventKind.ISSUE:
        assert parsed.issue is not None and parsed.issue.number.isdigit()


# --- remote_url ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://host", "https://host/acme/widgets/issues/5"),
        ("https://host/", "https://host/acme/widgets/issues/5"),
        ("https://host/gitea", "https://host/gitea/acme/widgets/issues/5"),
        ("https://host/gitea/", "https://host/gitea/acme/widgets/issues/5"),
    ],
)
def test_remote_url_joins_the_web_root_and_the_issue_path(base, expected):
    assert issue_web_url(base, "acme/widgets", 5) == expected
    payload = issue_payload(number=5)
    parsed = verifier.parse(event="issues", payload=payload, base_url=base)
    assert parsed.issue is not None and parsed.issue.remote_url == expected


@pytest.mark.parametrize(
    "html_url",
    [
        "https://host/acme/widgets/issues/6",  # another issue
        "https://host/acme/other/issues/5",  # another repository
        "https://host/acme/widgets/pulls/5",
        "javascript:alert(1)//acme/widgets/issues/5",
        "",
        17,
    ],
)
def test_an_inconsistent_html_url_is_replaced_by_the_built_one(html_url):
    parsed = verifier.parse(
        event="issues",
        payload=issue_payload(number=5, html_url=html_url),
        base_url="https://host/gitea",
    )
    assert parsed.issue is not None
    assert parsed.issue.remote_url == "https://host/gitea/acme/widgets/issues/5"

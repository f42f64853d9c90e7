"""GitLab webhooks: token check, event names, delivery ids, and parsing of real payloads.

Real payloads come from /work/shared/fixtures/gitlab (read in place, never copied); our own
hand-written ones from tests/fixtures/gitlab. Headers are derived from the file name the
way Zulip names its fixtures: `<x_gitlab_event in snake case>__<variant>.json`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.providers.base import EventKind, IssueState, WebhookEvent, WebhookPayloadError
from integrations.providers.gitlab import KNOWN_EVENTS, GitLabWebhooks
from tests.shared_data import (
    LOCAL_FIXTURES,
    SHARED_DIR,
    event_from_fixture_name,
    shared_available,
    shared_fixture_paths,
)

SECRET = "s3cr3t-gitlab-token"
BASE_URL = "https://gitlab.example.com"
WEBHOOKS = GitLabWebhooks()
OWN_FIXTURES = sorted((LOCAL_FIXTURES / "gitlab").glob("*.json"))


def gitlab_token(secret: str, body: bytes) -> str:
    """What GitLab puts in X-Gitlab-Token: the secret itself, whatever the body.

    tests/shared_data.py has no GitLab helper because there is nothing to compute; this
    mirrors the README's `gitlab_token = secret.decode()`.
    """
    return secret


def headers_for(path: Path, body: bytes, secret: str = SECRET) -> dict[str, str]:
    """The headers GitLab would send with this file: event from the file name, if it is one."""
    candidate = event_from_fixture_name(path).replace("_", " ").title()
    headers = {
        "Content-Type": "application/json",
        "X-Gitlab-Token": gitlab_token(secret, body),
        "X-Gitlab-Event-UUID": "3b4c1d2e-0000-4000-8000-" + hashlib.sha256(body).hexdigest()[:12],
        "X-Gitlab-Webhook-UUID": "a1b2c3d4-0000-4000-8000-000000000001",
        "X-Gitlab-Instance": BASE_URL,
    }
    # Older Zulip names (`issue_created_with_…`) and `test_hook` carry no header name: the
    # event then comes from the body's object_kind, as for a delivery without the header.
    if candidate in KNOWN_EVENTS:
        headers["X-Gitlab-Event"] = candidate
    return headers


def deliver(path: Path) -> tuple[WebhookEvent, dict[str, Any], dict[str, str]]:
    """Verify and parse one file the way the endpoint does: bytes, token, event, parse."""
    body = path.read_bytes()
    headers = headers_for(path, body)
    assert WEBHOOKS.verify(secret=SECRET, body=body, headers=headers, url="")
    payload = json.loads(body)
    event = WEBHOOKS.event_name(headers=headers, payload=payload)
    assert WEBHOOKS.is_known_event(event), event
    return WEBHOOKS.parse(event=event, payload=payload, base_url=BASE_URL), payload, headers


def _shared_params() -> list[Any]:
    paths = shared_fixture_paths("gitlab")
    if not paths:
        reason = f"shared GitLab fixtures not found under {SHARED_DIR} (is /work/shared mounted?)"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-shared-data")]
    return [pytest.param(p, id=p.stem) for p in paths]


# --- the contract over every real payload ---------------------------------------------------

ISSUE = EventKind.ISSUE
COMMENT = EventKind.COMMENT
IGNORED = EventKind.IGNORED

# stem → (kind, action, full state in the payload?) for the files known today; a file added
# later still goes through the generic checks in test_every_shared_payload_parses_….
SHARED_EXPECTED: dict[str, tuple[EventKind, str, bool]] = {
    "confidential_issue_hook__issue_closed": (ISSUE, "close", True),
    "confidential_issue_hook__issue_created_without_assignee": (ISSUE, "open", True),
    "confidential_issue_hook__issue_updated": (ISSUE, "update", True),
    "confidential_issue_hook__task_updated": (IGNORED, "update", False),
    "confidential_note_hook__issue_note": (COMMENT, "create", False),
    "issue_created_with_ten_assignees": (ISSUE, "open", True),
    "issue_created_with_three_assignees": (ISSUE, "open", True),
    "issue_hook__confidential_issue_reopened": (ISSUE, "reopen", True),
    "issue_hook__epic_created": (IGNORED, "open", False),
    "issue_hook__epic_updated": (IGNORED, "update", False),
    "issue_hook__incident_created_with_assignee": (ISSUE, "open", True),
    "issue_hook__incident_updated": (ISSUE, "update", True),
    # 2016 payloads: no label list, so the state is re-read rather than labels cleared.
    "issue_hook__issue_closed": (ISSUE, "close", False),
    "issue_hook__issue_created_with_hidden_comment_in_description": (ISSUE, "open", True),
    "issue_hook__issue_created_with_two_assignees": (ISSUE, "open", True),
    "issue_hook__issue_opened_with_null_description": (ISSUE, "open", True),
    "issue_hook__issue_reopened": (ISSUE, "reopen", False),
    "issue_hook__issue_updated": (ISSUE, "update", False),
    "issue_hook__key_result_updated": (IGNORED, "update", False),
    "issue_hook__objective_updated": (IGNORED, "update", False),
    "issue_hook__requirement_updated": (ISSUE, "update", True),
    "issue_hook__task_closed": (IGNORED, "close", False),
    "issue_hook__task_created_with_assignee": (IGNORED, "open", False),
    "issue_hook__task_updated": (IGNORED, "update", False),
    "note_hook__issue_note": (COMMENT, "create", False),
    "test_hook__issue_test_payload": (IGNORED, "", False),
}


@pytest.mark.parametrize("path", _shared_params())
def test_every_shared_payload_parses_to_the_canonical_event(path: Path) -> None:
    event, payload, _ = deliver(path)
    attrs = payload["object_attributes"]
    project = payload.get("project")
    assert event.repository == (project["path_with_namespace"] if project else None)
    if event.kind is EventKind.ISSUE:
        assert event.issue_number == str(attrs["iid"])
        assert event.issue_external_id == str(attrs["id"])
        if event.issue is not None:
            issue = event.issue
            assert issue.number == str(attrs["iid"])
            assert issue.external_id == str(attrs["id"])
            assert issue.title == attrs["title"]
            assert issue.body == (attrs["description"] or "")
            expected_state = IssueState.CLOSED if attrs["state"] == "closed" else IssueState.OPEN
            assert issue.state is expected_state
            assert issue.labels == {label["title"] for label in payload.get("labels", [])}
            assert issue.assignees == {u["username"] for u in payload.get("assignees", [])}
            assert issue.remote_url == attrs["url"]
            assert issue.updated_at is not None
        else:
            assert "re-read" in event.reason
    elif event.kind is EventKind.COMMENT:
        assert event.comment is not None
        assert event.comment.external_id == str(attrs["id"])
        assert event.comment.body == attrs["note"]
        assert event.comment.issue_number == str(payload["issue"]["iid"])
        assert event.comment.author == payload["user"]["username"]
    else:
        assert event.kind is EventKind.IGNORED
        assert event.reason
    if path.stem in SHARED_EXPECTED:
        kind, action, full_state = SHARED_EXPECTED[path.stem]
        assert (event.kind, event.action, event.issue is not None) == (kind, action, full_state)


@pytest.mark.skipif(not shared_available(), reason=f"no shared fixtures under {SHARED_DIR}")
def test_shared_payloads_carry_the_details_the_mirror_needs() -> None:
    def parsed(stem: str) -> WebhookEvent:
        return deliver(SHARED_DIR / "fixtures" / "gitlab" / f"{stem}.json")[0]

    # Ten assignee objects, duplicates included, are three people.
    ten = parsed("issue_created_with_ten_assignees").issue
    assert ten is not None
    assert ten.assignees == {"adambirds", "eeshangarg", "timabbott"}
    null_description = parsed("issue_hook__issue_opened_with_null_description").issue
    assert null_description is not None and null_description.body == ""
    closed = parsed("confidential_issue_hook__issue_closed")
    assert closed.event == "Confidential Issue Hook"
    assert closed.issue is not None and closed.issue.state is IssueState.CLOSED
    incident = parsed("issue_hook__incident_created_with_assignee").issue
    assert incident is not None and incident.assignees == {"sathwikshetty33"}
    epic = parsed("issue_hook__epic_updated")
    assert epic.repository is None and "group-level" in epic.reason
    task = parsed("issue_hook__task_updated")
    assert task.kind is EventKind.IGNORED and "Task" in task.reason
    ping = parsed("test_hook__issue_test_payload")
    assert ping.kind is EventKind.IGNORED and "ping" in ping.reason
    note = parsed("note_hook__issue_note")
    assert note.comment is not None and note.comment.body == "This is again a random comment."
    assert note.comment.created_at is not None and note.comment.created_at.year == 2023
    old_update = parsed("issue_hook__issue_updated")
    assert (old_update.issue, old_update.issue_number) == (None, "1")
    assert "label list" in old_update.reason


# --- our own fixtures -----------------------------------------------------------------------

OWN_EXPECTED: dict[str, tuple[EventKind, str]] = {
    "issue_hook__issue_labeled": (ISSUE, "update"),
    "issue_hook__issue_milestoned": (ISSUE, "update"),
    "issue_hook__issue_assigned_by_id_only": (ISSUE, "update"),
    "issue_hook__issue_closed_with_everything": (ISSUE, "close"),
    "issue_hook__issue_deleted": (EventKind.ISSUE_DELETED, "delete"),
    "issue_hook__ping_without_action": (IGNORED, ""),
    "issue_hook__task_as_issue_kind": (IGNORED, "update"),
    "note_hook__issue_note_unicode": (COMMENT, "create"),
    "note_hook__system_note": (IGNORED, "create"),
    "note_hook__merge_request_note": (IGNORED, "create"),
    "merge_request_hook__opened": (IGNORED, "open"),
    "push_hook__branch_push": (IGNORED, ""),
}


def test_every_own_fixture_has_an_expectation() -> None:
    assert {p.stem for p in OWN_FIXTURES} == set(OWN_EXPECTED)


@pytest.mark.parametrize("path", OWN_FIXTURES, ids=lambda p: p.stem)
def test_own_fixture_parses_to_the_expected_kind_and_action(path: Path) -> None:
    event, _, _ = deliver(path)
    assert (event.kind, event.action) == OWN_EXPECTED[path.stem]
    assert event.repository == "acme/platform/widgets"


def own(stem: str) -> WebhookEvent:
    return deliver(LOCAL_FIXTURES / "gitlab" / f"{stem}.json")[0]


def test_labeled_issue_carries_full_label_and_assignee_sets_in_unicode() -> None:
    issue = own("issue_hook__issue_labeled").issue
    assert issue is not None
    assert issue.labels == {"bug", "für später"}
    assert issue.assignees == {"alice", "bob"}
    assert issue.title == "Crash when the widget name contains ümlauts ✨"
    assert issue.milestone is None
    assert issue.number == "17" and issue.external_id == "9001"


def test_closed_issue_state_comes_from_the_payload_not_the_action() -> None:
    issue = own("issue_hook__issue_closed_with_everything").issue
    assert issue is not None
    assert issue.state is IssueState.CLOSED
    assert issue.assignees == {"bob"}


def test_milestone_given_only_by_id_names_the_issue_for_a_re_read() -> None:
    event = own("issue_hook__issue_milestoned")
    assert event.kind is EventKind.ISSUE and event.issue is None
    assert (event.issue_number, event.issue_external_id) == ("17", "9001")
    assert "milestone" in event.reason


def test_assignees_given_only_by_id_are_never_cleared() -> None:
    event = own("issue_hook__issue_assigned_by_id_only")
    assert event.issue is None
    assert "assignee" in event.reason and event.issue_number == "17"


def test_deleted_issue_is_an_issue_deleted_event_with_ids() -> None:
    event = own("issue_hook__issue_deleted")
    assert event.kind is EventKind.ISSUE_DELETED
    assert (event.issue_external_id, event.issue_number) == ("9001", "17")


def test_comment_keeps_its_unicode_body_and_author() -> None:
    event = own("note_hook__issue_note_unicode")
    assert event.comment is not None
    assert event.comment.body == "Reproduced on main — 日本語 too."
    assert event.comment.author == "bob"
    assert (event.issue_number, event.issue_external_id) == ("17", "9001")


def test_comments_on_merge_requests_and_system_notes_are_ignored_with_reasons() -> None:
    assert "merge request" in own("note_hook__merge_request_note").reason
    assert "system note" in own("note_hook__system_note").reason
    assert "merge request" in own("merge_request_hook__opened").reason


# --- verify: X-Gitlab-Token is the secret itself ---------------------------------------------


@pytest.fixture(params=[*_shared_params()[:1], pytest.param(None, id="own")])
def fixture_file(request: pytest.FixtureRequest) -> Path:
    if request.param is None:
        return LOCAL_FIXTURES / "gitlab" / "issue_hook__issue_labeled.json"
    path: Path = request.param
    return path


def test_verify_accepts_the_token_sent_with_the_exact_file_bytes(fixture_file: Path) -> None:
    body = fixture_file.read_bytes()
    headers = {"X-Gitlab-Token": gitlab_token(SECRET, body)}
    assert WEBHOOKS.verify(secret=SECRET, body=body, headers=headers, url="") is True


def test_verify_rejects_the_token_of_another_secret(fixture_file: Path) -> None:
    body = fixture_file.read_bytes()
    headers = {"X-Gitlab-Token": gitlab_token("another-secret", body)}
    assert WEBHOOKS.verify(secret=SECRET, body=body, headers=headers, url="") is False


def test_token_does_not_bind_the_body(fixture_file: Path) -> None:
    # GitLab authenticates the sender, not the bytes: a token sent with another body is
    # the same token, and it verifies. (Integrity rests on TLS for GitLab.)
    other_body = b'{"object_kind": "push"}'
    headers = {"X-Gitlab-Token": gitlab_token(SECRET, other_body)}
    body = fixture_file.read_bytes()
    assert WEBHOOKS.verify(secret=SECRET, body=body, headers=headers, url="") is True


def test_verify_rejects_a_missing_header(fixture_file: Path) -> None:
    body = fixture_file.read_bytes()
    assert WEBHOOKS.verify(secret=SECRET, body=body, headers={}, url="") is False


def test_verify_rejects_everything_when_the_secret_is_empty(fixture_file: Path) -> None:
    body = fixture_file.read_bytes()
    for token in ("", "anything"):
        headers = {"X-Gitlab-Token": token}
        assert WEBHOOKS.verify(secret="", body=body, headers=headers, url="") is False


@pytest.mark.parametrize(
    "token",
    [SECRET + " ", " " + SECRET, SECRET.upper(), SECRET[:-1], "", "s3cr3t-gitlab-tokën", "\udcff"],
)
def test_verify_rejects_near_misses_without_raising(token: str) -> None:
    assert WEBHOOKS.verify(
        secret=SECRET, body=b"{}", headers={"X-Gitlab-Token": token}, url=""
    ) is (False)


def test_verify_finds_the_header_whatever_its_case() -> None:
    headers = {"x-gitlab-token": SECRET}
    assert WEBHOOKS.verify(secret=SECRET, body=b"{}", headers=headers, url="") is True


def test_verify_accepts_a_non_ascii_secret() -> None:
    headers = {"X-Gitlab-Token": "geheimnis-ß✓"}
    assert WEBHOOKS.verify(secret="geheimnis-ß✓", body=b"{}", headers=headers, url="") is True


# --- event names, known events, delivery ids ------------------------------------------------


def test_event_name_comes_from_the_header_first() -> None:
    headers = {"X-Gitlab-Event": "Confidential Note Hook"}
    assert WEBHOOKS.event_name(headers=headers, payload={"object_kind": "issue"}) == (
        "Confidential Note Hook"
    )


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"object_kind": "issue", "event_type": "issue"}, "Issue Hook"),
        ({"object_kind": "issue", "event_type": "confidential_issue"}, "Confidential Issue Hook"),
        ({"object_kind": "work_item", "event_type": "work_item"}, "Issue Hook"),
        (
            {"object_kind": "work_item", "event_type": "confidential_work_item"},
            "Confidential Issue Hook",
        ),
        ({"object_kind": "note", "event_type": "confidential_note"}, "Confidential Note Hook"),
        ({"object_kind": "note"}, "Note Hook"),
        ({"object_kind": "merge_request"}, "Merge Request Hook"),
        ({"object_kind": "push"}, "Push Hook"),
        ({"object_kind": "build"}, "Job Hook"),
        ({"object_kind": "something_new"}, ""),
        ({"object_kind": ["issue"]}, ""),
        ({}, ""),
        (None, ""),
    ],
)
def test_event_name_falls_back_to_the_body_without_the_header(
    payload: dict[str, Any] | None, expected: str
) -> None:
    assert WEBHOOKS.event_name(headers={}, payload=payload) == expected


@pytest.mark.parametrize(
    "event",
    [
        "Issue Hook",
        "Confidential Issue Hook",
        "Note Hook",
        "Confidential Note Hook",
        "Push Hook",
        "Tag Push Hook",
        "Merge Request Hook",
        "Pipeline Hook",
        "Job Hook",
        "Wiki Page Hook",
        "Release Hook",
        "System Hook",
    ],
)
def test_events_gitlab_sends_are_known(event: str) -> None:
    assert WEBHOOKS.is_known_event(event)


@pytest.mark.parametrize("event", ["", "issue", "issues", "Issue", "issue hook", "Ping Hook"])
def test_names_gitlab_never_sends_are_unknown(event: str) -> None:
    assert not WEBHOOKS.is_known_event(event)


def test_delivery_id_prefers_the_idempotency_key_kept_on_retries() -> None:
    first = {"Idempotency-Key": "key-1", "X-Gitlab-Event-UUID": "uuid-1"}
    retry = {"Idempotency-Key": "key-1", "X-Gitlab-Event-UUID": "uuid-2"}
    assert WEBHOOKS.delivery_id(headers=first, body=b"{}") == "key-1"
    assert WEBHOOKS.delivery_id(headers=retry, body=b"{}") == "key-1"


def test_delivery_id_falls_back_to_event_uuid_then_body_hash() -> None:
    assert WEBHOOKS.delivery_id(headers={"X-Gitlab-Event-UUID": "uuid-9"}, body=b"x") == "uuid-9"
    body = b'{"object_kind":"issue"}'
    assert WEBHOOKS.delivery_id(headers={}, body=body) == hashlib.sha256(body).hexdigest()
    assert WEBHOOKS.delivery_id(headers={"Idempotency-Key": "  "}, body=body) == (
        hashlib.sha256(body).hexdigest()
    )


# --- events that are not issues ---------------------------------------------------------------


@pytest.mark.parametrize("event", ["Push Hook", "Pipeline Hook", "Merge Request Hook", "Wat Hook"])
def test_non_issue_events_are_ignored_with_a_reason(event: str) -> None:
    payload = {"object_kind": "push", "project": {"path_with_namespace": "acme/widgets"}}
    parsed = WEBHOOKS.parse(event=event, payload=payload, base_url=BASE_URL)
    assert parsed.kind is EventKind.IGNORED
    assert parsed.reason
    assert parsed.repository == "acme/widgets"


def test_unknown_issue_action_is_ignored() -> None:
    payload = json.loads(
        (LOCAL_FIXTURES / "gitlab" / "issue_hook__issue_labeled.json").read_bytes()
    )
    payload["object_attributes"]["action"] = "teleport"
    event = WEBHOOKS.parse(event="Issue Hook", payload=payload, base_url=BASE_URL)
    assert event.kind is EventKind.IGNORED and "teleport" in event.reason


def test_missing_url_falls_back_to_the_issue_page_under_base_url() -> None:
    payload = json.loads(
        (LOCAL_FIXTURES / "gitlab" / "issue_hook__issue_labeled.json").read_bytes()
    )
    del payload["object_attributes"]["url"]
    event = WEBHOOKS.parse(event="Issue Hook", payload=payload, base_url=BASE_URL + "/")
    assert event.issue is not None
    assert event.issue.remote_url == f"{BASE_URL}/acme/platform/widgets/-/issues/17"


# --- hostile input ----------------------------------------------------------------------------


def labeled_payload() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (LOCAL_FIXTURES / "gitlab" / "issue_hook__issue_labeled.json").read_bytes()
    )
    return data


@pytest.mark.parametrize("payload", [[], "issue", 17, None, 1.5, True])
@pytest.mark.parametrize("event", ["Issue Hook", "Note Hook", "Push Hook"])
def test_a_body_that_is_not_an_object_is_a_payload_error(payload: Any, event: str) -> None:
    with pytest.raises(WebhookPayloadError):
        WEBHOOKS.parse(event=event, payload=payload, base_url=BASE_URL)


@pytest.mark.parametrize(
    "breakage",
    [
        lambda p: p.pop("object_attributes"),
        lambda p: p.__setitem__("object_attributes", None),
        lambda p: p.__setitem__("object_attributes", ["id", 1]),
        lambda p: p.pop("project"),
        lambda p: p.__setitem__("project", "acme/widgets"),
        lambda p: p["project"].pop("path_with_namespace"),
        lambda p: p.__setitem__("object_kind", "note"),
        lambda p: p.__setitem__("object_kind", None),
        lambda p: p["object_attributes"].__setitem__("iid", "17"),
        lambda p: p["object_attributes"].__setitem__("iid", True),
        lambda p: p["object_attributes"].pop("id"),
        lambda p: p["object_attributes"].__setitem__("title", 42),
        lambda p: p["object_attributes"].__setitem__("title", None),
        lambda p: p["object_attributes"].__setitem__("description", ["x"]),
        lambda p: p["object_attributes"].__setitem__("state", "locked"),
        lambda p: p["object_attributes"].__setitem__("state", None),
        lambda p: p["object_attributes"].__setitem__("action", 3),
        lambda p: p["object_attributes"].__setitem__("type", {"name": "Issue"}),
        lambda p: p["object_attributes"].__setitem__("milestone_id", "7"),
        lambda p: p.__setitem__("labels", {"title": "bug"}),
        lambda p: p.__setitem__("labels", [1, 2]),
        lambda p: p.__setitem__("labels", [{"name": "bug"}]),
        lambda p: p.__setitem__("assignees", "alice"),
        lambda p: p.__setitem__("assignees", [{"name": "Alice"}]),
        lambda p: p.__setitem__("assignees", [None]),
    ],
)
def test_issue_hook_of_a_wrong_shape_is_a_payload_error(breakage: Any) -> None:
    payload = labeled_payload()
    breakage(payload)
    with pytest.raises(WebhookPayloadError):
        WEBHOOKS.parse(event="Issue Hook", payload=payload, base_url=BASE_URL)


def note_payload() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (LOCAL_FIXTURES / "gitlab" / "note_hook__issue_note_unicode.json").read_bytes()
    )
    return data


@pytest.mark.parametrize(
    "breakage",
    [
        lambda p: p.pop("issue"),
        lambda p: p.__setitem__("issue", "17"),
        lambda p: p["issue"].pop("iid"),
        lambda p: p["object_attributes"].__setitem__("note", {"text": "hi"}),
        lambda p: p["object_attributes"].__setitem__("id", None),
        lambda p: p["object_attributes"].__setitem__("noteable_type", 5),
        lambda p: p.__setitem__("user", "bob"),
        lambda p: p.__setitem__("object_kind", "issue"),
    ],
)
def test_note_hook_of_a_wrong_shape_is_a_payload_error(breakage: Any) -> None:
    payload = note_payload()
    breakage(payload)
    with pytest.raises(WebhookPayloadError):
        WEBHOOKS.parse(event="Note Hook", payload=payload, base_url=BASE_URL)


def test_a_huge_label_list_is_parsed_whole() -> None:
    payload = labeled_payload()
    payload["labels"] = [{"title": f"label-{n}-ß"} for n in range(20_000)]
    event = WEBHOOKS.parse(event="Issue Hook", payload=payload, base_url=BASE_URL)
    assert event.issue is not None and len(event.issue.labels) == 20_000


def test_unicode_and_control_characters_survive_parsing() -> None:
    payload = labeled_payload()
    payload["object_attributes"]["title"] = "\u202etxt.exe 🐛 \x00 ünïcödé"
    payload["labels"] = [{"title": "優先度:高"}, {"title": "emoji 🚀"}]
    payload["assignees"] = [{"username": "jürgen"}]
    event = WEBHOOKS.parse(event="Issue Hook", payload=payload, base_url=BASE_URL)
    assert event.issue is not None
    assert event.issue.title == "\u202etxt.exe 🐛 \x00 ünïcödé"
    assert event.issue.labels == {"優先度:高", "emoji 🚀"}
    assert event.issue.assignees == {"jürgen"}


# Keys a GitLab hook really has, so random objects reach past the first shape check.
PAYLOAD_KEYS = [
    "object_kind",
    "event_type",
    "project",
    "object_attributes",
    "labels",
    "user",
    "assignees",
    "issue",
    "changes",
]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_paths(child, (*prefix, index)))
    return found


ALL_PAYLOAD_TEXTS = [p.read_text("utf-8") for p in [*OWN_FIXTURES, *shared_fixture_paths("gitlab")]]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), replacement=JSON_VALUES)
def test_any_value_anywhere_gives_an_event_or_a_payload_error(
    data: st.DataObject, replacement: Any
) -> None:
    payload = json.loads(data.draw(st.sampled_from(ALL_PAYLOAD_TEXTS)))
    path = data.draw(st.sampled_from(_paths(payload)))
    target = payload
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = replacement
    event_name = data.draw(st.sampled_from(sorted(KNOWN_EVENTS)))
    try:
        event = WEBHOOKS.parse(event=event_name, payload=payload, base_url=BASE_URL)
    except WebhookPayloadError:
        return
    assert isinstance(event, WebhookEvent)
    if event.kind is EventKind.ISSUE and event.issue is not None:
        assert all(isinstance(label, str) for label in event.issue.labels)
        assert all(isinstance(login, str) for login in event.issue.assignees)


@settings(max_examples=100, deadline=None)
@given(
    payload=st.dictionaries(
        st.sampled_from(PAYLOAD_KEYS) | st.text(max_size=8), JSON_VALUES, max_size=6
    )
)
def test_random_objects_give_an_event_or_a_payload_error(payload: dict[str, Any]) -> None:
    for event_name in ("Issue Hook", "Note Hook", "Confidential Issue Hook", "Push Hook"):
        try:
            event = WEBHOOKS.parse(event=event_name, payload=payload, base_url=BASE_URL)
        except WebhookPayloadError:
            continue
        assert isinstance(event, WebhookEvent)

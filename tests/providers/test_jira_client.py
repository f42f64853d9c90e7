"""JiraClient against the fake Jira on loopback: JQL listing and paging, basic auth, one-PUT
edits with label verbs, fix versions by name, transitions (and a workflow without a direct
path), ADF bodies, the create marker as an issue property, 429s and signed webhooks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from integrations.fake_trackers.base import Fault
from integrations.fake_trackers.jira import FakeJira
from integrations.providers.base import (
    UNSET,
    AuthenticationError,
    EventKind,
    IssueFields,
    IssueState,
    NotFoundError,
    RateLimitedError,
    ValidationFailedError,
)
from integrations.providers.jira import JiraClient, JiraWebhooks

SECRET = "hook-secret"


@pytest.fixture
def fake() -> Iterator[FakeJira]:
    with FakeJira(webhook_secret=SECRET) as tracker:
        yield tracker


def make_client(fake: FakeJira, **config: Any) -> JiraClient:
    return JiraClient(
        base_url=fake.url,
        repository=fake.key,
        token=fake.token,
        timeout=2.0,
        backoff_factor=0.01,
        config={"email": fake.email, **config},
    )


@pytest.fixture
def client(fake: FakeJira) -> Iterator[JiraClient]:
    made = make_client(fake)
    yield made
    made.close()


def key(fake: FakeJira, number: int) -> str:
    return f"{fake.key}-{number}"


# --- reading ------------------------------------------------------------------------------------


def test_an_issue_maps_as_spec_section_3_says(fake: FakeJira, client: JiraClient):
    seeded = fake.seed_issue(
        title="Summary",
        body="first\n\nsecond",
        labels=["bug", "ui"],
        assignees=["alice"],
        milestone="v2",
    )
    issue = client.get_issue(key(fake, seeded.number))
    assert (issue.number, issue.external_id) == (key(fake, seeded.number), str(seeded.id))
    assert (issue.title, issue.body, issue.state, issue.tracker_status) == (
        "Summary",
        "first\n\nsecond",
        IssueState.OPEN,
        "To Do",
    )
    assert (issue.labels, issue.assignees, issue.milestone) == (
        frozenset({"bug", "ui"}),
        frozenset({"alice"}),
        "v2",
    )
    assert issue.remote_url == f"{fake.url}/browse/{fake.key}-{seeded.number}"
    assert issue.updated_at == seeded.updated_at


def test_in_progress_is_open_and_done_is_closed(fake: FakeJira, client: JiraClient):
    busy = fake.seed_issue(title="a", status="In Progress")
    done = fake.seed_issue(title="b", status="Done")
    assert client.get_issue(key(fake, busy.number)).state == IssueState.OPEN
    assert client.get_issue(key(fake, done.number)).state == IssueState.CLOSED


def test_basic_auth_needs_the_accounts_email(fake: FakeJira):
    wrong = JiraClient(
        base_url=fake.url, repository=fake.key, token=fake.token, config={"email": "x@y.z"}
    )
    with pytest.raises(AuthenticationError):
        wrong.check_access()
    no_email = JiraClient(base_url=fake.url, repository=fake.key, token=fake.token)
    fake.reset_requests()
    with pytest.raises(AuthenticationError, match=r"config_json\.email"):
        no_email.get_issue(f"{fake.key}-1")
    assert fake.requests == []  # nothing is sent without the account's e-mail


def test_check_access_names_a_missing_project(fake: FakeJira):
    other = JiraClient(
        base_url=fake.url, repository="NOPE", token=fake.token, config={"email": fake.email}
    )
    with pytest.raises(NotFoundError, match="NOPE not found"):
        other.check_access()


@pytest.mark.parametrize("number", ["abc", "0", "-1", "٣", "PROJ-0", "PROJ-", "4242"])
def test_a_string_that_names_no_issue_is_not_found(client: JiraClient, number: str):
    with pytest.raises(NotFoundError):
        client.get_issue(number)


def test_a_listing_pages_by_next_page_token_at_the_largest_page(fake: FakeJira, client: JiraClient):
    for n in range(230):
        fake.seed_issue(title=f"issue {n}")
    fake.reset_requests()

    result = client.list_issues()

    searches = [r for r in fake.requests if r.path.endswith("/search/jql")]
    assert len(searches) == 3 and result.requests == 3
    assert {r.query["maxResults"][0] for r in searches} == {"100"}
    assert "nextPageToken" not in searches[0].query and "nextPageToken" in searches[2].query
    assert len(result.issues) == 230 and result.etag is None
    stamps = [i.updated_at for i in result.issues if i.updated_at is not None]
    assert len(stamps) == 230 and stamps == sorted(stamps)


def test_the_jql_cursor_is_in_the_users_time_zone_with_more_than_a_minute_of_overlap(
    fake: FakeJira, client: JiraClient
):
    """The fake reads JQL dates in America/New_York: a cursor written in UTC would skip five
    hours of edits; one floored to the minute without overlap would skip the last seconds."""
    old = fake.seed_issue(title="old")
    fake.advance_clock(600)
    cursor = fake.now()
    # Edited 61 s before the cursor: a cursor only floored to JQL's minute would miss it.
    fake.seed_issue(title="just before", updated_at=cursor - timedelta(seconds=61))
    fake.advance_clock(300)
    fake.seed_issue(title="after")

    result = client.list_issues(since=cursor)

    jql = next(r for r in fake.requests if r.path.endswith("/search/jql")).query["jql"][0]
    local = (cursor - timedelta(minutes=2)).astimezone(ZoneInfo(fake.time_zone))
    assert f'updated >= "{local:%Y-%m-%d %H:%M}"' in jql and jql.endswith("ORDER BY updated ASC")
    titles = {i.title for i in result.issues}
    assert {"just before", "after"} <= titles and old.title not in titles


def test_the_overlap_and_a_shifting_listing_repeat_no_issue(fake: FakeJira, client: JiraClient):
    for n in range(150):
        fake.seed_issue(title=f"issue {n}")
    # An edit between page 1 and page 2 moves issue 1 to the end: it is listed twice.
    original = fake._search

    def shifting(record: Any, data: Any) -> Any:
        answer = original(record, data)
        if "nextPageToken" not in record.query:
            fake.edit_issue(1, notify=False, title="moved")
        return answer

    fake._routes = [
        (m, p, (fake._jira_errors(shifting) if p.pattern.endswith("/search/jql") else v))
        for m, p, v in fake._routes
    ]
    result = client.list_issues()
    # Page 2 lists issue 1 again (newer): one copy, the newer one. (Another issue slid back
    # across the page boundary and was not listed: "not listed" is never "deleted"; the
    # engine confirms an absence with a GET.)
    ids = [i.external_id for i in result.issues]
    assert len(ids) == len(set(ids))
    assert next(i for i in result.issues if i.number == f"{fake.key}-1").title == "moved"


# --- writing ------------------------------------------------------------------------------------


def test_an_update_is_one_put_with_label_verbs_and_returns_the_state_after_it(
    fake: FakeJira, client: JiraClient
):
    seeded = fake.seed_issue(title="t", labels=["bug", "old"], assignees=["alice"], milestone="v1")
    current = client.get_issue(key(fake, seeded.number))
    fake.reset_requests()

    result = client.update_issue(
        current.number,
        IssueFields(
            title="t2",
            body="line 1\nline 2\n\npara",
            labels=frozenset({"bug", "new"}),
            assignees=frozenset({"bob"}),
            milestone="v2",
        ),
        current=current,
    )

    puts = [r for r in fake.requests if r.method == "PUT"]
    assert len(puts) == 1
    sent = json.loads(puts[0].body)
    assert sent["update"] == {"labels": [{"add": "new"}, {"remove": "old"}]}
    assert sent["fields"]["assignee"] == {"accountId": "bob"}
    assert sent["fields"]["fixVersions"] == [{"id": fake.version_id("v2")}]
    assert sent["fields"]["description"]["type"] == "doc"
    assert (result.title, result.body, result.labels, result.assignees, result.milestone) == (
        "t2",
        "line 1\nline 2\n\npara",
        frozenset({"bug", "new"}),
        frozenset({"bob"}),
        "v2",
    )
    # The project's versions (once per client, for the fix version's id), the PUT, one GET.
    assert [(r.method, r.path.split("/")[4]) for r in fake.requests] == [
        ("GET", "project"),
        ("PUT", "issue"),
        ("GET", "issue"),
    ]


def test_clearing_assignee_and_fix_version(fake: FakeJira, client: JiraClient):
    seeded = fake.seed_issue(title="t", assignees=["alice"], milestone="v1")
    current = client.get_issue(key(fake, seeded.number))
    result = client.update_issue(
        current.number, IssueFields(assignees=frozenset(), milestone=None), current=current
    )
    assert (result.assignees, result.milestone) == (frozenset(), None)
    assert (fake.issues[seeded.number].assignees, fake.issues[seeded.number].milestone) == (
        [],
        None,
    )
    untouched = client.update_issue(current.number, IssueFields(milestone=UNSET), current=result)
    assert untouched == result


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (IssueFields(milestone="v9"), "milestone"),
        (IssueFields(assignees=frozenset({"alice", "bob"})), "assignees"),
        (IssueFields(assignees=frozenset({"stranger"})), "assignees"),
        (IssueFields(labels=frozenset({"two words"})), "labels"),
    ],
    ids=["unknown-version", "two-assignees", "unknown-account", "label-with-space"],
)
def test_a_value_jira_cannot_hold_is_refused_naming_its_field(
    fake: FakeJira, client: JiraClient, fields: IssueFields, field: str
):
    seeded = fake.seed_issue(title="t")
    current = client.get_issue(key(fake, seeded.number))
    with pytest.raises(ValidationFailedError) as caught:
        client.update_issue(current.number, fields, current=current)
    assert caught.value.field == field


def test_the_tracker_refusal_names_the_field_from_jiras_error_body(
    fake: FakeJira, client: JiraClient
):
    """Unknown accountIds are only known to Jira: its 400 `errors.assignee` names the field."""
    seeded = fake.seed_issue(title="t")
    current = client.get_issue(key(fake, seeded.number))
    fake.reset_requests()
    with pytest.raises(ValidationFailedError) as caught:
        client.update_issue(
            current.number, IssueFields(assignees=frozenset({"ghost"})), current=current
        )
    assert [r.method for r in fake.requests] == ["PUT"] and caught.value.status == 400


def test_create_stores_the_marker_as_a_hidden_issue_property(fake: FakeJira, client: JiraClient):
    created = client.create_issue(
        IssueFields(title="new", body="text\n\nmore", labels=frozenset({"bug"}), milestone="v1"),
        marker="7.42",
    )
    number = int(created.number.rsplit("-", 1)[1])
    assert (created.body, created.marker, created.milestone) == ("text\n\nmore", "7.42", "v1")
    assert fake.issues[number].body == "text\n\nmore"  # the marker is not in the text
    assert fake.properties[number] == {"syndarix": {"create": "7.42"}}
    assert client.find_by_marker("7.42", since=datetime.now(UTC) - timedelta(minutes=5)) == created
    assert client.find_by_marker("other") is None


def test_create_closed_runs_the_close_transition(fake: FakeJira, client: JiraClient):
    created = client.create_issue(IssueFields(title="done already", state=IssueState.CLOSED))
    assert (created.state, created.tracker_status) == (IssueState.CLOSED, "Done")


# --- transitions --------------------------------------------------------------------------------


def test_close_and_reopen_run_the_transition_to_a_done_and_a_new_status(
    fake: FakeJira, client: JiraClient
):
    seeded = fake.seed_issue(title="t", status="In Progress")
    current = client.get_issue(key(fake, seeded.number))
    closed = client.update_issue(
        current.number, IssueFields(state=IssueState.CLOSED), current=current
    )
    assert (closed.state, closed.tracker_status) == (IssueState.CLOSED, "Done")
    reopened = client.update_issue(
        current.number, IssueFields(state=IssueState.OPEN), current=closed
    )
    assert (reopened.state, reopened.tracker_status) == (IssueState.OPEN, "To Do")


def test_reopening_an_open_issue_in_progress_changes_nothing(fake: FakeJira, client: JiraClient):
    seeded = fake.seed_issue(title="t", status="In Progress")
    current = client.get_issue(key(fake, seeded.number))
    fake.reset_requests()
    assert (
        client.update_issue(current.number, IssueFields(state=IssueState.OPEN), current=current)
        == current
    )
    assert fake.requests == []


def test_a_workflow_without_a_direct_path_is_refused_once_never_walked(
    fake: FakeJira, client: JiraClient
):
    seeded = fake.seed_issue(title="t", status="In Review")
    current = client.get_issue(key(fake, seeded.number))
    fake.reset_requests()

    with pytest.raises(
        ValidationFailedError, match="no transition to a status of category 'done'"
    ) as caught:
        client.update_issue(current.number, IssueFields(state=IssueState.CLOSED), current=current)

    assert caught.value.permanent and caught.value.field == "state"
    assert "In Review" in str(caught.value) and "close_transition" in str(caught.value)
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in fake.requests] == [
        ("GET", "transitions")
    ]
    assert fake.statuses[seeded.number] == "In Review"


def test_a_configured_transition_name_is_used(fake: FakeJira):
    named = make_client(fake, reopen_transition="stop progress", close_transition="Resolve")
    seeded = fake.seed_issue(title="t", status="In Progress")
    current = named.get_issue(key(fake, seeded.number))
    # "Stop progress" leads to To Do, which is open already: reopening an open issue is a no-op,
    # so go via close (Resolve) and then check a name that does not exist from Done.
    closed = named.update_issue(
        current.number, IssueFields(state=IssueState.CLOSED), current=current
    )
    assert closed.tracker_status == "Done"
    with pytest.raises(ValidationFailedError, match="named 'stop progress'"):
        named.update_issue(current.number, IssueFields(state=IssueState.OPEN), current=closed)


# --- rate limits --------------------------------------------------------------------------------


def test_a_429_is_rate_limited_with_its_retry_after(fake: FakeJira, client: JiraClient):
    seeded = fake.seed_issue(title="t")
    fake.inject(Fault(status=429, retry_after=42, path_contains="/issue/"))
    with pytest.raises(RateLimitedError) as caught:
        client.get_issue(key(fake, seeded.number))
    assert caught.value.retry_after == pytest.approx(42, abs=1)


# --- webhooks -----------------------------------------------------------------------------------


def test_the_fakes_signed_webhooks_verify_and_name_the_issue(fake: FakeJira):
    received: list[Any] = []
    fake.webhook_sink = received.append
    seeded = fake.seed_issue(title="t", notify=True)
    fake.edit_issue(seeded.number, title="t2")
    fake.delete_issue(seeded.number)
    fake.drain_webhooks()
    verifier = JiraWebhooks()
    parsed = []
    for hook in received:
        assert verifier.verify(secret=SECRET, body=hook.body, headers=hook.headers, url="")
        payload = json.loads(hook.body)
        event = verifier.event_name(headers=hook.headers, payload=payload)
        parsed.append(verifier.parse(event=event, payload=payload, base_url=fake.url))
    assert [(p.kind, p.issue_number, p.repository) for p in parsed] == [
        (EventKind.ISSUE, f"{fake.key}-{seeded.number}", fake.key),
        (EventKind.ISSUE, f"{fake.key}-{seeded.number}", fake.key),
        (EventKind.ISSUE_DELETED, f"{fake.key}-{seeded.number}", fake.key),
    ]
    assert {p.issue_external_id for p in parsed} == {str(seeded.id)}

"""RedmineClient against FakeRedmine: what is Redmine's own (the conformance suite covers the
contract). The same behaviours are proven against a real Redmine in tests/redmine/."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from integrations.fake_trackers.redmine import FakeRedmine
from integrations.providers.base import IssueFields, IssueState, ValidationFailedError
from integrations.providers.redmine import RedmineClient


@pytest.fixture
def fake() -> Iterator[FakeRedmine]:
    tracker = FakeRedmine()
    tracker.start()
    yield tracker
    tracker.stop()


def make(fake: FakeRedmine, **config: Any) -> RedmineClient:
    return RedmineClient(
        base_url=fake.url,
        repository=fake.repository,
        token=fake.token,
        timeout=2.0,
        backoff_factor=0.01,
        config=config or None,
    )


@pytest.fixture
def client(fake: FakeRedmine) -> Iterator[RedmineClient]:
    made = make(fake)
    yield made
    made.close()


def calls(fake: FakeRedmine) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests]


def listings(fake: FakeRedmine) -> list[Any]:
    return [r for r in fake.requests if r.path.startswith("/issues.json")]


def test_a_listing_reads_open_and_closed_issues_oldest_change_first_100_a_request(
    fake: FakeRedmine, client: RedmineClient
):
    fake.seed(230)
    fake.edit_issue(3, state="closed")
    fake.reset_requests()

    result = client.list_issues()

    # Three listing requests, plus one read per distinct assignee (for the login).
    assert len(result.issues) == 230 and len(listings(fake)) == 3
    assert result.requests == 3 + len({login for i in result.issues for login in i.assignees})
    closed = next(i for i in result.issues if i.number == "3")
    assert (closed.state, closed.tracker_status) == (IssueState.CLOSED, "Closed")
    stamps = [i.updated_at for i in result.issues]
    assert stamps == sorted(stamps)  # oldest change first
    assert [r.query["offset"] for r in listings(fake)] == [["0"], ["100"], ["200"]]
    first = listings(fake)[0].query
    assert (first["status_id"], first["sort"], first["limit"]) == (
        ["*"],
        ["updated_on,id"],
        ["100"],
    )
    assert result.etag is None  # three pages: no ETag kept


def test_an_incremental_listing_overlaps_the_cursor_and_a_304_reads_nothing(
    fake: FakeRedmine, client: RedmineClient
):
    fake.seed(3)
    since = datetime(2026, 12, 7, 4, 0, 10, tzinfo=UTC)

    first = client.list_issues(since=since)

    assert listings(fake)[-1].query["updated_on"] == [">=2026-12-07T04:00:09Z"]
    assert first.etag and len(first.issues) == 3
    # Thin sends no Date header: the clock is the newest updated_on read.
    assert first.server_time == max(i.updated_at for i in first.issues if i.updated_at)
    again = client.list_issues(since=since, etag=first.etag)
    assert again.not_modified and again.issues == []


def test_an_issue_read_maps_onto_the_canonical_issue(fake: FakeRedmine, client: RedmineClient):
    seeded = fake.seed_issue(
        title="t", body="a\nb", labels=["docs", "bug"], assignees=["bob"], milestone="v1"
    )
    fake.edit_issue(seeded.number, status="In Progress")

    issue = client.get_issue(str(seeded.number))

    assert "\r\n" in fake.issues[seeded.number].body  # Redmine keeps CRLF; we read LF
    assert (issue.body, issue.labels, issue.assignees, issue.milestone) == (
        "a\nb",
        frozenset({"bug", "docs"}),
        frozenset({"bob"}),
        "v1",
    )
    assert (issue.state, issue.tracker_status) == (IssueState.OPEN, "In Progress")
    assert issue.remote_url == f"{fake.url}/issues/{seeded.number}"


def test_a_write_that_changes_nothing_sends_nothing(fake: FakeRedmine, client: RedmineClient):
    """Every PUT bumps updated_on, even an empty one: an echo loop would follow."""
    seeded = fake.seed_issue(title="t", body="a\nb", labels=["bug", "docs"], assignees=["bob"])
    current = client.get_issue(str(seeded.number))
    fake.reset_requests()

    result = client.update_issue(
        str(seeded.number),
        IssueFields(
            title="t",
            body="a\r\nb",
            state=IssueState.OPEN,
            labels=frozenset({"docs", "bug"}),
            assignees=frozenset({"bob"}),
            milestone=None,
        ),
        current=current,
    )

    assert fake.requests == [] and result == current


def test_a_status_the_workflow_forbids_is_a_permanent_error_naming_state(
    fake: FakeRedmine, client: RedmineClient
):
    """Redmine answers 204 and keeps the old status: the read-back tells, once."""
    seeded = fake.seed_issue(title="t")
    fake.forbidden_status_ids.add(5)  # Closed
    current = client.get_issue(str(seeded.number))
    fake.reset_requests()

    with pytest.raises(ValidationFailedError) as caught:
        client.update_issue(
            str(seeded.number), IssueFields(state=IssueState.CLOSED), current=current
        )

    assert caught.value.field == "state" and caught.value.permanent
    assert "'New' instead of 'Closed'" in str(caught.value)
    assert [m for m, _ in calls(fake) if m in ("PUT", "GET")][-2:] == ["PUT", "GET"]
    assert fake.count_requests("PUT") == 1


def test_close_and_reopen_use_the_configured_statuses(fake: FakeRedmine):
    client = make(fake, closed_status="Rejected", open_status="In Progress")
    seeded = fake.seed_issue(title="t")

    closed = client.update_issue(str(seeded.number), IssueFields(state=IssueState.CLOSED))
    reopened = client.update_issue(
        str(seeded.number), IssueFields(state=IssueState.OPEN), current=closed
    )

    assert (closed.state, closed.tracker_status) == (IssueState.CLOSED, "Rejected")
    assert (reopened.state, reopened.tracker_status) == (IssueState.OPEN, "In Progress")
    client.close()


def test_a_configured_status_of_the_wrong_kind_is_refused_before_any_write(fake: FakeRedmine):
    client = make(fake, closed_status="Resolved")  # not a closed status in Redmine's defaults
    seeded = fake.seed_issue(title="t")
    with pytest.raises(ValidationFailedError, match="'Resolved' is not a closed status"):
        client.update_issue(str(seeded.number), IssueFields(state=IssueState.CLOSED))
    assert fake.count_requests("PUT") == 0
    client.close()


def test_a_create_sets_its_status_with_a_put_after_the_post(
    fake: FakeRedmine, client: RedmineClient
):
    created = client.create_issue(
        IssueFields(title="born closed", state=IssueState.CLOSED, labels=frozenset({"bug"}))
    )

    assert created.state is IssueState.CLOSED and created.labels == frozenset({"bug"})
    assert [m for m, _ in calls(fake) if m in ("POST", "PUT")] == ["POST", "PUT"]


def test_options_outside_the_schema_are_refused(fake: FakeRedmine):
    with pytest.raises(ValidationFailedError, match="email: unknown option"):
        make(fake, email="x@example.test")


def test_a_project_without_the_labels_field_has_no_labels_and_refuses_them(fake: FakeRedmine):
    client = make(fake, labels_field="Tags")
    seeded = fake.seed_issue(title="t", labels=["bug"])

    issue = client.get_issue(str(seeded.number))
    assert issue.labels == frozenset()
    with pytest.raises(ValidationFailedError) as caught:
        client.update_issue(str(seeded.number), IssueFields(labels=frozenset({"bug"})))
    assert caught.value.field == "labels"
    assert "no custom field 'Tags'" in str(caught.value)
    client.close()


@pytest.mark.parametrize(
    ("field", "value", "refused"),
    [
        ("assignees", frozenset({"eve"}), True),  # a user, but no project member
        ("assignees", frozenset({"alice"}), False),
        ("assignees", frozenset({"alice", "bob"}), True),
        ("labels", frozenset({"nope"}), True),
        ("labels", frozenset({"bug"}), False),
        ("milestone", "v9", True),
        ("milestone", "v1", False),
    ],
)
def test_refused_value_names_what_redmine_cannot_hold(
    fake: FakeRedmine, client: RedmineClient, field: str, value: Any, refused: bool
):
    fake.known_milestones.append("v1")
    fake.version_id("v1")
    assert (client.refused_value(field, value) is not None) is refused


def test_a_value_refused_by_redmine_itself_names_its_field():
    """Without an administrator's key the label values are unknown (custom_fields.json is
    an administrator's route): Redmine's own 422 refuses the value, naming the field."""
    fake = FakeRedmine(api_user="alice")
    fake.start()
    client = make(fake)
    try:
        seeded = fake.seed_issue(title="t")
        current = client.get_issue(str(seeded.number))
        assert client.refused_value("labels", frozenset({"nope"})) is None  # cannot tell
        with pytest.raises(ValidationFailedError) as caught:
            client.update_issue(
                str(seeded.number), IssueFields(labels=frozenset({"nope"})), current=current
            )
        assert caught.value.field == "labels" and caught.value.status == 422
    finally:
        client.close()
        fake.stop()


def test_find_by_marker_lists_only_since(fake: FakeRedmine, client: RedmineClient):
    created = client.create_issue(IssueFields(title="ours", body="text"), marker="m-1")
    found = client.find_by_marker("m-1", since=datetime.now(UTC) - timedelta(minutes=1))
    assert found is not None and (found.number, found.body) == (created.number, "text")

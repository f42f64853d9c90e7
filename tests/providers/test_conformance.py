"""The conformance suite: every provider client against its fake, one parametrized module.

Each test runs once per `Kit` in `tests.providers.kits.KITS`; a provider that passes all of
them behaves as the engine and the outbox rely on (the provider contract in
`integrations/providers/base.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from integrations.fake_trackers.base import Fault
from integrations.providers.base import (
    IssueFields,
    IssueState,
    MalformedAnswerError,
    NotFoundError,
    ProviderClient,
    RateLimitedError,
    TransientError,
    ValidationFailedError,
)
from tests.providers.kits import KITS, Kit


@pytest.fixture(params=KITS, ids=[k.provider for k in KITS])
def kit(request: pytest.FixtureRequest) -> Kit:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def fake(kit: Kit) -> Iterator[Any]:
    tracker = kit.make_fake()
    tracker.start()
    yield tracker
    tracker.stop()


@pytest.fixture
def client(kit: Kit, fake: Any) -> Iterator[ProviderClient]:
    made = kit.client(fake)
    yield made
    made.close()


def writes(fake: Any, method: str) -> int:
    return sum(1 for r in fake.requests if r.method == method and "/issues/" in r.path)


class RecordingGate:
    """A RateLimitGate kept in memory: what the DB-backed gate does, minus the database."""

    def __init__(self) -> None:
        self.paused_for = 0.0
        self.checks = 0

    def check(self) -> None:
        self.checks += 1
        if self.paused_for > 0:
            raise RateLimitedError("paused", retry_after=self.paused_for)

    def hold(self, seconds: float) -> None:
        self.paused_for = max(self.paused_for, seconds)


# --- transport: reads are retried, writes never blindly ---------------------------------------


def test_a_5xx_to_a_write_is_not_retried_by_the_transport(kit: Kit, fake: Any, client: Any):
    """Failed before (Gitea, GitLab, GitHub): urllib3 retried PATCH/PUT on 503, so a tracker
    edit landing between the two writes was overwritten (issue 12 #1)."""
    issue = fake.seed_issue(title="before")
    fake.inject(Fault(status=503, method=kit.update_method, retry_after=5))

    with pytest.raises(TransientError):
        client.update_issue(str(issue.number), IssueFields(title="ours"))

    assert writes(fake, kit.update_method) == 1
    assert fake.issues[issue.number].title == "before"


def test_a_5xx_to_a_read_is_retried(kit: Kit, fake: Any, client: Any):
    issue = fake.seed_issue(title="readable")
    fake.inject(Fault(status=503, method="GET", path_contains="/issues/"))

    assert client.get_issue(str(issue.number)).title == "readable"
    assert sum(1 for r in fake.requests if r.method == "GET") == 2


@pytest.mark.parametrize("path", ["/issues/", "/issues"], ids=["get", "list"])
def test_a_malformed_answer_is_the_same_error_on_every_provider(fake: Any, client: Any, path):
    """Failed before: PermanentError on Gitea (the outbox failed the row at once),
    TransientError on GitHub and GitLab (retried five times)."""
    issue = fake.seed_issue(title="t")
    # A 200 whose body is an object without any issue field.
    fake.inject(Fault(status=200, method="GET", path_contains=path, count=5))

    with pytest.raises(MalformedAnswerError):
        if path == "/issues/":
            client.get_issue(str(issue.number))
        else:
            client.list_issues()


# --- set writes: additions and removals --------------------------------------------------------


def test_a_label_the_tracker_gained_after_our_read_survives_our_write(fake: Any, client: Any):
    """Failed before: labels were written as the whole set read before, so a label added in
    the tracker between the read and the write was removed (issue 12 #2)."""
    issue = fake.seed_issue(title="t", labels=["bug"])
    current = client.get_issue(str(issue.number))
    fake.edit_issue(issue.number, notify=False, labels=["bug", "docs"])  # a human, meanwhile

    result = client.update_issue(
        str(issue.number), IssueFields(labels=frozenset({"feature"})), current=current
    )

    assert set(fake.issues[issue.number].labels) == {"docs", "feature"}
    assert result.labels == frozenset({"docs", "feature"})


def test_an_update_returns_the_trackers_state_after_its_last_call(fake: Any, client: Any):
    issue = fake.seed_issue(title="t", labels=["bug"], assignees=["alice"], milestone="v1")
    current = client.get_issue(str(issue.number))

    result = client.update_issue(
        str(issue.number),
        IssueFields(
            title="t2",
            body="b2",
            labels=frozenset({"docs"}),
            assignees=frozenset({"bob"}),
            milestone="v2",
        ),
        current=current,
    )

    again = client.get_issue(str(issue.number))
    assert (
        (result.title, result.body, result.labels, result.assignees, result.milestone)
        == (
            again.title,
            again.body,
            again.labels,
            again.assignees,
            again.milestone,
        )
        == ("t2", "b2", frozenset({"docs"}), frozenset({"bob"}), "v2")
    )


def test_an_update_with_current_does_not_read_first(fake: Any, client: Any):
    issue = fake.seed_issue(title="t")
    current = client.get_issue(str(issue.number))
    fake.reset_requests()

    client.update_issue(str(issue.number), IssueFields(title="t2"), current=current)

    assert [r.method for r in fake.requests if r.method == "GET"] == []


def test_close_and_reopen(fake: Any, client: Any):
    issue = fake.seed_issue(title="t")
    number = str(issue.number)
    closed = client.update_issue(number, IssueFields(state=IssueState.CLOSED))
    assert closed.state is IssueState.CLOSED and fake.issues[issue.number].state == "closed"
    reopened = client.update_issue(number, IssueFields(state=IssueState.OPEN), current=closed)
    assert reopened.state is IssueState.OPEN and fake.issues[issue.number].state == "open"


# --- create marker -----------------------------------------------------------------------------


def test_the_create_marker_is_kept_by_the_tracker_and_hidden_from_the_body(fake: Any, client: Any):
    created = client.create_issue(IssueFields(title="new", body="text"), marker="7.42")

    assert (created.body, created.marker) == ("text", "7.42")
    stored = fake.issues[int(created.number)].body
    assert stored.startswith("text") and "syndarix:create:7.42" in stored
    read = client.get_issue(created.number)
    assert (read.body, read.marker) == ("text", "7.42")
    edited = client.update_issue(created.number, IssueFields(body="edited"), current=read)
    assert (edited.body, edited.marker) == ("edited", "7.42")


def test_an_issue_whose_create_answer_was_lost_is_found_by_its_marker(fake: Any, client: Any):
    fake.seed_issue(title="someone else's")
    created = client.create_issue(IssueFields(title="ours"), marker="c-1")

    found = client.find_by_marker("c-1", since=datetime.now(UTC) - timedelta(minutes=5))

    assert found is not None and found.number == created.number
    assert client.find_by_marker("c-2") is None


# --- refused values name their field -----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (IssueFields(assignees=frozenset({"nobody-here"})), "assignees"),
        (IssueFields(milestone="no-such-milestone"), "milestone"),
        (IssueFields(labels=frozenset({"no-such-label"})), "labels"),
    ],
    ids=["assignee", "milestone", "label"],
)
def test_a_refused_value_names_its_field(fake: Any, client: Any, fields: IssueFields, field: str):
    issue = fake.seed_issue(title="t")
    current = client.get_issue(str(issue.number))

    with pytest.raises(ValidationFailedError) as caught:
        client.update_issue(str(issue.number), fields, current=current)

    assert caught.value.field == field


@pytest.mark.parametrize("number", ["abc", "0", "-1", "٣"])
def test_a_bad_issue_number_is_not_found_on_every_provider(client: Any, number: str):
    """Failed before on Gitea: ValidationFailedError where the others said NotFoundError."""
    with pytest.raises(NotFoundError):
        client.get_issue(number)


def test_a_missing_issue_is_not_found(client: Any):
    with pytest.raises(NotFoundError):
        client.get_issue("4242")


# --- rate limits and the gate ------------------------------------------------------------------


def test_a_429_holds_the_gate_and_a_paused_gate_sends_nothing(kit: Kit, fake: Any):
    gate = RecordingGate()
    client = kit.client(fake, gate=gate)
    issue = fake.seed_issue(title="t")
    fake.inject(Fault(status=429, retry_after=120))
    try:
        with pytest.raises(RateLimitedError) as caught:
            client.get_issue(str(issue.number))
        assert caught.value.retry_after == pytest.approx(120, abs=1)
        assert gate.paused_for == pytest.approx(120, abs=1)
        fake.reset_requests()

        with pytest.raises(RateLimitedError):
            client.update_issue(str(issue.number), IssueFields(title="x"))

        assert fake.requests == []
    finally:
        client.close()


# --- listing -----------------------------------------------------------------------------------


def test_a_listing_reports_the_trackers_clock(client: Any, fake: Any):
    fake.seed_issue(title="t")

    result = client.list_issues()

    assert result.server_time is not None
    assert abs(result.server_time - datetime.now(UTC)) < timedelta(minutes=1)
    assert client.last_server_time == result.server_time


def test_an_etag_is_stored_only_for_a_listing_that_fit_in_one_page(client: Any, fake: Any):
    for n in range(client.max_page_size + 1):
        fake.seed_issue(title=f"issue {n}")

    assert client.list_issues().etag is None


# --- canonical values per tracker ----------------------------------------------------------


def test_a_value_the_tracker_stores_differently_is_no_change_there(
    kit: Kit, fake: Any, client: Any
):
    """A write of what the tracker already holds, in its own spelling, is not sent again."""
    caps = client.capabilities
    issue = fake.seed_issue(title="t", body="a\nb", labels=["bug"], assignees=["alice"])
    current = client.get_issue(str(issue.number))
    wanted: dict[str, Any] = {}
    if caps.label_case_insensitive:
        wanted["labels"] = frozenset({"BUG"})
    if caps.assignee_case_insensitive:
        wanted["assignees"] = frozenset({"Alice"})
    if caps.body_crlf_to_lf:
        wanted["body"] = "a\r\nb"
    for field, value in wanted.items():
        assert caps.same(field, value, getattr(current, field))
    fake.reset_requests()

    client.update_issue(str(issue.number), IssueFields(**wanted), current=current)

    assert writes(fake, kit.update_method) + writes(fake, "POST") + writes(fake, "DELETE") == 0

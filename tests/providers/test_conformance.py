"""The conformance suite: every provider client against its fake, one parametrized module.

Each test runs once per `Kit` in `tests.providers.kits.KITS`; a provider that passes all of
them behaves as the engine and the outbox rely on (the provider contract in
`integrations/providers/base.py`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from integrations.fake_trackers.base import Fault
from integrations.providers import UnknownProviderError, client_class, webhooks
from integrations.providers.base import (
    ConflictingWriteError,
    EventKind,
    IssueFields,
    IssueState,
    MalformedAnswerError,
    NotFoundError,
    ProviderClient,
    RateLimitedError,
    TransientError,
    ValidationFailedError,
    WebhookPayloadError,
)
from integrations.providers.delivery import parse_delivery
from tests.providers.kits import KITS, Kit
from tests.shared_data import LOCAL_FIXTURES, missing_shared, shared_fixture_paths


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


def writes(kit: Kit, fake: Any, method: str) -> int:
    return sum(1 for r in fake.requests if r.method == method and kit.issue_path in r.path)


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

    def release_thread(self) -> None:
        pass  # nothing is bound to a thread here


# --- transport: reads are retried, writes never blindly ---------------------------------------


def test_a_5xx_to_a_write_is_not_retried_by_the_transport(kit: Kit, fake: Any, client: Any):
    """Failed before (Gitea, GitLab, GitHub): urllib3 retried PATCH/PUT on 503, so a tracker
    edit landing between the two writes was overwritten (issue 12 #1)."""
    issue = fake.seed_issue(title="before")
    fake.inject(Fault(status=503, method=kit.update_method, retry_after=5))

    with pytest.raises(TransientError):
        client.update_issue(kit.number(fake, issue), IssueFields(title="ours"))

    assert writes(kit, fake, kit.update_method) == 1
    assert fake.issues[issue.number].title == "before"


@dataclasses.dataclass
class FirstWriteFault(Fault):
    """A fault on the next write request, whatever its method and path."""

    def matches(self, method: str, path: str, query: dict[str, list[str]] | None = None) -> bool:
        return method not in ("GET", "HEAD") and super().matches(method, path, query)


def test_a_failed_update_names_the_fields_whose_requests_were_never_sent(
    kit: Kit, fake: Any, client: Any
):
    """Soak seed 2059 (github): an update sent as several requests failed on its first; the
    fields of the later requests were never sent, yet the outbox could not tell, and kept
    waiting for them as writes that might have landed. The first write applies and its answer
    is lost: what changed was sent, everything else is `unsent`."""
    milestones = client.capabilities.milestones
    issue = fake.seed_issue(title="t", labels=["bug"], assignees=["alice"])
    current = client.get_issue(kit.number(fake, issue))
    fields = IssueFields(
        title="t2",
        body="b2",
        state=IssueState.CLOSED,
        labels=frozenset({"docs"}),
        assignees=frozenset({"bob"}),
    )
    if milestones:
        fields = dataclasses.replace(fields, milestone="v1")
    before = fake.issues[issue.number].snapshot()
    fake.inject(FirstWriteFault(status=504, apply_then_fail=True))

    with pytest.raises(TransientError) as failure:
        client.update_issue(kit.number(fake, issue), fields, current=current)

    after = fake.issues[issue.number].snapshot()
    sent = {f for f in fields.names() if after[f] != before[f]}
    assert sent, "the first write changed nothing"
    assert failure.value.unsent == fields.names() - sent


def test_a_failed_create_names_the_close_it_never_sent(kit: Kit, fake: Any, client: Any):
    """Soak seed 1018 (trello): an issue born closed is created open and closed by a second
    call on most trackers; the create's answer lost, the close was never sent, yet the
    outbox took "closed" for written. Where the create itself can hold the state, nothing
    is unsent."""
    fake.inject(FirstWriteFault(status=504, apply_then_fail=True))

    with pytest.raises(TransientError) as failure:
        client.create_issue(IssueFields(title="t", state=IssueState.CLOSED), marker="1.1")

    (created,) = fake.issues.values()
    closed_by_the_create = created.state == "closed"
    assert failure.value.unsent == (frozenset() if closed_by_the_create else {"state"})


def test_a_5xx_to_a_read_is_retried(kit: Kit, fake: Any, client: Any):
    issue = fake.seed_issue(title="readable")
    fake.inject(Fault(status=503, method="GET", path_contains=kit.issue_path))

    assert client.get_issue(kit.number(fake, issue)).title == "readable"
    # The refused read and its retry (a client may also read lookups, e.g. Trello's lists).
    assert sum(1 for r in fake.requests if r.method == "GET" and kit.issue_path in r.path) == 2


@pytest.mark.parametrize("what", ["get", "list"])
def test_a_malformed_answer_is_the_same_error_on_every_provider(
    kit: Kit, fake: Any, client: Any, what: str
):
    """Failed before: PermanentError on Gitea (the outbox failed the row at once),
    TransientError on GitHub and GitLab (retried five times)."""
    issue = fake.seed_issue(title="t")
    # A 200 whose body is an object without any issue field.
    path = kit.issue_path if what == "get" else kit.list_path
    fake.inject(Fault(status=200, method="GET", path_contains=path, count=5))

    with pytest.raises(MalformedAnswerError):
        if what == "get":
            client.get_issue(kit.number(fake, issue))
        else:
            client.list_issues()


def test_a_hung_write_is_given_up_after_the_timeout_and_not_sent_again(kit: Kit, fake: Any):
    client = kit.client(fake, timeout=0.3)
    issue = fake.seed_issue(title="t")
    current = client.get_issue(kit.number(fake, issue))
    fake.inject(Fault(status=0, hang_seconds=0.8, method=kit.update_method))
    try:
        with pytest.raises(TransientError, match="no answer"):
            client.update_issue(kit.number(fake, issue), IssueFields(title="x"), current=current)
        assert writes(kit, fake, kit.update_method) == 1
    finally:
        client.close()


def test_a_listing_since_a_time_holds_only_what_changed_since(kit: Kit, fake: Any, client: Any):
    old = fake.seed_issue(title="old", updated_at=datetime.now(UTC) - timedelta(days=2))
    new = fake.seed_issue(title="new")

    listed = client.list_issues(since=datetime.now(UTC) - timedelta(days=1))

    numbers = {i.number for i in listed.issues}
    assert kit.number(fake, new) in numbers and kit.number(fake, old) not in numbers


def test_a_create_sets_every_field(kit: Kit, fake: Any, client: Any):
    milestone = "v1" if client.capabilities.milestones else None  # Trello has none
    created = client.create_issue(
        IssueFields(
            title="full",
            body="b",
            labels=frozenset({"bug"}),
            assignees=frozenset({"alice"}),
            milestone=milestone,
            state=IssueState.CLOSED,
        ),
        marker="m.1",
    )
    stored = fake.issues[kit.fake_number(created.number)]
    assert (stored.title, stored.labels, stored.assignees, stored.milestone, stored.state) == (
        "full",
        ["bug"],
        ["alice"],
        milestone,
        "closed",
    )
    assert (created.body, created.state, created.marker) == ("b", IssueState.CLOSED, "m.1")


# --- set writes: additions and removals --------------------------------------------------------


def test_a_label_the_tracker_gained_after_our_read_survives_our_write(
    kit: Kit, fake: Any, client: Any
):
    """Failed before: labels were written as the whole set read before, so a label added in
    the tracker between the read and the write was removed (issue 12 #2). A tracker with
    conditional writes (OpenProject's lockVersion) refuses the stale write instead: the
    outbox reads again and merges."""
    if client.capabilities.conditional_writes:
        issue = fake.seed_issue(title="t", labels=["bug"])
        current = client.get_issue(str(issue.number))
        fake.edit_issue(issue.number, notify=False, labels=["docs"])  # a human, meanwhile

        with pytest.raises(ConflictingWriteError):
            client.update_issue(
                str(issue.number), IssueFields(labels=frozenset({"feature"})), current=current
            )

        assert fake.issues[issue.number].labels == ["docs"]
        return
    issue = fake.seed_issue(title="t", labels=["bug"])
    current = client.get_issue(kit.number(fake, issue))
    fake.edit_issue(issue.number, notify=False, labels=["bug", "docs"])  # a human, meanwhile

    result = client.update_issue(
        kit.number(fake, issue), IssueFields(labels=frozenset({"feature"})), current=current
    )

    assert set(fake.issues[issue.number].labels) == {"docs", "feature"}
    assert result.labels == frozenset({"docs", "feature"})


def test_an_update_returns_the_trackers_state_after_its_last_call(kit: Kit, fake: Any, client: Any):
    # A tracker without milestones (Trello) holds none: the milestone is left out there.
    milestones = client.capabilities.milestones
    issue = fake.seed_issue(
        title="t", labels=["bug"], assignees=["alice"], milestone="v1" if milestones else None
    )
    current = client.get_issue(kit.number(fake, issue))
    fields = IssueFields(
        title="t2", body="b2", labels=frozenset({"docs"}), assignees=frozenset({"bob"})
    )
    if milestones:
        fields = dataclasses.replace(fields, milestone="v2")

    result = client.update_issue(kit.number(fake, issue), fields, current=current)

    again = client.get_issue(kit.number(fake, issue))
    assert (
        (result.title, result.body, result.labels, result.assignees, result.milestone)
        == (
            again.title,
            again.body,
            again.labels,
            again.assignees,
            again.milestone,
        )
        == ("t2", "b2", frozenset({"docs"}), frozenset({"bob"}), "v2" if milestones else None)
    )


def test_an_update_with_current_does_not_read_first(kit: Kit, fake: Any, client: Any):
    issue = fake.seed_issue(title="t")
    current = client.get_issue(kit.number(fake, issue))
    fake.reset_requests()

    client.update_issue(kit.number(fake, issue), IssueFields(title="t2"), current=current)

    # The first call is the write. A tracker whose write answers no body (Jira's and Redmine's 204) may
    # read the result once afterwards: the contract's "else one GET".
    methods = [r.method for r in fake.requests]
    assert methods[0] == kit.update_method and methods[1:] in ([], ["GET"])


def test_close_and_reopen(kit: Kit, fake: Any, client: Any):
    issue = fake.seed_issue(title="t")
    number = kit.number(fake, issue)
    closed = client.update_issue(number, IssueFields(state=IssueState.CLOSED))
    assert closed.state is IssueState.CLOSED and fake.issues[issue.number].state == "closed"
    reopened = client.update_issue(number, IssueFields(state=IssueState.OPEN), current=closed)
    assert reopened.state is IssueState.OPEN and fake.issues[issue.number].state == "open"


# --- create marker -----------------------------------------------------------------------------


def test_the_create_marker_is_kept_by_the_tracker_and_hidden_from_the_body(
    kit: Kit, fake: Any, client: Any
):
    created = client.create_issue(IssueFields(title="new", body="text"), marker="7.42")

    assert (created.body, created.marker) == ("text", "7.42")
    stored = fake.issues[kit.fake_number(created.number)]
    assert stored.body.startswith("text") and kit.stored_marker(fake, stored) == "7.42"
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
        (IssueFields(labels=frozenset({"<the kit's refused label>"})), "labels"),
    ],
    ids=["assignee", "milestone", "label"],
)
def test_a_refused_value_names_its_field(
    kit: Kit, fake: Any, client: Any, fields: IssueFields, field: str
):
    if field == "labels":  # a label this tracker refuses (undefined, or malformed where free)
        fields = IssueFields(labels=frozenset({kit.refused_label}))
    issue = fake.seed_issue(title="t")
    current = client.get_issue(kit.number(fake, issue))

    with pytest.raises(ValidationFailedError) as caught:
        client.update_issue(kit.number(fake, issue), fields, current=current)

    assert caught.value.field == field


@pytest.mark.parametrize("number", ["abc", "0", "-1", "٣"])
def test_a_bad_issue_number_is_not_found_on_every_provider(client: Any, number: str):
    """Failed before on Gitea: ValidationFailedError where the others said NotFoundError."""
    with pytest.raises(NotFoundError):
        client.get_issue(number)


def test_an_issue_number_in_other_scripts_digits_names_no_issue(kit: Kit, fake: Any, client: Any):
    """str.isdigit() and int() accept "٣" as 3: such a number must not reach the issue 3."""
    for _ in range(3):
        issue = fake.seed_issue(title="a real issue")
    foreign = kit.number(fake, issue).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))

    with pytest.raises(NotFoundError):
        client.get_issue(foreign)


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
            client.get_issue(kit.number(fake, issue))
        assert caught.value.retry_after == pytest.approx(120, abs=1)
        assert gate.paused_for == pytest.approx(120, abs=1)
        fake.reset_requests()

        with pytest.raises(RateLimitedError):
            client.update_issue(kit.number(fake, issue), IssueFields(title="x"))

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
    current = client.get_issue(kit.number(fake, issue))
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

    client.update_issue(kit.number(fake, issue), IssueFields(**wanted), current=current)

    assert (
        writes(kit, fake, kit.update_method)
        + writes(kit, fake, "POST")
        + writes(kit, fake, "DELETE")
        == 0
    )


def test_every_issue_carries_the_trackers_own_status(kit: Kit, fake: Any, client: Any):
    issue = fake.seed_issue(title="t")
    read = client.get_issue(kit.number(fake, issue))
    closed = client.update_issue(kit.number(fake, issue), IssueFields(state=IssueState.CLOSED))
    assert read.tracker_status in kit.open_statuses
    assert closed.tracker_status == kit.closed_status


# --- webhooks: every captured delivery verifies and parses -------------------------------------


def _fixtures(provider: str) -> list[Path]:
    return [*shared_fixture_paths(provider), *sorted((LOCAL_FIXTURES / provider).glob("*.json"))]


def test_every_fixture_verifies_and_parses_and_a_changed_byte_does_not_verify(kit: Kit):
    fixtures = _fixtures(kit.provider)
    if not client_class(kit.provider).capabilities.webhooks:
        # Polled only (Redmine): no captures, and no verifier for the intake to use.
        assert fixtures == []
        with pytest.raises(UnknownProviderError):
            webhooks(kit.provider)
        return
    if not shared_fixture_paths(kit.provider):
        missing_shared(f"no shared {kit.provider} fixtures")
    verifier = webhooks(kit.provider)
    for path in fixtures:
        body = path.read_bytes()
        if path.name in kit.rejected_fixtures:  # captures that are no delivery of this tracker
            with pytest.raises(WebhookPayloadError):
                parse_delivery(verifier, event="", body=body, headers={}, base_url="https://t.test")
            continue
        headers = kit.sign(body, kit.event_for(path.stem), "hook-secret")
        assert verifier.verify(secret="hook-secret", body=body, headers=headers, url=""), path
        changed = verifier.verify(secret="hook-secret", body=body + b" ", headers=headers, url="")
        assert changed is not kit.signs_body, path
        assert not verifier.verify(secret="other", body=body, headers=headers, url=""), path
        event = verifier.event_name(headers=headers, payload=json.loads(body))
        assert verifier.is_known_event(event), (path, event)
        parsed = verifier.parse(event=event, payload=json.loads(body), base_url="https://t.test")
        assert parsed.kind in EventKind, path
        if parsed.kind is EventKind.ISSUE and parsed.issue is not None:
            # A create marker never shows in a parsed body.
            assert "syndarix:create:" not in parsed.issue.body

"""`update_issue(current=…)` writes against the state the push already read (issue 18):
no read of the issue before the first write, and at most one after the last (where the
tracker's write answers carry no issue: Jira's and Redmine's 204, a label endpoint's list).

Counted against every provider's fake, for each field alone and for all of them at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from integrations.providers import client_class
from integrations.providers.base import IssueFields, IssueState
from tests.providers.kits import KITS, Kit

WRITES = ("POST", "PUT", "PATCH", "DELETE")


CASES = [
    "title",
    "body",
    "state",
    "label added",
    "label removed",
    "assignee changed",
    "milestone",
    "everything",
]
# Every case a tracker can hold (Trello has no milestones).
ROWS = [
    pytest.param(kit, case, id=f"{kit.provider}-{case.replace(' ', '-')}")
    for kit in KITS
    for case in CASES
    if case != "milestone" or client_class(kit.provider).capabilities.milestones
]


@pytest.fixture
def kit(request: pytest.FixtureRequest) -> Kit:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def fake(kit: Kit) -> Iterator[Any]:
    tracker = kit.make_fake()
    tracker.start()
    yield tracker
    tracker.stop()


@pytest.fixture
def client(kit: Kit, fake: Any) -> Iterator[Any]:
    made = kit.client(fake)
    yield made
    made.close()


def changes(client: Any) -> dict[str, IssueFields]:
    """Each field changed alone, then all at once, within what the tracker can hold."""
    caps = client.capabilities
    one_label = caps.max_labels == 1
    cases = {
        "title": IssueFields(title="t2"),
        "body": IssueFields(body="b2"),
        "state": IssueFields(state=IssueState.CLOSED),
        "label added": IssueFields(
            labels=frozenset({"docs"}) if one_label else frozenset({"bug", "docs"})
        ),
        "label removed": IssueFields(labels=frozenset()),
        "assignee changed": IssueFields(assignees=frozenset({"bob"})),
    }
    if caps.milestones:
        cases["milestone"] = IssueFields(milestone="v2")
    cases["everything"] = IssueFields(
        title="t3",
        body="b3",
        state=IssueState.CLOSED,
        labels=frozenset({"docs"}),
        assignees=frozenset({"bob"}),
        **({"milestone": "v2"} if caps.milestones else {}),
    )
    return cases


def seed(fake: Any, client: Any) -> Any:
    milestone = {"milestone": "v1"} if client.capabilities.milestones else {}
    return fake.seed_issue(title="t", body="b", labels=["bug"], assignees=["alice"], **milestone)


def issue_read_path(kit: Kit, fake: Any, client: Any, issue: Any) -> str:
    """The path the client GETs to read this issue (it differs per tracker)."""
    client.get_issue(kit.number(fake, issue))  # the first read also loads lookups (Redmine)
    fake.reset_requests()
    client.get_issue(kit.number(fake, issue))
    (read,) = [r.path for r in fake.requests if r.method == "GET"]
    return read


@pytest.mark.parametrize(("kit", "case"), ROWS, indirect=["kit"])
def test_an_update_with_current_reads_the_issue_only_after_its_last_write(
    kit: Kit, fake: Any, client: Any, case: str
):
    fields = changes(client)[case]
    issue = seed(fake, client)
    read_path = issue_read_path(kit, fake, client, issue)
    current = client.get_issue(kit.number(fake, issue))
    fake.reset_requests()

    answer = client.update_issue(kit.number(fake, issue), fields, current=current)

    calls = [(r.method, r.path) for r in fake.requests]
    writes = [i for i, (method, _) in enumerate(calls) if method in WRITES]
    reads = [i for i, call in enumerate(calls) if call == ("GET", read_path)]
    assert writes, f"nothing was written: {calls}"
    before = [i for i in reads if i < writes[0]]
    between = [i for i in reads if writes[0] < i < writes[-1]]
    after = [i for i in reads if i > writes[-1]]
    # Redmine's labels are one list-valued custom field with no add/remove endpoint: it reads
    # that list right before writing it whole, so a value a human added since `current`
    # survives (test_a_label_the_tracker_gained_after_our_read_survives_our_write).
    relisted = kit.provider == "redmine" and fields.labels is not None
    assert len(before) == (1 if relisted else 0), calls
    assert between == [], calls
    assert len(after) <= 1, calls
    # Whatever the route, the answer is the tracker's state after the write.
    again = client.get_issue(kit.number(fake, issue))
    assert (answer.title, answer.body, answer.state, answer.labels, answer.assignees) == (
        again.title,
        again.body,
        again.state,
        again.labels,
        again.assignees,
    )


@pytest.mark.parametrize("kit", KITS, ids=[k.provider for k in KITS], indirect=True)
def test_an_update_without_current_reads_the_issue_once_first(kit: Kit, fake: Any, client: Any):
    """The tools' and tests' form (`current=None`): one read, then the same writes."""
    issue = seed(fake, client)
    read_path = issue_read_path(kit, fake, client, issue)
    fake.reset_requests()

    client.update_issue(kit.number(fake, issue), IssueFields(title="t2"))

    calls = [(r.method, r.path) for r in fake.requests]
    first_write = next(i for i, (method, _) in enumerate(calls) if method in WRITES)
    assert [c for c in calls[:first_write] if c == ("GET", read_path)] == [("GET", read_path)]

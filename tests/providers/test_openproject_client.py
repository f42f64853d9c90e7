"""OpenProjectClient against FakeOpenProject over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from integrations.fake_trackers.base import Fault
from integrations.fake_trackers.openproject import FakeOpenProject
from integrations.providers.base import (
    AuthenticationError,
    ConflictingWriteError,
    IssueFields,
    IssueState,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    TransientError,
    ValidationFailedError,
)
from integrations.providers.openproject import OpenProjectClient


@pytest.fixture
def fake() -> Iterator[FakeOpenProject]:
    with FakeOpenProject(webhook_secret="hook-secret") as tracker:
        yield tracker


def make_client(fake: FakeOpenProject, **overrides: Any) -> OpenProjectClient:
    options: dict[str, Any] = {
        "base_url": fake.url,
        "repository": fake.repository,
        "token": fake.token,
        "timeout": 2.0,
        "backoff_factor": 0.01,
    }
    options.update(overrides)
    return OpenProjectClient(**options)


@pytest.fixture
def client(fake: FakeOpenProject) -> Iterator[OpenProjectClient]:
    made = make_client(fake)
    yield made
    made.close()


def listings(fake: FakeOpenProject) -> list[Any]:
    return [r for r in fake.requests if r.path.endswith("/work_packages") and r.method == "GET"]


def patches(fake: FakeOpenProject) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in fake.requests if r.method == "PATCH"]


# --- auth and access ---------------------------------------------------------------------


def test_basic_auth_is_apikey_and_the_token(fake: FakeOpenProject, client: OpenProjectClient):
    client.check_access()

    sent = fake.requests[-1].headers["Authorization"]
    assert sent == "Basic " + base64.b64encode(f"apikey:{fake.token}".encode()).decode()


def test_a_wrong_token_and_an_unknown_project_say_so(fake: FakeOpenProject):
    with pytest.raises(AuthenticationError):
        make_client(fake, token="wrong").check_access()
    with pytest.raises(NotFoundError, match="nope not found"):
        make_client(fake, repository="nope").check_access()


def test_an_api_root_pasted_as_base_url_still_gives_web_urls(fake: FakeOpenProject):
    issue = fake.seed_issue(title="t")
    client = make_client(fake, base_url=fake.url + "/api/v3/")

    assert client.get_issue(str(issue.number)).remote_url == (
        f"{fake.url}/work_packages/{issue.number}"
    )


def test_unknown_config_keys_are_refused(fake: FakeOpenProject):
    with pytest.raises(ValidationFailedError, match="done_list"):
        make_client(fake, config={"done_list": "Done"})


# --- listing ---------------------------------------------------------------------------


def test_the_listing_includes_closed_work_packages(fake: FakeOpenProject, client):
    """OpenProject's default query lists open work packages only: the client asks for all."""
    fake.seed_issue(title="open one")
    fake.seed_issue(title="closed one", state="closed")

    titles = {i.title: i.state for i in client.list_issues().issues}

    assert titles == {"open one": IssueState.OPEN, "closed one": IssueState.CLOSED}


def test_the_listing_pages_by_offset_at_the_servers_page_size(fake: FakeOpenProject, client):
    fake.max_page_size = 4  # the server caps pageSize below what the client asks for
    for n in range(10):
        fake.seed_issue(title=f"wp {n}")

    result = client.list_issues()

    assert [i.title for i in result.issues] == [f"wp {n}" for n in range(10)]
    sent = listings(fake)
    assert [r.query["offset"][0] for r in sent] == ["1", "2", "3"]
    assert {r.query["pageSize"][0] for r in sent} == {str(client.max_page_size)}
    assert json.loads(sent[0].query["sortBy"][0])[0] == ["updatedAt", "asc"]
    assert result.etag is None  # three pages: no ETag
    assert client.listing_total == 10


def test_since_is_an_updated_at_between_filter_with_overlap(fake: FakeOpenProject, client):
    old = fake.seed_issue(title="old")
    fake.advance_clock(60)
    cursor = fake.now()
    new = fake.seed_issue(title="new")

    found = client.list_issues(since=cursor).issues

    assert [i.number for i in found] == [str(new.number)]
    filters = json.loads(listings(fake)[-1].query["filters"][0])
    between = next(f["updatedAt"] for f in filters if "updatedAt" in f)
    assert between["operator"] == "<>d"
    assert between["values"][0] == (cursor - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert str(old.number) not in {i.number for i in found}


def test_a_listing_of_one_page_keeps_its_etag_and_a_304_reads_nothing(fake, client):
    fake.seed_issue(title="t")
    first = client.list_issues()
    assert first.etag

    again = client.list_issues(etag=first.etag)

    assert again.not_modified and again.issues == []


def test_a_429_is_rate_limited_with_its_retry_after(fake: FakeOpenProject, client):
    fake.inject(Fault(status=429, retry_after=30))
    with pytest.raises(RateLimitedError) as caught:
        client.list_issues()
    assert caught.value.retry_after == pytest.approx(30, abs=1)


def test_a_work_package_of_another_project_is_not_found(fake: FakeOpenProject, client):
    issue = fake.seed_issue(title="t")
    assert make_client(fake, repository="1").get_issue(str(issue.number)).title == "t"  # by id
    fake.repository = "other-project"  # the work package now renders in another project

    with pytest.raises(NotFoundError):
        client.get_issue(str(issue.number))


# --- writes ----------------------------------------------------------------------------


def test_create_sends_links_by_href_and_keeps_the_marker(fake: FakeOpenProject, client):
    created = client.create_issue(
        IssueFields(
            title="new",
            body="text",
            labels=frozenset({"bug"}),
            assignees=frozenset({"bob"}),
            milestone="v2",
        ),
        marker="3.4",
    )

    stored = fake.issues[int(created.number)]
    assert (stored.labels, stored.assignees, stored.milestone) == (["bug"], ["bob"], "v2")
    assert (created.body, created.marker, created.tracker_status) == ("text", "3.4", "New")
    sent = json.loads(next(r.body for r in fake.requests if r.method == "POST"))
    assert sent["_links"]["category"]["href"].startswith("/api/v3/categories/")
    assert sent["_links"]["assignee"]["href"].startswith("/api/v3/users/")
    assert "status" not in sent["_links"]  # an open create takes the project's default


def test_every_patch_carries_the_lock_version_read(fake: FakeOpenProject, client):
    issue = fake.seed_issue(title="t")
    fake.edit_issue(issue.number, notify=False, title="t1")  # lockVersion 1
    current = client.get_issue(str(issue.number))

    answer = client.update_issue(str(issue.number), IssueFields(title="t2"), current=current)

    assert patches(fake)[-1] == {"subject": "t2", "lockVersion": 1}
    assert answer.title == "t2" and fake.lock_versions[issue.number] == 2
    # The answer's lockVersion is the next write's: no read in between.
    client.update_issue(str(issue.number), IssueFields(title="t3"), current=answer)
    assert patches(fake)[-1]["lockVersion"] == 2


def test_a_stale_lock_version_is_a_conflicting_write_never_retried(fake, client):
    """409 UpdateConflict: the human's edit stays, and the error tells the outbox to re-read."""
    issue = fake.seed_issue(title="t")
    current = client.get_issue(str(issue.number))
    fake.edit_issue(issue.number, notify=False, title="human")

    with pytest.raises(ConflictingWriteError) as caught:
        client.update_issue(str(issue.number), IssueFields(title="ours"), current=current)

    assert isinstance(caught.value, TransientError) and caught.value.status == 409
    assert fake.issues[issue.number].title == "human"
    assert len(patches(fake)) == 1


def test_a_current_from_elsewhere_is_checked_against_one_read(fake: FakeOpenProject):
    """A `current` this client did not read (a webhook's) costs one GET for its lockVersion;
    if the work package moved since, nothing is written."""
    issue = fake.seed_issue(title="t")
    current = make_client(fake).get_issue(str(issue.number))
    client = make_client(fake)

    client.update_issue(str(issue.number), IssueFields(title="t2"), current=current)
    assert fake.issues[issue.number].title == "t2"

    stale = make_client(fake)
    with pytest.raises(ConflictingWriteError):
        stale.update_issue(str(issue.number), IssueFields(title="t3"), current=current)
    assert fake.issues[issue.number].title == "t2"


def test_close_and_reopen_use_the_configured_statuses(fake: FakeOpenProject):
    issue = fake.seed_issue(title="t")
    client = make_client(fake, config={"closed_status": "Rejected", "open_status": "In progress"})

    closed = client.update_issue(str(issue.number), IssueFields(state=IssueState.CLOSED))
    assert (closed.state, closed.tracker_status) == (IssueState.CLOSED, "Rejected")
    reopened = client.update_issue(
        str(issue.number), IssueFields(state=IssueState.OPEN), current=closed
    )
    assert (reopened.state, reopened.tracker_status) == (IssueState.OPEN, "In progress")


def test_the_default_close_is_the_first_closed_status_and_a_closed_one_stays(fake, client):
    issue = fake.seed_issue(title="t")
    closed = client.update_issue(str(issue.number), IssueFields(state=IssueState.CLOSED))
    assert closed.tracker_status == "Closed"

    fake.edit_issue(issue.number, notify=False, status="Rejected")
    current = client.get_issue(str(issue.number))
    client.update_issue(
        str(issue.number), IssueFields(state=IssueState.CLOSED, title="x"), current=current
    )

    assert "status" not in patches(fake)[-1].get("_links", {})
    assert fake.status(issue.number).name == "Rejected"


@pytest.mark.parametrize(
    ("config", "state"),
    [({"closed_status": "New"}, IssueState.CLOSED), ({"open_status": "Nope"}, IssueState.OPEN)],
)
def test_a_misconfigured_status_is_refused_naming_state(fake, config, state):
    issue = fake.seed_issue(title="t", state="closed" if state is IssueState.OPEN else "open")
    client = make_client(fake, config=config)

    with pytest.raises(ValidationFailedError) as caught:
        client.update_issue(str(issue.number), IssueFields(state=state))

    assert caught.value.field == "state" and patches(fake) == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (IssueFields(labels=frozenset({"bug", "docs"})), "labels"),
        (IssueFields(assignees=frozenset({"alice", "bob"})), "assignees"),
    ],
    ids=["two-categories", "two-assignees"],
)
def test_two_values_where_the_tracker_holds_one_are_refused(fake, client, fields, field):
    issue = fake.seed_issue(title="t")
    current = client.get_issue(str(issue.number))

    with pytest.raises(ValidationFailedError) as caught:
        client.update_issue(str(issue.number), fields, current=current)

    assert caught.value.field == field and patches(fake) == []


def test_clearing_category_assignee_and_version_sends_null_hrefs(fake, client):
    issue = fake.seed_issue(title="t", labels=["bug"], assignees=["alice"], milestone="v1")
    current = client.get_issue(str(issue.number))

    answer = client.update_issue(
        str(issue.number),
        IssueFields(labels=frozenset(), assignees=frozenset(), milestone=None),
        current=current,
    )

    assert (answer.labels, answer.assignees, answer.milestone) == (frozenset(), frozenset(), None)
    assert patches(fake)[-1]["_links"] == {
        "category": {"href": None},
        "assignee": {"href": None},
        "version": {"href": None},
    }


def test_a_write_that_changes_nothing_is_not_sent(fake: FakeOpenProject, client):
    issue = fake.seed_issue(title="t", labels=["bug"])
    current = client.get_issue(str(issue.number))

    answer = client.update_issue(
        str(issue.number), IssueFields(title="t", labels=frozenset({"bug"})), current=current
    )

    assert answer == current and patches(fake) == []


def test_a_title_is_required_to_create(client):
    with pytest.raises(ValidationFailedError) as caught:
        client.create_issue(IssueFields(body="no subject"))
    assert caught.value.field == "title"


def test_a_422_from_the_server_is_permanent(fake: FakeOpenProject, client):
    issue = fake.seed_issue(title="t")
    fake.inject(Fault(status=422, method="PATCH"))
    with pytest.raises(PermanentError):
        client.update_issue(str(issue.number), IssueFields(title="x"))


def test_the_fake_holds_one_category_and_one_assignee_like_openproject(fake: FakeOpenProject):
    with pytest.raises(ValueError, match="at most one"):
        fake.seed_issue(title="t", labels=["bug", "docs"])
    issue = fake.seed_issue(title="t", assignees=["alice"])
    with pytest.raises(ValueError, match="at most one"):
        fake.edit_issue(issue.number, assignees=["alice", "bob"])


def test_links_without_embedded_resources_are_resolved_once(fake: FakeOpenProject, client):
    """Lean elements link the status and the assignee without embedding them: the client
    reads the status table once and a user's login once, then parses."""
    fake.lean = True
    fake.seed_issue(title="a", state="closed", assignees=["alice"], labels=["bug"])
    fake.seed_issue(title="b", assignees=["alice"], milestone="v1")

    found = {i.title: i for i in client.list_issues().issues}

    assert found["a"].state is IssueState.CLOSED and found["a"].tracker_status == "Closed"
    assert found["a"].assignees == found["b"].assignees == frozenset({"alice"})
    assert (found["a"].labels, found["b"].milestone) == (frozenset({"bug"}), "v1")
    assert fake.count_requests("GET", "/statuses") == 1
    assert fake.count_requests("GET", "/users/") == 1


def test_subproject_work_packages_in_the_listing_are_left_to_their_own_connection(fake, client):
    mine = fake.seed_issue(title="mine")
    theirs = fake.seed_issue(title="subproject's")
    fake.subproject_of[theirs.number] = "demo-sub"

    assert [i.number for i in client.list_issues().issues] == [str(mine.number)]

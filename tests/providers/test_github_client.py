"""GitHubClient against FakeGitHub over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from integrations.fake_trackers.base import Fault
from integrations.fake_trackers.github import FakeGitHub
from integrations.providers import client_class
from integrations.providers.base import (
    AccessDeniedError,
    AuthenticationError,
    IssueFields,
    IssueState,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    TransientError,
    ValidationFailedError,
)
from integrations.providers.github import GitHubClient

REPO = "acme/widgets"
TOKEN = "ghp-test-token"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    tracker = FakeGitHub(repository=REPO, token=TOKEN)
    tracker.start()
    yield tracker
    tracker.stop()


def make_client(fake: FakeGitHub, **kwargs: object) -> GitHubClient:
    options: dict[str, object] = {
        "base_url": fake.api_url,
        "repository": REPO,
        "token": TOKEN,
        "timeout": 2.0,
        "backoff_factor": 0.01,
    }
    options.update(kwargs)
    return GitHubClient(**options)  # type: ignore[arg-type]


@pytest.fixture
def client(fake: FakeGitHub) -> Iterator[GitHubClient]:
    github = make_client(fake)
    yield github
    github.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- registry and headers -----------------------------------------------------------------


def test_registry_resolves_github_to_this_client() -> None:
    assert client_class("github") is GitHubClient
    assert GitHubClient.max_page_size == 100


def test_every_request_carries_githubs_media_type_version_and_bearer_token(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    client.check_access()
    headers = fake.requests[-1].headers
    assert headers["Accept"] == "application/vnd.github+json"
    assert headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert headers["Authorization"] == f"Bearer {TOKEN}"


def test_malformed_repository_is_refused_before_any_request(fake: FakeGitHub) -> None:
    with pytest.raises(ValidationFailedError, match="owner/name"):
        make_client(fake, repository="just-a-name")
    assert fake.count_requests() == 0


def test_enterprise_api_root_with_path_prefix_is_honoured() -> None:
    with FakeGitHub(repository=REPO, token=TOKEN, api_prefix="/api/v3") as enterprise:
        enterprise.seed_issue(title="on GHES")
        github = make_client(enterprise)
        assert [i.title for i in github.list_issues().issues] == ["on GHES"]
        assert all(r.path.startswith("/api/v3/repos/") for r in enterprise.requests)


# --- listing ------------------------------------------------------------------------------


def test_listing_250_issues_takes_exactly_three_requests_at_page_size_100(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    for n in range(250):
        fake.seed_issue(title=f"issue {n}")

    pages = list(client.iter_issue_pages())

    assert [len(p) for p in pages] == [100, 100, 50]
    listing = [r for r in fake.requests if r.path.endswith("/issues")]
    assert len(listing) == 3
    assert all(r.query["per_page"] == ["100"] for r in listing)
    assert [r.query["page"] for r in listing] == [["1"], ["2"], ["3"]]
    assert listing[0].query["state"] == ["all"]
    assert listing[0].query["sort"] == ["updated"]
    assert listing[0].query["direction"] == ["asc"]
    numbers = [int(i.number) for page in pages for i in page]
    assert sorted(numbers) == list(range(1, 251))


def test_list_issues_reports_its_request_count_and_no_etag_for_several_pages(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    for n in range(201):
        fake.seed_issue(title=f"issue {n}")

    result = client.list_issues()

    assert len(result.issues) == 201
    assert result.requests == 3
    # Page 1's ETag says nothing of pages 2 and 3 (issue 12 #9).
    assert result.etag is None
    assert not result.not_modified


def test_a_one_page_listing_stores_its_etag(fake: FakeGitHub, client: GitHubClient) -> None:
    for n in range(20):
        fake.seed_issue(title=f"issue {n}")

    result = client.list_issues()

    assert result.requests == 1
    assert result.etag is not None and result.etag.startswith('"')


def test_a_change_on_page_two_is_not_hidden_by_a_304_on_page_one(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    """Failed before: page 1's ETag was stored for a 2-page listing, and an edit of an issue
    on page 2 (page 1 unchanged) answered 304 — the poll saw nothing."""
    issues = [fake.seed_issue(title=f"issue {n}") for n in range(150)]
    first = client.list_issues()
    fake.edit_issue(issues[-1].number, notify=False, title="edited on page 2")

    again = client.list_issues(etag=first.etag)

    assert not again.not_modified
    assert "edited on page 2" in {i.title for i in again.issues}


def test_pull_requests_listed_among_issues_are_dropped(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    fake.seed_issue(title="a real issue")
    fake.seed_issue(title="a pull request", is_pull_request=True)
    fake.seed_issue(title="another issue")

    titles = {i.title for i in client.list_issues().issues}

    assert titles == {"a real issue", "another issue"}


def test_since_is_sent_as_githubs_own_parameter_and_filters(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    old = fake.seed_issue(title="old")
    fake.advance_clock(3600)
    cutoff = fake.now()
    fake.advance_clock(60)
    fake.seed_issue(title="new")
    fake.edit_issue(old.number, notify=False, body="touched")  # touching brings it back

    result = client.list_issues(since=cutoff)

    assert {i.title for i in result.issues} == {"new", "old"}
    assert fake.requests[-1].query["since"] == [cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")]
    later = client.list_issues(since=fake.now() + timedelta(hours=1))
    assert later.issues == []


def test_unchanged_repository_costs_one_conditional_request_answered_304(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    for n in range(50):
        fake.seed_issue(title=f"issue {n}")
    first = client.list_issues()
    fake.reset_requests()

    again = client.list_issues(etag=first.etag)

    assert again.not_modified is True
    assert again.issues == []
    assert again.requests == 1
    assert fake.count_requests() == 1
    assert fake.requests[0].headers["If-None-Match"] == first.etag
    assert fake.requests[0].status == 304


def test_a_change_after_the_etag_was_stored_lists_again(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    issue = fake.seed_issue(title="before")
    first = client.list_issues()
    fake.edit_issue(issue.number, notify=False, title="after")

    again = client.list_issues(etag=first.etag)

    assert not again.not_modified
    assert [i.title for i in again.issues] == ["after"]
    assert again.etag != first.etag


def test_pagination_link_pointing_to_another_host_is_not_followed(
    fake: FakeGitHub, client: GitHubClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(101):
        fake.seed_issue(title=f"issue {n}")
    monkeypatch.setattr(
        fake, "link_header", lambda record, page, pages: '<https://evil.example/x>; rel="next"'
    )

    with pytest.raises(PermanentError, match="off"):
        client.list_issues()
    assert fake.count_requests() == 1


# --- errors and retries -------------------------------------------------------------------


def test_429_with_retry_after_raises_rate_limited_with_that_delay(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    fake.inject(Fault(status=429, retry_after=2))

    with pytest.raises(RateLimitedError) as caught:
        client.list_issues()

    assert caught.value.retry_after == 2.0
    assert caught.value.permanent is False
    assert fake.count_requests() == 1  # a 429 is never retried blindly


def test_403_with_exhausted_budget_is_a_rate_limit_waiting_until_reset(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    fake.exhaust_rate_limit(reset_in=30)

    with pytest.raises(RateLimitedError) as caught:
        client.get_issue("1")

    assert caught.value.status == 403
    assert 27 <= caught.value.retry_after <= 31


def test_500_is_transient_and_the_next_call_succeeds(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    fake.seed_issue(title="survivor")
    fake.inject(Fault(status=500))

    with pytest.raises(TransientError) as caught:
        client.get_issue("1")
    assert caught.value.status == 500

    assert client.get_issue("1").title == "survivor"


def test_503_is_retried_by_the_transport_within_one_call(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    fake.seed_issue(title="eventually")
    fake.inject(Fault(status=503, count=2))

    issue = client.get_issue("1")

    assert issue.title == "eventually"
    assert fake.count_requests("GET", "/issues/1") == 3


def test_a_hanging_tracker_hits_the_client_timeout_as_transient(fake: FakeGitHub) -> None:
    fake.seed_issue(title="slow")
    github = make_client(fake, timeout=0.3)
    fake.inject(Fault(status=0, hang_seconds=2.0))

    started = time.monotonic()
    with pytest.raises(TransientError):
        github.get_issue("1")

    assert time.monotonic() - started < 1.5  # gave up long before the tracker answered
    assert fake.count_requests() == 1  # a read timeout may mean the write happened: no retry


def test_wrong_token_is_a_permanent_authentication_error(fake: FakeGitHub) -> None:
    github = make_client(fake, token="not-the-token")

    with pytest.raises(AuthenticationError) as caught:
        github.list_issues()

    assert caught.value.permanent is True
    assert caught.value.status == 401


def test_missing_issue_is_not_found(fake: FakeGitHub, client: GitHubClient) -> None:
    with pytest.raises(NotFoundError) as caught:
        client.get_issue("404")
    assert caught.value.status == 404


def test_deleted_issue_answers_410_and_reads_as_not_found(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    fake.seed_issue(title="doomed")
    fake.delete_issue(1, notify=False)

    with pytest.raises(NotFoundError) as caught:
        client.get_issue("1")
    assert caught.value.status == 410


def test_a_pull_request_number_is_not_an_issue(fake: FakeGitHub, client: GitHubClient) -> None:
    fake.seed_issue(title="PR", is_pull_request=True)

    with pytest.raises(NotFoundError, match="pull request"):
        client.get_issue("1")


def test_rate_limit_headers_are_remembered_from_the_last_answer(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    client.check_access()
    client.check_access()

    assert client.rate_limit is not None
    assert client.rate_limit.limit == 5000
    assert client.rate_limit.remaining == 4998
    assert client.rate_limit.resource == "core"


# --- single issues: create, update, round trip --------------------------------------------


def test_create_with_everything_returns_the_trackers_state(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    fields = IssueFields(
        title="Crash on start ✨",
        body="Steps: open the app.",
        labels=frozenset({"bug", "docs"}),
        assignees=frozenset({"bob", "carol"}),
        milestone="v2",
    )

    created = client.create_issue(fields)

    held = fake.issues[int(created.number)]
    assert created.title == held.title == "Crash on start ✨"
    assert created.body == "Steps: open the app."
    assert created.labels == frozenset(held.labels) == {"bug", "docs"}
    assert created.assignees == frozenset(held.assignees) == {"bob", "carol"}
    assert created.milestone == held.milestone == "v2"
    assert created.state is IssueState.OPEN
    assert created.external_id == str(held.id)
    assert created.remote_url == f"{fake.url}/{REPO}/issues/{created.number}"
    post = [r for r in fake.requests if r.method == "POST"]
    assert len(post) == 1
    assert json.loads(post[0].body)["milestone"] == 2  # GitHub wants the milestone's number


def test_create_closed_issue_closes_it_in_a_second_call(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    created = client.create_issue(IssueFields(title="born closed", state=IssueState.CLOSED))

    assert created.state is IssueState.CLOSED
    assert fake.issues[int(created.number)].state == "closed"
    assert fake.count_requests("PATCH") == 1


def test_create_without_title_is_refused_locally(fake: FakeGitHub, client: GitHubClient) -> None:
    with pytest.raises(ValidationFailedError, match="title"):
        client.create_issue(IssueFields(body="no title"))
    assert fake.count_requests() == 0


def test_update_round_trip_title_body_labels_assignees_milestone_close_reopen(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    issue = fake.seed_issue(title="t", body="b", labels=["bug"], assignees=["alice"])
    number = str(issue.number)

    updated = client.update_issue(
        number,
        IssueFields(
            title="t2",
            body="b2",
            labels=frozenset({"feature"}),
            assignees=frozenset({"bob", "dave"}),
            milestone="v1",
            state=IssueState.CLOSED,
        ),
    )

    assert (updated.title, updated.body, updated.state) == ("t2", "b2", IssueState.CLOSED)
    assert updated.labels == {"feature"}
    assert updated.assignees == {"bob", "dave"}
    assert updated.milestone == "v1"
    assert fake.count_requests("PATCH") == 1  # GitHub takes all of it in one call
    assert client.get_issue(number) == updated

    reopened = client.update_issue(number, IssueFields(state=IssueState.OPEN, milestone=None))

    assert reopened.state is IssueState.OPEN
    assert reopened.milestone is None
    assert fake.issues[issue.number].milestone is None
    assert fake.count_requests("PATCH") == 2


def test_update_sends_only_the_fields_that_differ(fake: FakeGitHub, client: GitHubClient) -> None:
    issue = fake.seed_issue(title="same", body="old body", labels=["bug"])

    client.update_issue(
        str(issue.number), IssueFields(title="same", body="new body", labels=frozenset({"bug"}))
    )

    patch = [r for r in fake.requests if r.method == "PATCH"]
    assert len(patch) == 1
    assert json.loads(patch[0].body) == {"body": "new body"}


def test_a_no_op_update_makes_no_write_request(fake: FakeGitHub, client: GitHubClient) -> None:
    issue = fake.seed_issue(title="t", labels=["bug"], assignees=["bob"], milestone="v1")

    result = client.update_issue(
        str(issue.number),
        IssueFields(
            title="t",
            labels=frozenset({"bug"}),
            assignees=frozenset({"bob"}),
            milestone="v1",
            state=IssueState.OPEN,
        ),
    )

    assert result.title == "t"
    assert fake.count_requests("PATCH") == 0
    assert fake.count_requests("POST") == 0


def test_repeated_reads_of_an_unchanged_issue_are_conditional(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    fake.seed_issue(title="stable")
    first = client.get_issue("1")
    remaining = client.rate_limit.remaining if client.rate_limit else -1

    second = client.get_issue("1")

    assert second == first
    assert fake.requests[-1].status == 304
    assert client.rate_limit is not None and client.rate_limit.remaining == remaining


def test_unknown_label_is_refused_naming_it_when_creation_is_off(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    issue = fake.seed_issue(title="t")

    with pytest.raises(ValidationFailedError, match="'no-such-label'"):
        client.update_issue(str(issue.number), IssueFields(labels=frozenset({"no-such-label"})))

    assert fake.count_requests("PATCH") == 0
    assert "no-such-label" not in fake.known_labels


def test_unknown_label_is_created_by_github_when_creation_is_allowed(fake: FakeGitHub) -> None:
    issue = fake.seed_issue(title="t")
    github = make_client(fake, allow_create_labels=True)

    updated = github.update_issue(str(issue.number), IssueFields(labels=frozenset({"fresh"})))

    assert updated.labels == {"fresh"}
    assert "fresh" in fake.known_labels


def test_label_lookups_are_cached_and_refreshed_once_on_a_miss(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    first = fake.seed_issue(title="one")
    second = fake.seed_issue(title="two")
    client.update_issue(str(first.number), IssueFields(labels=frozenset({"bug"})))
    client.update_issue(str(second.number), IssueFields(labels=frozenset({"docs"})))
    assert fake.count_requests("GET", "/labels") == 1

    fake.known_labels.append("made-later")
    client.update_issue(str(first.number), IssueFields(labels=frozenset({"made-later"})))

    assert fake.count_requests("GET", "/labels") == 2
    assert fake.issues[first.number].labels == ["made-later"]


def test_unknown_milestone_is_refused_naming_it(fake: FakeGitHub, client: GitHubClient) -> None:
    issue = fake.seed_issue(title="t")

    with pytest.raises(ValidationFailedError, match="'v9'"):
        client.update_issue(str(issue.number), IssueFields(milestone="v9"))

    assert fake.count_requests("PATCH") == 0


def test_milestones_are_listed_with_state_all_once_and_cached(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    fake.known_milestones.append("old")
    fake.closed_milestones.add("old")
    first = fake.seed_issue(title="one")
    second = fake.seed_issue(title="two")

    client.update_issue(str(first.number), IssueFields(milestone="old"))
    client.update_issue(str(second.number), IssueFields(milestone="v2"))

    listings = [r for r in fake.requests if r.path.endswith("/milestones")]
    assert len(listings) == 1
    assert listings[0].query["state"] == ["all"]
    assert fake.issues[first.number].milestone == "old"
    assert fake.issues[second.number].milestone == "v2"


def test_unknown_assignee_is_a_validation_error_from_github(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    issue = fake.seed_issue(title="t")

    with pytest.raises(ValidationFailedError, match="nobody-here"):
        client.update_issue(str(issue.number), IssueFields(assignees=frozenset({"nobody-here"})))

    assert fake.issues[issue.number].assignees == []


# --- check_access -------------------------------------------------------------------------


def test_check_access_passes_for_a_readable_repository(client: GitHubClient) -> None:
    client.check_access()


def test_check_access_with_bad_token_says_the_token_was_rejected(fake: FakeGitHub) -> None:
    with pytest.raises(AuthenticationError, match="rejected the token"):
        make_client(fake, token="wrong").check_access()


def test_check_access_with_a_token_lacking_access_is_access_denied(fake: FakeGitHub) -> None:
    fake.denied_tokens.add("read-nothing")

    with pytest.raises(AccessDeniedError, match=f"may not read repository {REPO}"):
        make_client(fake, token="read-nothing").check_access()


def test_check_access_names_the_missing_repository(fake: FakeGitHub) -> None:
    with pytest.raises(NotFoundError, match="repository acme/nothing not found"):
        make_client(fake, repository="acme/nothing").check_access()


def test_check_access_on_an_unreachable_port_is_transient(fake: FakeGitHub) -> None:
    github = GitHubClient(
        base_url=f"http://127.0.0.1:{closed_port()}",
        repository=REPO,
        token=TOKEN,
        timeout=0.5,
        max_retries=1,
        backoff_factor=0.01,
    )

    with pytest.raises(TransientError, match="cannot connect"):
        github.check_access()


def test_check_access_over_tls_to_a_plain_http_server_is_a_permanent_tls_error(
    fake: FakeGitHub,
) -> None:
    github = make_client(fake, base_url=fake.api_url.replace("http://", "https://"), timeout=1.0)

    with pytest.raises(PermanentError, match="TLS"):
        github.check_access()


# --- hostile answers ----------------------------------------------------------------------


def test_a_malformed_issue_in_an_answer_is_transient_not_a_crash(
    fake: FakeGitHub, client: GitHubClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.seed_issue(title="t")
    monkeypatch.setattr(fake, "render_issue", lambda issue: {"id": "not-a-number", "title": None})

    with pytest.raises(TransientError, match="unexpected answer"):
        client.get_issue("1")
    with pytest.raises(TransientError, match="unexpected answer"):
        client.list_issues()


def test_a_label_differing_only_in_case_is_an_existing_label(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    issue = fake.seed_issue(title="t")

    updated = client.update_issue(str(issue.number), IssueFields(labels=frozenset({"BUG"})))

    assert updated.labels == {"bug"}  # GitHub keeps the label's own spelling
    assert "BUG" not in fake.known_labels

"""GitLabClient against FakeGitLab over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from integrations.fake_trackers.base import Fault, RecordedRequest, Response
from integrations.fake_trackers.gitlab import FakeGitLab
from integrations.providers import client_class
from integrations.providers.base import (
    AccessDeniedError,
    AuthenticationError,
    IssueFields,
    IssueState,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    RemoteIssue,
    TransientError,
    ValidationFailedError,
)
from integrations.providers.gitlab import GitLabClient

REPOSITORY = "acme/platform/widgets"
ENCODED = "acme%2Fplatform%2Fwidgets"


@pytest.fixture
def fake() -> Iterator[FakeGitLab]:
    with FakeGitLab(repository=REPOSITORY) as tracker:
        yield tracker


def make_client(fake: FakeGitLab, **options: Any) -> GitLabClient:
    options.setdefault("repository", fake.repository)
    options.setdefault("token", fake.token)
    options.setdefault("timeout", 2.0)
    options.setdefault("backoff_factor", 0.01)
    return GitLabClient(base_url=fake.url, **options)


@pytest.fixture
def client(fake: FakeGitLab) -> Iterator[GitLabClient]:
    gitlab = make_client(fake)
    yield gitlab
    gitlab.close()


def seed(fake: FakeGitLab, count: int) -> None:
    for n in range(count):
        fake.seed_issue(title=f"issue {n}")


def write_requests(fake: FakeGitLab) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]


def fake_state(fake: FakeGitLab, number: str) -> tuple[Any, ...]:
    issue = fake.issues[int(number)]
    return (
        issue.title,
        issue.body,
        issue.state,
        set(issue.labels),
        set(issue.assignees),
        issue.milestone,
    )


def remote_state(issue: RemoteIssue) -> tuple[Any, ...]:
    return (
        issue.title,
        issue.body,
        issue.state.value,
        set(issue.labels),
        set(issue.assignees),
        issue.milestone,
    )


def test_registry_resolves_gitlab_to_this_client() -> None:
    assert client_class("gitlab") is GitLabClient
    assert GitLabClient.max_page_size == 100


# --- listing ----------------------------------------------------------------------------------


def test_full_listing_reads_three_pages_of_100_with_one_request_each(
    fake: FakeGitLab, client: GitLabClient
) -> None:
    seed(fake, 250)
    fake.reset_requests()
    result = client.list_issues()
    assert len(result.issues) == 250
    assert {i.number for i in result.issues} == {str(n) for n in range(1, 251)}
    assert result.requests == 3
    assert fake.count_requests() == 3
    assert [r.query["page"] for r in fake.requests] == [["1"], ["2"], ["3"]]
    assert all(r.query["per_page"] == ["100"] for r in fake.requests)


def test_issue_pages_come_one_request_per_page(fake: FakeGitLab, client: GitLabClient) -> None:
    seed(fake, 201)
    fake.reset_requests()
    sizes = []
    for page in client.iter_issue_pages():
        sizes.append(len(page))
        assert fake.count_requests() == len(sizes)
    assert sizes == [100, 100, 1]


def test_listing_asks_for_changes_oldest_first_across_the_whole_project(
    fake: FakeGitLab, client: GitLabClient
) -> None:
    seed(fake, 1)
    since = fake.issues[1].updated_at - timedelta(seconds=5)
    client.list_issues(since=since)
    (request,) = fake.requests
    assert request.path == f"/api/v4/projects/{ENCODED}/issues"
    assert request.query == {
        "scope": ["all"],
        "order_by": ["updated_at"],
        "sort": ["asc"],
        "per_page": ["100"],
        "page": ["1"],
        "updated_after": [since.strftime("%Y-%m-%dT%H:%M:%SZ")],
    }
    assert request.headers["PRIVATE-TOKEN"] == fake.token


def test_since_returns_only_issues_changed_at_or_after_it(
    fake: FakeGitLab, client: GitLabClient
) -> None:
    seed(fake, 5)
    fake.advance_clock(3600)
    cursor = fake.now()
    fake.edit_issue(2, title="changed two", notify=False)
    fake.edit_issue(4, state="closed", notify=False)
    result = client.list_issues(since=cursor)
    assert [i.number for i in result.issues] == ["2", "4"]
    assert result.issues[0].title == "changed two"
    assert result.issues[1].state is IssueState.CLOSED


def test_listing_follows_x_next_page_when_totals_are_omitted(
    fake: FakeGitLab, client: GitLabClient
) -> None:
    fake.omit_totals = True  # GitLab's behaviour above 10,000 rows
    seed(fake, 230)
    fake.reset_requests()
    result = client.list_issues()
    assert len(result.issues) == 230
    assert fake.count_requests() == 3


class LinkOnlyGitLab(FakeGitLab):
    """Answers with a Link header alone, like keyset pagination."""

    def _paged(self, record: RecordedRequest, items: list[Any], render: Any) -> Response:
        response = super()._paged(record, items, render)
        for name in ("X-Page", "X-Per-Page", "X-Next-Page", "X-Prev-Page", "X-Total"):
            response.headers.pop(name, None)
        response.headers.pop("X-Total-Pages", None)
        return response


def test_listing_follows_the_link_header_when_x_next_page_is_absent() -> None:
    with LinkOnlyGitLab(repository=REPOSITORY) as fake:
        seed(fake, 205)
        fake.reset_requests()
        result = make_client(fake).list_issues()
        assert len(result.issues) == 205
        assert fake.count_requests() == 3


class ForeignLinkGitLab(FakeGitLab):
    def _paged(self, record: RecordedRequest, items: list[Any], render: Any) -> Response:
        response = super()._paged(record, items, render)
        response.headers.pop("X-Next-Page", None)
        response.headers["Link"] = (
            '<http://elsewhere.invalid/api/v4/projects/1/issues?page=2>; rel="next"'
        )
        return response


def test_a_next_link_to_another_host_is_refused_before_the_token_leaves() -> None:
    with ForeignLinkGitLab(repository=REPOSITORY) as fake:
        seed(fake, 3)
        with pytest.raises(TransientError, match="leaves"):
            make_client(fake).list_issues()
        assert fake.count_requests() == 1


def test_merge_requests_and_non_issue_work_items_are_not_listed(
    fake: FakeGitLab, client: GitLabClient
) -> None:
    fake.seed_issue(title="a real issue")
    fake.seed_issue(title="a merge request", is_pull_request=True)
    fake.seed_issue(title="a task")
    fake.seed_issue(title="an incident")
    fake.issue_types[3] = "task"
    fake.issue_types[4] = "incident"
    titles = {i.title for i in client.list_issues().issues}
    assert titles == {"a real issue", "an incident"}


def test_unchanged_listing_costs_one_conditional_request_answered_304(
    fake: FakeGitLab, client: GitLabClient
) -> None:
    seed(fake, 5)
    since = fake.issues[1].created_at
    first = client.list_issues(since=since)
    assert len(first.issues) == 5 and first.etag
    fake.reset_requests()
    second = client.list_issues(since=since, etag=first.etag)
    assert second.not_modified is True
    assert second.issues == []
    assert second.requests == 1
    assert fake.count_requests() == 1
    assert fake.requests[0].headers["If-None-Match"] == first.etag
    assert fake.requests[0].status == 304


def test_a_changed_listing_is_read_again_despite_the_stored_etag(
    fake: FakeGitLab, client: GitLabClient
) -> None:
    seed(fake, 5)
    since = fake.issues[1].created_at
    first = client.list_issues(since=since)
    fake.edit_issue(3, title="edited", notify=False)
    second = client.list_issues(since=since, etag=first.etag)
    assert second.not_modified is False
    assert "edited" in {i.title for i in second.issues}
    assert second.etag and second.etag != first.etag


def test_no_etag_is_kept_for_a_listing_of_several_pages(
    fake: FakeGitLab, client: GitLabClient
) -> None:
    # Changes land on the last page (oldest first): a 304 for page one would hide them.
    seed(fake, 150)
    assert client.list_issues().etag is None


# --- errors -----------------------------------------------------------------------------------


def test_429_raises_rate_limited_with_retry_after_and_is_not_retried(
    fake: FakeGitLab, client: GitLabClient
) -> None:
    seed(fake, 1)
    fake.inject(Fault(status=429, retry_after=2))
    with pytest.raises(RateLimitedError) as caught:
        client.list_issues()
    assert caught.value.retry_after == 2
    assert caught.value.status == 429
    assert caught.value.permanent is False
    assert fake.count_requests() == 1


def test_500_is_transient_and_the_next_call_succeeds(
    fake: FakeGitLab, client: GitLabClient
) -> None:
    seed(fake, 1)
    fake.inject(Fault(status=500))
    with pytest.raises(TransientError) as caught:
        client.get_issue("1")
    assert caught.value.status == 500 and not caught.value.permanent
    assert client.get_issue("1").title == "issue 0"


def test_503_is_retried_by_the_transport_until_it_succeeds(
    fake: FakeGitLab, client: GitLabClient
) -> None:
    seed(fake, 1)
    fake.inject(Fault(status=503, count=2))
    assert client.get_issue("1").title == "issue 0"
    assert fake.count_requests("GET") == 3
    assert client.requests_made == 1


def test_a_hang_beyond_the_timeout_is_a_transient_error(fake: FakeGitLab) -> None:
    seed(fake, 1)
    fake.inject(Fault(status=0, hang_seconds=1.0))
    gitlab = make_client(fake, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"no answer within 0\.3s"):
        gitlab.get_issue("1")
    assert time.monotonic() - started < 0.9


def test_a_wrong_token_is_a_permanent_authentication_error(fake: FakeGitLab) -> None:
    seed(fake, 1)
    with pytest.raises(AuthenticationError) as caught:
        make_client(fake, token="not-the-token").get_issue("1")
    assert caught.value.status == 401 and caught.value.permanent


def test_a_missing_issue_is_not_found(fake: FakeGitLab, client: GitLabClient) -> None:
    with pytest.raises(NotFoundError) as caught:
        client.get_issue("999")
    assert caught.value.status == 404


@pytest.mark.parametrize("number", ["", "abc", "0", "-3", "1/../2", "1.5"])
def test_a_number_that_is_no_iid_is_not_found_without_a_request(
    fake: FakeGitLab, client: GitLabClient, number: str
) -> None:
    with pytest.raises(NotFoundError):
        client.get_issue(number)
    assert fake.count_requests() == 0


def test_a_merge_request_is_not_an_issue(fake: FakeGitLab, client: GitLabClient) -> None:
    fake.seed_issue(title="MR", is_pull_request=True)
    with pytest.raises(NotFoundError):
        client.get_issue("1")


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "1", "iid": 1, "title": "x", "state": "opened"},
        {"id": 1, "iid": 1, "title": None, "state": "opened"},
        {"id": 1, "iid": 1, "title": "x", "state": "locked"},
        {"id": 1, "iid": 1, "title": "x", "state": "opened", "labels": "bug"},
        {"id": 1, "iid": 1, "title": "x", "state": "opened", "assignees": [{"name": "x"}]},
        {"id": 1, "iid": 1, "title": "x", "state": "opened", "milestone": "v1"},
        ["not", "an", "issue"],
    ],
)
def test_an_issue_answer_of_the_wrong_shape_is_transient(
    fake: FakeGitLab, client: GitLabClient, bad: Any
) -> None:
    seed(fake, 1)
    fake.issue_json = lambda issue: bad  # type: ignore[method-assign]
    with pytest.raises(TransientError, match="unexpected shape"):
        client.get_issue("1")
    with pytest.raises(TransientError):
        client.list_issues()


# --- create and update ------------------------------------------------------------------------


def test_create_round_trip_with_labels_assignees_and_milestone(
    fake: FakeGitLab, client: GitLabClient
) -> None:
    created = client.create_issue(
        IssueFields(
            title="Widgets melt ✨",
            body="at 40 °C",
            labels=frozenset({"bug", "docs"}),
            assignees=frozenset({"bob", "carol"}),
            milestone="v2",
        )
    )
    assert remote_state(created) == (
        "Widgets melt ✨",
        "at 40 °C",
        "open",
        {"bug", "docs"},
        {"bob", "carol"},
        "v2",
    )
    assert fake_state(fake, created.number) == remote_state(created)
    assert created.remote_url == f"{fake.url}/{REPOSITORY}/-/issues/{created.number}"
    (post,) = write_requests(fake)
    body = json.loads(post.body)
    assert post.path == f"/api/v4/projects/{ENCODED}/issues"
    assert body["labels"] == "bug,docs"
    assert body["assignee_ids"] == sorted([fake.user_id("bob"), fake.user_id("carol")])
    assert body["milestone_id"] == fake.milestone_id("v2")
    assert client.get_issue(created.number) == created


def test_creating_a_closed_issue_closes_it_with_a_second_call(
    fake: FakeGitLab, client: GitLabClient
) -> None:
    created = client.create_issue(IssueFields(title="born closed", state=IssueState.CLOSED))
    assert created.state is IssueState.CLOSED
    assert [r.method for r in write_requests(fake)] == ["POST", "PUT"]
    assert fake.issues[int(created.number)].state == "closed"


@pytest.mark.parametrize("title", [None, "", "   "])
def test_create_without_a_title_is_refused_before_any_request(
    fake: FakeGitLab, client: GitLabClient, title: str | None
) -> None:
    with pytest.raises(ValidationFailedError, match="title"):
        client.create_issue(IssueFields(title=title, body="x"))
    assert fake.count_requests() == 0


def test_update_round_trip_in_one_put(fake: FakeGitLab, client: GitLabClient) -> None:
    fake.seed_issue(title="old", body="old body", labels=["bug"], assignees=["alice"])
    fake.reset_requests()
    updated = client.update_issue(
        "1",
        IssueFields(
            title="new",
            body="new body",
            state=IssueState.CLOSED,
            labels=frozenset({"feature", "docs"}),
            assignees=frozenset({"bob"}),
            milestone="v1",
        ),
    )
    assert remote_state(updated) == (
        "new",
        "new body",
        "closed",
        {"feature", "docs"},
        {"bob"},
        "v1",
    )
    assert fake_state(fake, "1") == remote_state(updated)
    (put,) = write_requests(fake)
    assert json.loads(put.body) == {
        "title": "new",
        "description": "new body",
        "state_event": "close",
        "add_labels": "docs,feature",
        "remove_labels": "bug",
        "assignee_ids": [fake.user_id("bob")],
        "milestone_id": fake.milestone_id("v1"),
    }


def test_close_and_reopen_are_updates_of_state(fake: FakeGitLab, client: GitLabClient) -> None:
    fake.seed_issue(title="t")
    closed = client.update_issue("1", IssueFields(state=IssueState.CLOSED))
    assert closed.state is IssueState.CLOSED and fake.issues[1].state == "closed"
    reopened = client.update_issue("1", IssueFields(state=IssueState.OPEN))
    assert reopened.state is IssueState.OPEN and fake.issues[1].state == "open"
    bodies = [json.loads(r.body) for r in write_requests(fake)]
    assert bodies == [{"state_event": "close"}, {"state_event": "reopen"}]


def test_clearing_assignees_labels_and_milestone(fake: FakeGitLab, client: GitLabClient) -> None:
    fake.seed_issue(title="t", labels=["bug"], assignees=["alice", "bob"], milestone="v1")
    updated = client.update_issue(
        "1", IssueFields(labels=frozenset(), assignees=frozenset(), milestone=None)
    )
    assert (updated.labels, updated.assignees, updated.milestone) == (
        frozenset(),
        frozenset(),
        None,
    )
    assert fake_state(fake, "1")[3:] == (set(), set(), None)
    (put,) = write_requests(fake)
    assert json.loads(put.body) == {
        "remove_labels": "bug",
        "assignee_ids": [0],
        "milestone_id": 0,
    }


def test_an_update_that_changes_nothing_makes_no_write_request(
    fake: FakeGitLab, client: GitLabClient
) -> None:
    fake.seed_issue(title="same", body="b", labels=["bug"], assignees=["alice"], milestone="v1")
    before = fake.issues[1].updated_at
    result = client.update_issue(
        "1",
        IssueFields(
            title="same",
            body="b",
            state=IssueState.OPEN,
            labels=frozenset({"bug"}),
            assignees=frozenset({"ALICE"}),  # usernames are case-insensitive
            milestone="v1",
        ),
    )
    assert write_requests(fake) == []
    assert fake.count_requests() == 1
    assert result.title == "same" and fake.issues[1].updated_at == before
    assert client.update_issue("1", IssueFields()) == result
    assert write_requests(fake) == []


def test_only_changed_fields_are_sent(fake: FakeGitLab, client: GitLabClient) -> None:
    fake.seed_issue(title="keep", body="keep", labels=["bug"])
    client.update_issue("1", IssueFields(title="keep", body="changed", labels=frozenset({"bug"})))
    (put,) = write_requests(fake)
    assert json.loads(put.body) == {"description": "changed"}


def test_an_unknown_label_is_refused_by_name_and_nothing_is_written(
    fake: FakeGitLab, client: GitLabClient
) -> None:
    fake.seed_issue(title="t")
    with pytest.raises(ValidationFailedError, match="no-such-label"):
        client.update_issue("1", IssueFields(labels=frozenset({"bug", "no-such-label"})))
    with pytest.raises(ValidationFailedError, match="no-such-label"):
        client.create_issue(IssueFields(title="t", labels=frozenset({"no-such-label"})))
    assert write_requests(fake) == []
    assert "no-such-label" not in fake.known_labels


def test_unknown_labels_are_created_by_gitlab_when_the_connection_allows_it(
    fake: FakeGitLab,
) -> None:
    fake.seed_issue(title="t")
    gitlab = make_client(fake, allow_create_labels=True)
    updated = gitlab.update_issue("1", IssueFields(labels=frozenset({"brand-new"})))
    assert updated.labels == {"brand-new"}
    assert "brand-new" in fake.known_labels
    assert fake.count_requests(path_contains="/labels") == 0


def test_a_label_name_with_a_comma_cannot_be_sent(fake: FakeGitLab, client: GitLabClient) -> None:
    fake.seed_issue(title="t")
    with pytest.raises(ValidationFailedError, match="comma"):
        client.update_issue("1", IssueFields(labels=frozenset({"a,b"})))
    assert write_requests(fake) == []


def test_an_unknown_milestone_is_refused_by_name(fake: FakeGitLab, client: GitLabClient) -> None:
    fake.seed_issue(title="t")
    with pytest.raises(ValidationFailedError, match="v9-never"):
        client.update_issue("1", IssueFields(milestone="v9-never"))
    assert write_requests(fake) == []


def test_unknown_assignees_are_refused_by_name(fake: FakeGitLab, client: GitLabClient) -> None:
    fake.seed_issue(title="t")
    with pytest.raises(ValidationFailedError, match="mallory"):
        client.update_issue("1", IssueFields(assignees=frozenset({"alice", "mallory"})))
    assert write_requests(fake) == []


def test_a_member_query_matching_only_part_of_a_name_does_not_count(
    fake: FakeGitLab, client: GitLabClient
) -> None:
    fake.add_user("bobby")
    fake.seed_issue(title="t")
    with pytest.raises(ValidationFailedError, match=r"bobb\b"):
        client.update_issue("1", IssueFields(assignees=frozenset({"bobb"})))


def test_label_milestone_and_user_lookups_are_cached_across_pushes(
    fake: FakeGitLab, client: GitLabClient
) -> None:
    for _ in range(3):
        fake.seed_issue(title="t")
    for number in ("1", "2", "3"):
        client.update_issue(
            number,
            IssueFields(labels=frozenset({"bug"}), assignees=frozenset({"bob"}), milestone="v2"),
        )
    assert fake.count_requests("GET", "/labels") == 1
    assert fake.count_requests("GET", "/milestones") == 1
    assert fake.count_requests("GET", "/members/all") == 1
    assert fake.count_requests("PUT") == 3


def test_a_cache_miss_reloads_the_listing_once(fake: FakeGitLab, client: GitLabClient) -> None:
    fake.seed_issue(title="t")
    client.update_issue("1", IssueFields(labels=frozenset({"bug"}), milestone="v1"))
    fake.known_labels.append("added-later")
    fake.known_milestones.append("v3")
    updated = client.update_issue(
        "1", IssueFields(labels=frozenset({"added-later"}), milestone="v3")
    )
    assert (updated.labels, updated.milestone) == ({"added-later"}, "v3")
    assert fake.count_requests("GET", "/labels") == 2
    assert fake.count_requests("GET", "/milestones") == 2


def test_label_and_milestone_listings_follow_pages(fake: FakeGitLab, client: GitLabClient) -> None:
    fake.known_labels.extend(f"label-{n:03d}" for n in range(150))
    fake.known_milestones.extend(f"m-{n:03d}" for n in range(120))
    fake.seed_issue(title="t")
    updated = client.update_issue(
        "1", IssueFields(labels=frozenset({"label-149"}), milestone="m-000")
    )
    assert (updated.labels, updated.milestone) == ({"label-149"}, "m-000")
    assert fake.count_requests("GET", "/labels") == 2
    assert fake.count_requests("GET", "/milestones") == 2


# --- project addressing and access ------------------------------------------------------------


def test_project_paths_with_subgroups_are_url_encoded(
    fake: FakeGitLab, client: GitLabClient
) -> None:
    seed(fake, 1)
    client.check_access()
    client.get_issue("1")
    client.update_issue("1", IssueFields(labels=frozenset({"bug"})))
    paths = {r.path for r in fake.requests}
    assert paths == {
        f"/api/v4/projects/{ENCODED}",
        f"/api/v4/projects/{ENCODED}/issues/1",
        f"/api/v4/projects/{ENCODED}/labels",
    }


def test_a_numeric_project_id_addresses_the_same_project(fake: FakeGitLab) -> None:
    seed(fake, 3)
    gitlab = make_client(fake, repository=str(fake.project_id))
    gitlab.check_access()
    assert len(gitlab.list_issues().issues) == 3
    assert {r.path for r in fake.requests} == {
        f"/api/v4/projects/{fake.project_id}",
        f"/api/v4/projects/{fake.project_id}/issues",
    }


def test_a_base_url_that_already_ends_in_the_api_prefix_is_not_doubled(fake: FakeGitLab) -> None:
    seed(fake, 1)
    gitlab = GitLabClient(base_url=fake.url + "/api/v4/", repository=REPOSITORY, token=fake.token)
    assert gitlab.get_issue("1").number == "1"


def test_check_access_passes_for_a_readable_project(client: GitLabClient) -> None:
    client.check_access()


def test_check_access_names_a_bad_token(fake: FakeGitLab) -> None:
    with pytest.raises(AuthenticationError, match="rejected the token") as caught:
        make_client(fake, token="wrong").check_access()
    assert caught.value.status == 401


def test_check_access_names_a_missing_repository(fake: FakeGitLab) -> None:
    with pytest.raises(NotFoundError, match="repository acme/nope not found") as caught:
        make_client(fake, repository="acme/nope").check_access()
    assert caught.value.status == 404


def test_check_access_names_denied_access(fake: FakeGitLab) -> None:
    fake.inject(Fault(status=403))
    with pytest.raises(AccessDeniedError, match="may not read GitLab project"):
        make_client(fake).check_access()


def test_check_access_notices_disabled_issues(fake: FakeGitLab) -> None:
    fake.issues_enabled = False
    with pytest.raises(AccessDeniedError, match="issues are disabled"):
        make_client(fake).check_access()


def test_check_access_to_an_unreachable_port_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens there now.
    gitlab = GitLabClient(
        base_url=f"http://127.0.0.1:{port}",
        repository=REPOSITORY,
        token="t",
        timeout=0.5,
        max_retries=1,
        backoff_factor=0.01,
    )
    with pytest.raises(TransientError, match=f"cannot connect to http://127.0.0.1:{port}"):
        gitlab.check_access()


def test_an_empty_repository_is_refused_at_construction() -> None:
    with pytest.raises(PermanentError, match="empty"):
        GitLabClient(base_url="http://127.0.0.1:1", repository=" / ", token="t")


def test_check_access_over_tls_to_a_plain_http_server_is_a_permanent_tls_error(
    fake: FakeGitLab,
) -> None:
    gitlab = GitLabClient(
        base_url=f"https://127.0.0.1:{fake.port}",
        repository=REPOSITORY,
        token=fake.token,
        timeout=1.0,
        max_retries=0,
    )
    with pytest.raises(PermanentError, match="TLS error") as caught:
        gitlab.check_access()
    assert caught.value.permanent

"""GiteaClient against FakeGitea over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from integrations.fake_trackers.base import Fault
from integrations.fake_trackers.gitea import FakeGitea
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
from integrations.providers.gitea import GiteaClient
from integrations.providers.http import format_timestamp


@pytest.fixture
def fake() -> Iterator[FakeGitea]:
    with FakeGitea(webhook_secret="hook-secret") as tracker:
        yield tracker


def make_client(fake: FakeGitea, **overrides: object) -> GiteaClient:
    options: dict[str, object] = {
        "base_url": fake.url,
        "repository": fake.repository,
        "token": fake.token,
        "timeout": 2.0,
        "backoff_factor": 0.01,
    }
    options.update(overrides)
    return GiteaClient(**options)  # type: ignore[arg-type]


@pytest.fixture
def client(fake: FakeGitea) -> Iterator[GiteaClient]:
    gitea = make_client(fake)
    yield gitea
    gitea.close()


def issue_requests(fake: FakeGitea) -> list:
    return [r for r in fake.requests if r.path.endswith("/issues") and r.method == "GET"]


def writes(fake: FakeGitea) -> list[tuple[str, str]]:
    return [
        (r.method, r.path) for r in fake.requests if r.method in ("POST", "PATCH", "PUT", "DELETE")
    ]


# --- listing -----------------------------------------------------------------------------


def test_full_listing_makes_one_request_per_page_at_the_max_page_size(fake, client):
    fake.seed(120)
    fake.seed_issue(title="A pull request", is_pull_request=True)

    pages = list(client.iter_issue_pages())

    assert [len(page) for page in pages] == [50, 50, 20]
    listed = issue_requests(fake)
    assert len(listed) == 3
    assert [r.query["page"] for r in listed] == [["1"], ["2"], ["3"]]
    for request in listed:
        assert request.query["limit"] == ["50"]
        assert request.query["type"] == ["issues"]
        assert request.query["state"] == ["all"]
    numbers = [issue.number for page in pages for issue in page]
    assert sorted(numbers, key=int) == [str(n) for n in range(1, 121)]


def test_list_issues_returns_every_issue_once_oldest_update_first(fake, client):
    fake.seed(75)
    fake.edit_issue(3, title="touched last")

    result = client.list_issues()

    assert result.requests == 2
    assert len(result.issues) == 75
    stamps = [issue.updated_at for issue in result.issues]
    assert stamps == sorted(stamps)
    assert result.issues[-1].title == "touched last"


def test_pages_within_a_listing_are_sorted_oldest_update_first(fake, client):
    fake.seed(10)
    fake.edit_issue(1, body="newest")

    (page,) = list(client.iter_issue_pages())

    assert [i.updated_at for i in page] == sorted(i.updated_at for i in page)
    assert page[-1].number == "1"


def test_pagination_falls_back_to_x_total_count_when_a_proxy_strips_link(fake, client):
    class NoLinkGitea(FakeGitea):
        def link_header(self, record, page, pages):
            return ""

    with NoLinkGitea() as bare:
        bare.seed(101)
        gitea = make_client(bare)
        result = gitea.list_issues()
        gitea.close()
        assert len(result.issues) == 101
        assert len(issue_requests(bare)) == 3


def test_pull_requests_are_dropped_even_when_the_server_ignores_type(fake):
    class OldGitea(FakeGitea):
        @staticmethod
        def _query(record, name):
            return "" if name == "type" else FakeGitea._query(record, name)

    with OldGitea() as old:
        old.seed(3)
        old.seed_issue(title="PR", is_pull_request=True)
        gitea = make_client(old)
        titles = {issue.title for issue in gitea.list_issues().issues}
        gitea.close()
    assert len(titles) == 3
    assert "PR" not in titles


def test_since_is_sent_as_rfc3339_and_only_later_updates_are_listed(fake, client):
    fake.seed(6)
    fake.advance_clock(60)
    cursor = fake.now()
    fake.edit_issue(2, title="changed after the cursor")
    fake.edit_issue(5, state="closed")

    result = client.list_issues(since=cursor)

    assert sorted(issue.number for issue in result.issues) == ["2", "5"]
    assert issue_requests(fake)[-1].query["since"] == [format_timestamp(cursor)]


def test_since_in_the_future_lists_nothing_in_one_request(fake, client):
    fake.seed(4)
    result = client.list_issues(since=fake.now() + timedelta(days=1))
    assert result.issues == []
    assert result.requests == 1


def test_unchanged_listing_with_etag_is_one_request_answered_not_modified(fake, client):
    fake.seed(10)
    first = client.list_issues()
    assert first.etag
    fake.reset_requests()

    again = client.list_issues(etag=first.etag)

    assert again.not_modified is True
    assert again.issues == []
    assert again.requests == 1
    assert fake.count_requests() == 1
    assert fake.requests[0].headers.get("If-None-Match") == first.etag
    assert fake.requests[0].status == 304


def test_changed_listing_with_a_stale_etag_returns_the_new_state(fake, client):
    fake.seed(10)
    first = client.list_issues()
    fake.edit_issue(4, title="renamed in the tracker")

    again = client.list_issues(etag=first.etag)

    assert again.not_modified is False
    assert again.etag and again.etag != first.etag
    assert {i.number: i.title for i in again.issues}["4"] == "renamed in the tracker"


def test_multi_page_listing_returns_no_etag_because_page_one_cannot_vouch_for_page_two(
    fake, client
):
    fake.seed(60)
    assert client.list_issues().etag is None


# --- failures ------------------------------------------------------------------------------


def test_429_with_retry_after_raises_rate_limited_error(fake, client):
    fake.seed(2)
    fake.inject(Fault(status=429, retry_after=2))

    with pytest.raises(RateLimitedError) as caught:
        client.list_issues()

    assert caught.value.retry_after == 2.0
    assert caught.value.permanent is False
    assert fake.count_requests() == 1  # 429 is never retried behind the caller's back


def test_500_is_transient_and_the_next_attempt_succeeds(fake, client):
    fake.seed(2)
    fake.inject(Fault(status=500))

    with pytest.raises(TransientError) as caught:
        client.get_issue("1")
    assert caught.value.status == 500
    assert caught.value.permanent is False

    assert client.get_issue("1").number == "1"
    assert fake.count_requests() == 2


def test_503_is_retried_by_the_transport_and_the_caller_sees_success(fake, client):
    fake.seed(3)
    fake.inject(Fault(status=503, count=2))

    result = client.list_issues()

    assert len(result.issues) == 3
    assert result.requests == 1
    assert fake.count_requests("GET") == 3


def test_a_hanging_server_hits_the_client_timeout_as_a_transient_error(fake):
    fake.seed(1)
    gitea = make_client(fake, timeout=0.25)
    fake.inject(Fault(status=0, hang_seconds=0.8))
    started = time.monotonic()

    with pytest.raises(TransientError):
        gitea.get_issue("1")

    assert time.monotonic() - started < 0.75
    gitea.close()


def test_a_wrong_token_raises_a_permanent_authentication_error(fake):
    gitea = make_client(fake, token="not-the-token")
    with pytest.raises(AuthenticationError) as caught:
        gitea.list_issues()
    assert caught.value.status == 401
    assert caught.value.permanent is True
    gitea.close()


def test_the_token_is_sent_in_gitea_token_form(fake, client):
    fake.seed(1)
    client.get_issue("1")
    assert fake.requests[0].headers["Authorization"] == f"token {fake.token}"


def test_a_missing_issue_raises_not_found(fake, client):
    with pytest.raises(NotFoundError) as caught:
        client.get_issue("999")
    assert caught.value.status == 404


def test_get_issue_refuses_a_pull_request_number(fake, client):
    fake.seed_issue(title="PR", is_pull_request=True)
    with pytest.raises(NotFoundError, match="pull request"):
        client.get_issue("1")


@pytest.mark.parametrize("number", ["../../admin", "0", "-3", "", "1.5", "٣"])
def test_issue_numbers_that_are_not_positive_integers_are_refused_without_a_request(
    fake, client, number
):
    # NotFoundError, as on every provider (the conformance suite pins it for all).
    with pytest.raises(NotFoundError):
        client.get_issue(number)
    assert fake.count_requests() == 0


# --- writes ---------------------------------------------------------------------------------


def test_create_round_trip_sends_ids_and_returns_the_trackers_state(fake, client):
    created = client.create_issue(
        IssueFields(
            title="Crash on start",
            body="It crashes — ünïcode 🚀",
            labels=frozenset({"bug", "docs"}),
            assignees=frozenset({"bob", "carol"}),
            milestone="v2",
        )
    )

    stored = fake.issues[int(created.number)]
    assert (stored.title, stored.body) == ("Crash on start", "It crashes — ünïcode 🚀")
    assert created.labels == frozenset({"bug", "docs"}) == frozenset(stored.labels)
    assert created.assignees == frozenset({"bob", "carol"}) == frozenset(stored.assignees)
    assert created.milestone == "v2" == stored.milestone
    assert created.state is IssueState.OPEN
    assert created.external_id == str(stored.id)
    assert created.remote_url == f"{fake.url}/acme/widgets/issues/{created.number}"
    post = next(r for r in fake.requests if r.method == "POST")
    sent = json.loads(post.body)
    assert sent["labels"] == sorted([fake.label_id("bug"), fake.label_id("docs")])
    assert sent["milestone"] == fake.milestone_id("v2")
    assert sent["assignees"] == ["bob", "carol"]


def test_creating_a_closed_issue_is_a_single_post(fake, client):
    created = client.create_issue(IssueFields(title="Already done", state=IssueState.CLOSED))
    assert created.state is IssueState.CLOSED
    assert fake.issues[int(created.number)].state == "closed"
    assert writes(fake) == [("POST", "/api/v1/repos/acme/widgets/issues")]


def test_create_needs_a_title(fake, client):
    with pytest.raises(ValidationFailedError):
        client.create_issue(IssueFields(body="no title"))
    assert fake.count_requests() == 0


def test_close_and_reopen_are_state_updates(fake, client):
    issue = fake.seed_issue(title="Open me")

    closed = client.update_issue(str(issue.number), IssueFields(state=IssueState.CLOSED))
    assert closed.state is IssueState.CLOSED
    assert fake.issues[issue.number].state == "closed"

    reopened = client.update_issue(str(issue.number), IssueFields(state=IssueState.OPEN))
    assert reopened.state is IssueState.OPEN
    assert fake.issues[issue.number].state == "open"
    patches = [json.loads(r.body) for r in fake.requests if r.method == "PATCH"]
    assert patches == [{"state": "closed"}, {"state": "open"}]


def test_update_changes_labels_by_delta_then_patches_the_rest_and_returns_the_final_state(
    fake, client
):
    issue = fake.seed_issue(title="Old", labels=["bug"], assignees=["alice"], milestone="v1")

    result = client.update_issue(
        str(issue.number),
        IssueFields(
            title="New",
            body="new body",
            labels=frozenset({"feature", "docs"}),
            assignees=frozenset({"bob"}),
            milestone="v2",
        ),
    )

    prefix = f"/api/v1/repos/acme/widgets/issues/{issue.number}"
    assert writes(fake) == [
        ("DELETE", f"{prefix}/labels/{fake.label_id('bug')}"),
        ("POST", f"{prefix}/labels"),
        ("PATCH", prefix),
    ]
    stored = fake.issues[issue.number]
    assert result.labels == frozenset(stored.labels) == frozenset({"feature", "docs"})
    assert result.assignees == frozenset(stored.assignees) == frozenset({"bob"})
    assert (result.title, result.body, result.milestone) == ("New", "new body", "v2")
    assert result.updated_at == stored.updated_at  # the state after the LAST call
    patch = json.loads(next(r.body for r in fake.requests if r.method == "PATCH"))
    assert patch == {
        "title": "New",
        "body": "new body",
        "assignees": ["bob"],
        "milestone": fake.milestone_id("v2"),
    }


def test_only_changed_fields_are_patched(fake, client):
    issue = fake.seed_issue(title="Same", body="old", labels=["bug"])
    client.update_issue(
        str(issue.number), IssueFields(title="Same", body="new", labels=frozenset({"bug"}))
    )
    assert writes(fake) == [("PATCH", f"/api/v1/repos/acme/widgets/issues/{issue.number}")]
    assert json.loads(fake.requests[-1].body) == {"body": "new"}


def test_clearing_the_milestone_patches_zero(fake, client):
    issue = fake.seed_issue(title="With milestone", milestone="v1")
    result = client.update_issue(str(issue.number), IssueFields(milestone=None))
    assert result.milestone is None
    assert fake.issues[issue.number].milestone is None
    assert json.loads(fake.requests[-1].body) == {"milestone": 0}


def test_clearing_labels_and_assignees_sends_empty_lists(fake, client):
    issue = fake.seed_issue(title="Busy", labels=["bug", "docs"], assignees=["bob"])
    result = client.update_issue(
        str(issue.number), IssueFields(labels=frozenset(), assignees=frozenset())
    )
    assert result.labels == frozenset() and result.assignees == frozenset()
    assert fake.issues[issue.number].labels == [] and fake.issues[issue.number].assignees == []
    removed = sorted(r.path.rsplit("/", 1)[1] for r in fake.requests if r.method == "DELETE")
    assert removed == sorted(str(fake.label_id(n)) for n in ("bug", "docs"))
    bodies = [json.loads(r.body) for r in fake.requests if r.method == "PATCH"]
    assert bodies == [{"assignees": []}]


def test_a_labels_only_update_is_one_read_and_one_post(fake, client):
    issue = fake.seed_issue(title="Labels", labels=["bug"])
    result = client.update_issue(str(issue.number), IssueFields(labels=frozenset({"bug", "docs"})))
    assert result.labels == frozenset({"bug", "docs"})
    assert [r.method for r in fake.requests if "/labels" not in r.path or r.method == "POST"] == [
        "GET",
        "POST",
    ]


def test_an_update_that_changes_nothing_makes_no_write_request(fake, client):
    issue = fake.seed_issue(
        title="Stable", body="b", labels=["bug"], assignees=["bob"], milestone="v1"
    )
    fake.reset_requests()

    result = client.update_issue(
        str(issue.number),
        IssueFields(
            title="Stable",
            body="b",
            state=IssueState.OPEN,
            labels=frozenset({"bug"}),
            assignees=frozenset({"bob"}),
            milestone="v1",
        ),
    )

    assert writes(fake) == []
    assert fake.count_requests() == 1
    assert result.title == "Stable"
    assert len(fake.sent_webhooks) == 0


def test_an_empty_update_only_reads_the_issue(fake, client):
    issue = fake.seed_issue(title="Untouched")
    result = client.update_issue(str(issue.number), IssueFields())
    assert result.title == "Untouched"
    assert [r.method for r in fake.requests] == ["GET"]


def test_an_empty_title_is_refused_before_any_request(fake, client):
    issue = fake.seed_issue(title="Keep")
    fake.reset_requests()
    with pytest.raises(ValidationFailedError):
        client.update_issue(str(issue.number), IssueFields(title=""))
    assert fake.count_requests() == 0


def test_an_unknown_label_raises_a_validation_error_naming_it(fake, client):
    issue = fake.seed_issue(title="Labels")
    with pytest.raises(ValidationFailedError, match="'no-such-label'"):
        client.update_issue(
            str(issue.number), IssueFields(labels=frozenset({"bug", "no-such-label"}))
        )
    assert writes(fake) == []
    assert "no-such-label" not in fake.known_labels


def test_an_unknown_label_is_created_when_the_connection_allows_it(fake):
    gitea = make_client(fake, allow_create_labels=True)
    created = gitea.create_issue(
        IssueFields(title="New label", labels=frozenset({"bug", "needs-triage"}))
    )
    gitea.close()
    assert created.labels == frozenset({"bug", "needs-triage"})
    assert "needs-triage" in fake.known_labels
    label_post = next(r for r in fake.requests if r.method == "POST" and r.path.endswith("/labels"))
    assert json.loads(label_post.body)["name"] == "needs-triage"


def test_an_unknown_milestone_raises_a_validation_error_naming_it(fake, client):
    issue = fake.seed_issue(title="Milestone")
    with pytest.raises(ValidationFailedError, match="'v9'"):
        client.update_issue(str(issue.number), IssueFields(milestone="v9"))
    assert writes(fake) == []


def test_an_unknown_assignee_is_refused_by_gitea_as_a_validation_error(fake, client):
    issue = fake.seed_issue(title="Assign")
    with pytest.raises(ValidationFailedError, match="mallory"):
        client.update_issue(str(issue.number), IssueFields(assignees=frozenset({"mallory"})))


def test_label_and_milestone_listings_are_cached_per_client(fake, client):
    for n in range(3):
        client.create_issue(
            IssueFields(title=f"cached {n}", labels=frozenset({"bug"}), milestone="v1")
        )
    assert fake.count_requests("GET", "/labels") == 1
    assert fake.count_requests("GET", "/milestones") == 1


def test_a_label_missing_from_the_cache_triggers_one_refresh(fake, client):
    client.create_issue(IssueFields(title="warm", labels=frozenset({"bug"})))
    fake.label_id("added-later")  # a label created in the tracker after we cached

    client.create_issue(IssueFields(title="uses it", labels=frozenset({"added-later"})))

    assert fake.count_requests("GET", "/labels") == 2


def test_a_stale_cached_label_id_is_re_resolved(fake, client):
    issue = fake.seed_issue(title="Stale")
    client.update_issue(str(issue.number), IssueFields(labels=frozenset({"docs"})))
    fake.delete_label("docs")
    fake.label_id("docs")  # re-created in the tracker under a new id

    result = client.update_issue(str(issue.number), IssueFields(labels=frozenset({"docs"})))

    assert result.labels == frozenset({"docs"})
    assert fake.issues[issue.number].labels == ["docs"]
    assert fake.count_requests("GET", "/labels") == 2


# --- check_access ------------------------------------------------------------------------


def test_check_access_passes_with_one_repository_read(fake, client):
    client.check_access()
    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/api/v1/repos/acme/widgets")]


def test_check_access_with_a_bad_token_says_the_token_was_rejected(fake):
    gitea = make_client(fake, token="wrong")
    with pytest.raises(AuthenticationError, match="rejected the API token"):
        gitea.check_access()
    gitea.close()


def test_check_access_names_a_repository_that_does_not_exist(fake):
    gitea = make_client(fake, repository="acme/nope")
    with pytest.raises(NotFoundError, match="repository acme/nope not found"):
        gitea.check_access()
    gitea.close()


def test_check_access_without_the_scope_to_read_raises_access_denied(fake, client):
    fake.token_scopes_ok = False
    with pytest.raises(AccessDeniedError, match="may not read repository acme/widgets"):
        client.check_access()


def test_check_access_reports_disabled_issues(fake, client):
    fake.has_issues = False
    with pytest.raises(PermanentError, match="issues disabled"):
        client.check_access()


def test_check_access_on_a_closed_port_is_transient_and_says_unreachable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gitea = GiteaClient(
        base_url=f"http://127.0.0.1:{port}",
        repository="acme/widgets",
        token="t",
        timeout=0.5,
        max_retries=1,
        backoff_factor=0.01,
    )
    with pytest.raises(TransientError, match="unreachable"):
        gitea.check_access()
    gitea.close()


def test_check_access_over_https_to_a_plain_http_server_is_a_permanent_tls_error(fake):
    gitea = make_client(fake, base_url=f"https://127.0.0.1:{fake.port}", max_retries=0)
    with pytest.raises(PermanentError, match="TLS error"):
        gitea.check_access()
    gitea.close()


def test_check_access_after_a_hang_says_the_server_did_not_answer(fake):
    gitea = make_client(fake, timeout=0.2)
    fake.inject(Fault(status=0, hang_seconds=0.6))
    with pytest.raises(TransientError, match=r"did not answer within 0\.2s"):
        gitea.check_access()
    gitea.close()


def test_a_repository_that_is_not_owner_slash_name_is_refused():
    with pytest.raises(ValidationFailedError, match="owner/name"):
        GiteaClient(base_url="http://127.0.0.1:1", repository="just-a-name", token="t")


# --- URLs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/", "/api/v1", "/api/v1/"])
def test_the_client_accepts_the_web_root_with_or_without_slash_or_api_suffix(fake, suffix):
    fake.seed(1)
    gitea = make_client(fake, base_url=fake.url + suffix)
    issue = gitea.get_issue("1")
    gitea.close()
    assert issue.remote_url == f"{fake.url}/acme/widgets/issues/1"
    assert fake.requests[-1].path == "/api/v1/repos/acme/widgets/issues/1"

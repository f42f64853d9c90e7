"""FakeGitHub behaves like GitHub where the client and the engine can tell the difference."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from integrations.fake_trackers.base import FakeIssue, Fault, OutgoingWebhook
from integrations.fake_trackers.github import FakeGitHub
from integrations.providers.base import EventKind, IssueFields, IssueState
from integrations.providers.github import GitHubClient, GitHubWebhooks
from tests.shared_data import REPO_ROOT

REPO = "acme/widgets"
TOKEN = "fake-token"
SECRET = "hook-secret"
VERIFIER = GitHubWebhooks()


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    tracker = FakeGitHub(repository=REPO, token=TOKEN, webhook_secret=SECRET)
    tracker.webhook_sink = lambda hook: None  # recorded in sent_webhooks; nothing to post to
    tracker.start()
    yield tracker
    tracker.stop()


@pytest.fixture
def client(fake: FakeGitHub) -> Iterator[GitHubClient]:
    github = GitHubClient(
        base_url=fake.api_url, repository=REPO, token=TOKEN, timeout=2.0, backoff_factor=0.01
    )
    yield github
    github.close()


def api_get(fake: FakeGitHub, path: str, **headers: str) -> requests.Response:
    return requests.get(
        f"{fake.api_url}{path}",
        headers={"Authorization": f"Bearer {TOKEN}", **headers},
        timeout=5,
    )


def parsed(hook: OutgoingWebhook) -> Any:
    return VERIFIER.parse(event=hook.event, payload=json.loads(hook.body), base_url="")


def assert_matches_fake(event_issue: Any, held: FakeIssue) -> None:
    assert event_issue is not None
    assert event_issue.title == held.title
    assert event_issue.body == held.body
    assert event_issue.state.value == held.state
    assert event_issue.labels == frozenset(held.labels)
    assert event_issue.assignees == frozenset(held.assignees)
    assert event_issue.milestone == held.milestone
    assert event_issue.updated_at == held.updated_at


# --- webhooks -----------------------------------------------------------------------------


def test_an_api_update_sends_one_issues_event_per_kind_of_change(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    issue = fake.seed_issue(title="t", labels=["bug"], assignees=["alice"])
    client.update_issue(
        str(issue.number),
        IssueFields(
            title="t2",
            state=IssueState.CLOSED,
            labels=frozenset({"docs", "feature"}),
            assignees=frozenset({"bob"}),
            milestone="v1",
        ),
    )

    actions = sorted(json.loads(h.body)["action"] for h in fake.sent_webhooks)

    assert actions == sorted(
        [
            "edited",
            "closed",
            "labeled",
            "labeled",
            "unlabeled",
            "assigned",
            "unassigned",
            "milestoned",
        ]
    )
    edited = next(json.loads(h.body) for h in fake.sent_webhooks if b'"edited"' in h.body)
    assert edited["changes"] == {"title": {"from": "t"}}
    labeled = {
        json.loads(h.body)["label"]["name"]
        for h in fake.sent_webhooks
        if json.loads(h.body)["action"] == "labeled"
    }
    assert labeled == {"docs", "feature"}
    assert {json.loads(h.body)["sender"]["login"] for h in fake.sent_webhooks} == {"sync-bot"}


def test_every_echo_of_an_api_write_verifies_and_carries_the_final_state(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    created = client.create_issue(IssueFields(title="new", labels=frozenset({"bug"})))
    client.update_issue(
        created.number,
        IssueFields(body="more", assignees=frozenset({"carol"}), state=IssueState.CLOSED),
    )
    held = fake.issues[int(created.number)]

    assert len(fake.sent_webhooks) == 4  # opened, edited, closed, assigned
    for hook in fake.sent_webhooks:
        assert VERIFIER.verify(secret=SECRET, body=hook.body, headers=hook.headers, url="")
        assert hook.headers["X-GitHub-Event"] == "issues"
    last = parsed(fake.sent_webhooks[-1])
    assert last.kind is EventKind.ISSUE
    assert last.repository == REPO
    assert_matches_fake(last.issue, held)
    opened = parsed(fake.sent_webhooks[0])
    assert opened.action == "opened"
    assert opened.issue.labels == {"bug"}


def test_edits_made_in_the_tracker_send_webhooks_from_the_human(fake: FakeGitHub) -> None:
    issue = fake.seed_issue(title="t", body="b", milestone="v1", assignees=["bob"])

    fake.edit_issue(issue.number, body="b2", labels=["docs"], milestone=None, assignees=[])

    events = [parsed(h) for h in fake.sent_webhooks]
    assert sorted(e.action for e in events) == ["demilestoned", "edited", "labeled", "unassigned"]
    for event in events:
        assert_matches_fake(event.issue, fake.issues[issue.number])
    payloads = [json.loads(h.body) for h in fake.sent_webhooks]
    assert {p["sender"]["login"] for p in payloads} == {"alice"}
    demilestoned = next(p for p in payloads if p["action"] == "demilestoned")
    assert demilestoned["milestone"]["title"] == "v1"  # names the milestone it left
    unassigned = next(p for p in payloads if p["action"] == "unassigned")
    assert unassigned["assignee"]["login"] == "bob"


def test_close_and_reopen_in_the_tracker_send_closed_and_reopened(fake: FakeGitHub) -> None:
    issue = fake.seed_issue(title="t")

    fake.edit_issue(issue.number, state="closed")
    fake.edit_issue(issue.number, state="open")

    payloads = [json.loads(h.body) for h in fake.sent_webhooks]
    assert [p["action"] for p in payloads] == ["closed", "reopened"]
    assert payloads[0]["issue"]["state_reason"] == "completed"
    assert payloads[0]["issue"]["closed_at"] is not None
    assert payloads[1]["issue"]["state_reason"] == "reopened"
    assert payloads[1]["issue"]["closed_at"] is None


def test_opened_deleted_and_commented_events_parse_to_the_right_kinds(fake: FakeGitHub) -> None:
    issue = fake.seed_issue(title="hello", notify=True)
    fake.add_comment(issue.number, "a comment ✓", author="carol")
    fake.delete_issue(issue.number)

    events = [parsed(h) for h in fake.sent_webhooks]

    assert [(e.kind, e.action) for e in events] == [
        (EventKind.ISSUE, "opened"),
        (EventKind.COMMENT, "created"),
        (EventKind.ISSUE_DELETED, "deleted"),
    ]
    assert events[1].comment.body == "a comment ✓"
    assert events[1].comment.author == "carol"
    assert events[2].issue_number == str(issue.number)
    assert events[2].issue_external_id == str(issue.id)


def test_webhooks_are_posted_with_githubs_headers_to_the_webhook_url() -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers.items()), body))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/github/"
    try:
        with FakeGitHub(repository=REPO, token=TOKEN, webhook_url=url, webhook_secret=SECRET) as gh:
            gh.seed_issue(title="posted", notify=True)
            deadline = time.monotonic() + 5
            while not received and time.monotonic() < deadline:
                time.sleep(0.01)
    finally:
        server.shutdown()
        server.server_close()

    assert len(received) == 1
    headers, body = received[0]
    assert headers["X-GitHub-Event"] == "issues"
    assert headers["User-Agent"].startswith("GitHub-Hookshot/")
    assert headers["Content-Type"] == "application/json"
    assert headers["X-GitHub-Hook-Installation-Target-Type"] == "repository"
    assert len(headers["X-GitHub-Delivery"]) == 36
    assert headers["X-Hub-Signature"].startswith("sha1=")
    assert VERIFIER.verify(secret=SECRET, body=body, headers=headers, url=url)
    assert json.loads(body)["issue"]["title"] == "posted"


def test_without_a_secret_deliveries_are_unsigned_as_on_github() -> None:
    with FakeGitHub(repository=REPO, token=TOKEN) as gh:
        gh.webhook_sink = lambda hook: None
        gh.seed_issue(title="unsigned", notify=True)
        hook = gh.sent_webhooks[0]

    assert "X-Hub-Signature-256" not in hook.headers
    assert not VERIFIER.verify(secret=SECRET, body=hook.body, headers=hook.headers, url="")


def test_a_write_that_changes_nothing_sends_no_webhook(fake: FakeGitHub) -> None:
    issue = fake.seed_issue(title="same", labels=["bug"])
    before = fake.issues[issue.number].updated_at

    answer = requests.patch(
        f"{fake.api_url}/repos/{REPO}/issues/{issue.number}",
        json={"title": "same", "labels": ["bug"]},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )

    assert answer.status_code == 200
    assert fake.sent_webhooks == []
    assert fake.issues[issue.number].updated_at == before


def test_base_coarse_actions_are_refused_by_build_webhook(fake: FakeGitHub) -> None:
    issue = fake.seed_issue(title="t")
    with pytest.raises(ValueError, match="label_updated"):
        fake.build_webhook(issue, "label_updated")


# --- rate limits --------------------------------------------------------------------------


def test_every_answer_carries_the_rate_limit_headers(fake: FakeGitHub) -> None:
    fake.inject(Fault(status=500))
    answers = [
        api_get(fake, f"/repos/{REPO}"),  # the injected 500
        api_get(fake, f"/repos/{REPO}"),
        api_get(fake, f"/repos/{REPO}/issues/99"),
        requests.get(f"{fake.api_url}/repos/{REPO}", timeout=5),  # no token: 401
    ]

    assert [a.status_code for a in answers] == [500, 200, 404, 401]
    for answer in answers:
        assert answer.headers["x-ratelimit-limit"] == "5000"
        assert answer.headers["x-ratelimit-resource"] == "core"
        assert int(answer.headers["x-ratelimit-reset"]) > time.time()
    assert [int(a.headers["x-ratelimit-used"]) for a in answers] == [1, 2, 3, 4]
    assert answers[-1].headers["x-ratelimit-remaining"] == "4996"


def test_a_304_does_not_spend_the_rate_limit(fake: FakeGitHub) -> None:
    fake.seed_issue(title="t")
    first = api_get(fake, f"/repos/{REPO}/issues/1")

    second = api_get(fake, f"/repos/{REPO}/issues/1", **{"If-None-Match": first.headers["ETag"]})

    assert second.status_code == 304
    assert second.headers["x-ratelimit-remaining"] == first.headers["x-ratelimit-remaining"]


def test_an_exhausted_budget_answers_403_until_the_reset(fake: FakeGitHub) -> None:
    fake.exhaust_rate_limit(reset_in=1)

    blocked = api_get(fake, f"/repos/{REPO}")
    time.sleep(max(0.0, int(blocked.headers["x-ratelimit-reset"]) - time.time()) + 0.05)
    after_reset = api_get(fake, f"/repos/{REPO}")

    assert blocked.status_code == 403
    assert blocked.headers["x-ratelimit-remaining"] == "0"
    assert "rate limit" in blocked.json()["message"]
    assert after_reset.status_code == 200
    assert after_reset.headers["x-ratelimit-remaining"] == "4999"


def test_an_unsupported_api_version_is_refused(fake: FakeGitHub) -> None:
    answer = api_get(fake, f"/repos/{REPO}", **{"X-GitHub-Api-Version": "1999-01-01"})
    assert answer.status_code == 400


# --- listing ------------------------------------------------------------------------------


def test_list_defaults_to_open_issues_and_30_per_page_like_github(fake: FakeGitHub) -> None:
    for n in range(50):
        fake.seed_issue(title=f"i{n}", state="closed" if n % 4 == 0 else "open")

    answer = api_get(fake, f"/repos/{REPO}/issues")

    assert len(answer.json()) == 30
    assert {i["state"] for i in answer.json()} == {"open"}
    assert 'rel="next"' in answer.headers["Link"]


def test_middle_page_links_to_first_prev_next_and_last(fake: FakeGitHub) -> None:
    for n in range(250):
        fake.seed_issue(title=f"i{n}")

    answer = api_get(fake, f"/repos/{REPO}/issues?per_page=100&page=2&state=all")

    links = requests.utils.parse_header_links(answer.headers["Link"])
    rels = {link["rel"]: link["url"] for link in links}
    assert set(rels) == {"first", "prev", "next", "last"}
    assert "page=3" in rels["next"] and "page=3" in rels["last"] and "per_page=100" in rels["next"]
    assert len(answer.json()) == 100


def test_per_page_is_capped_at_100(fake: FakeGitHub) -> None:
    for n in range(120):
        fake.seed_issue(title=f"i{n}")

    answer = api_get(fake, f"/repos/{REPO}/issues?per_page=500")

    assert len(answer.json()) == 100


def test_a_single_page_has_no_link_header(fake: FakeGitHub) -> None:
    fake.seed_issue(title="only")
    assert "Link" not in api_get(fake, f"/repos/{REPO}/issues").headers


def test_list_filters_by_labels_milestone_and_assignee(fake: FakeGitHub) -> None:
    fake.seed_issue(title="a", labels=["bug", "docs"], milestone="v2", assignees=["bob"])
    fake.seed_issue(title="b", labels=["bug"])
    fake.seed_issue(title="c")

    def titles(query: str) -> set[str]:
        return {i["title"] for i in api_get(fake, f"/repos/{REPO}/issues?{query}").json()}

    assert titles("labels=bug") == {"a", "b"}
    assert titles("labels=BUG,docs") == {"a"}
    assert titles("milestone=2") == {"a"}
    assert titles("milestone=none") == {"b", "c"}
    assert titles("assignee=bob") == {"a"}
    assert titles("assignee=none") == {"b", "c"}


def test_list_sorts_by_updated_ascending_when_asked(fake: FakeGitHub) -> None:
    first = fake.seed_issue(title="first")
    fake.seed_issue(title="second")
    fake.edit_issue(first.number, notify=False, body="touched")

    answer = api_get(fake, f"/repos/{REPO}/issues?sort=updated&direction=asc")

    assert [i["title"] for i in answer.json()] == ["second", "first"]


def test_bad_state_filter_is_a_422_validation_failure(fake: FakeGitHub) -> None:
    answer = api_get(fake, f"/repos/{REPO}/issues?state=merged")
    assert answer.status_code == 422
    assert answer.json()["message"] == "Validation Failed"


def test_repository_names_are_case_insensitive_and_others_are_404(fake: FakeGitHub) -> None:
    assert api_get(fake, "/repos/ACME/Widgets").status_code == 200
    missing = api_get(fake, "/repos/acme/other")
    assert missing.status_code == 404
    assert missing.json()["message"] == "Not Found"


# --- labels and milestones ----------------------------------------------------------------


def test_an_issue_write_with_an_unknown_label_creates_it_matching_case_insensitively(
    fake: FakeGitHub,
) -> None:
    issue = fake.seed_issue(title="t")

    answer = requests.patch(
        f"{fake.api_url}/repos/{REPO}/issues/{issue.number}",
        json={"labels": ["BUG", "brand-new"]},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )

    assert sorted(label["name"] for label in answer.json()["labels"]) == ["brand-new", "bug"]
    assert "brand-new" in fake.known_labels


def test_labels_and_milestones_can_be_created_once(fake: FakeGitHub) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    base = f"{fake.api_url}/repos/{REPO}"

    label = requests.post(f"{base}/labels", json={"name": "ops"}, headers=auth, timeout=5)
    again = requests.post(f"{base}/labels", json={"name": "OPS"}, headers=auth, timeout=5)
    milestone = requests.post(f"{base}/milestones", json={"title": "v3"}, headers=auth, timeout=5)

    assert label.status_code == 201 and label.json()["name"] == "ops"
    assert again.status_code == 422
    assert milestone.status_code == 201 and milestone.json()["number"] == 3
    assert [m["title"] for m in api_get(fake, f"/repos/{REPO}/milestones").json()] == [
        "v1",
        "v2",
        "v3",
    ]


def test_closed_milestones_are_listed_only_with_state_closed_or_all(fake: FakeGitHub) -> None:
    fake.closed_milestones.add("v1")

    def titles(query: str) -> list[str]:
        return [m["title"] for m in api_get(fake, f"/repos/{REPO}/milestones{query}").json()]

    assert titles("") == ["v2"]
    assert titles("?state=closed") == ["v1"]
    assert titles("?state=all") == ["v1", "v2"]


# --- command line -------------------------------------------------------------------------


def test_command_line_seeds_prints_url_and_token_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "integrations.fake_trackers.github",
            "--port",
            "0",
            "--seed",
            "7",
            "--token",
            "cli-token",
            "--secret",
            "s",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        token_line = process.stdout.readline()
        url = first.rsplit(" at ", 1)[1].strip()
        answer = requests.get(
            f"{url}/repos/acme/widgets/issues?state=all",
            headers={"Authorization": "Bearer cli-token"},
            timeout=5,
        )
        assert url.startswith("http://127.0.0.1:")
        assert token_line.strip() == "token: cli-token"
        assert len(answer.json()) == 7
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=5)
    assert code == 0

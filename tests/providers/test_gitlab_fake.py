"""FakeGitLab: documented shapes and routes, headers, auth, webhooks, and the command line.

There is no GitLab OpenAPI document in /work/shared/specs, so the fake is checked against
the documented REST API v4 written down here: the issue keys and types, and a table of the
routes (method + path template) and list parameters the client may use.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from integrations.fake_trackers.base import Fault, OutgoingWebhook
from integrations.fake_trackers.gitlab import FakeGitLab
from integrations.providers.base import EventKind, IssueFields, IssueState, WebhookEvent
from integrations.providers.gitlab import GitLabClient, GitLabWebhooks
from tests.shared_data import REPO_ROOT, SHARED_DIR, shared_available

SECRET = "hook-secret-ü"
WEBHOOKS = GitLabWebhooks()

# GitLab REST API v4, as documented (docs.gitlab.com/api/issues, /labels, /milestones, /members,
# /projects, /users): what the client may call, and the list parameters it may send.
DOCUMENTED_ROUTES: list[tuple[str, str, frozenset[str]]] = [
    ("GET", "/api/v4/projects/{id}", frozenset()),
    (
        "GET",
        "/api/v4/projects/{id}/issues",
        frozenset(
            {
                "scope",
                "state",
                "updated_after",
                "updated_before",
                "created_after",
                "created_before",
                "order_by",
                "sort",
                "labels",
                "per_page",
                "page",
            }
        ),
    ),
    ("POST", "/api/v4/projects/{id}/issues", frozenset()),
    ("GET", "/api/v4/projects/{id}/issues/{iid}", frozenset()),
    ("PUT", "/api/v4/projects/{id}/issues/{iid}", frozenset()),
    ("DELETE", "/api/v4/projects/{id}/issues/{iid}", frozenset()),
    ("GET", "/api/v4/projects/{id}/labels", frozenset({"search", "per_page", "page"})),
    ("POST", "/api/v4/projects/{id}/labels", frozenset()),
    (
        "GET",
        "/api/v4/projects/{id}/milestones",
        frozenset({"title", "search", "state", "include_ancestors", "per_page", "page"}),
    ),
    ("POST", "/api/v4/projects/{id}/milestones", frozenset()),
    ("GET", "/api/v4/projects/{id}/members/all", frozenset({"query", "per_page", "page"})),
    ("GET", "/api/v4/users", frozenset({"username", "search", "per_page", "page"})),
]
# The body keys each write route documents.
DOCUMENTED_BODIES = {
    ("POST", "/api/v4/projects/{id}/issues"): frozenset(
        {"title", "description", "labels", "assignee_ids", "milestone_id", "confidential"}
    ),
    ("PUT", "/api/v4/projects/{id}/issues/{iid}"): frozenset(
        {
            "title",
            "description",
            "state_event",
            "labels",
            "add_labels",
            "remove_labels",
            "assignee_ids",
            "milestone_id",
        }
    ),
}


def route_of(method: str, path: str) -> tuple[str, str, frozenset[str]] | None:
    for route in DOCUMENTED_ROUTES:
        pattern = re.escape(route[1]).replace(r"\{id\}", r"(?:[0-9]+|[^/%]+(?:%2F[^/%]+)*)")
        pattern = pattern.replace(r"\{iid\}", r"[0-9]+")
        if route[0] == method and re.fullmatch(pattern, path):
            return route
    return None


@pytest.fixture
def fake() -> Iterator[FakeGitLab]:
    with FakeGitLab(repository="acme/platform/widgets", webhook_secret=SECRET) as tracker:
        yield tracker


@pytest.fixture
def client(fake: FakeGitLab) -> Iterator[GitLabClient]:
    gitlab = GitLabClient(
        base_url=fake.url, repository=fake.repository, token=fake.token, timeout=2.0
    )
    yield gitlab
    gitlab.close()


def api(fake: FakeGitLab, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = kwargs.pop("headers", {"PRIVATE-TOKEN": fake.token})
    return requests.request(
        method, f"{fake.url}/api/v4/{path}", headers=headers, timeout=5, **kwargs
    )


def parsed(hook: OutgoingWebhook, base_url: str) -> WebhookEvent:
    assert WEBHOOKS.verify(secret=SECRET, body=hook.body, headers=hook.headers, url="")
    payload = json.loads(hook.body)
    event = WEBHOOKS.event_name(headers=hook.headers, payload=payload)
    return WEBHOOKS.parse(event=event, payload=payload, base_url=base_url)


# --- documented shapes ------------------------------------------------------------------------


def test_issue_json_has_the_documented_keys_and_types(fake: FakeGitLab) -> None:
    fake.seed_issue(title="t", body="b", labels=["bug"], assignees=["alice"], milestone="v1")
    fake.seed_issue(title="bare")
    for issue in api(fake, "GET", "projects/4242/issues").json():
        assert isinstance(issue["id"], int) and isinstance(issue["iid"], int)
        assert issue["project_id"] == 4242
        assert isinstance(issue["title"], str)
        assert issue["description"] is None or isinstance(issue["description"], str)
        assert issue["state"] in ("opened", "closed")
        assert isinstance(issue["labels"], list)
        assert all(isinstance(label, str) for label in issue["labels"])
        assert isinstance(issue["assignees"], list)
        for user in issue["assignees"]:
            assert isinstance(user["id"], int) and isinstance(user["username"], str)
        milestone = issue["milestone"]
        assert milestone is None or (
            isinstance(milestone["id"], int) and isinstance(milestone["title"], str)
        )
        assert issue["web_url"].startswith(f"{fake.url}/acme/platform/widgets/-/issues/")
        for key in ("created_at", "updated_at"):
            assert datetime.fromisoformat(issue[key].replace("Z", "+00:00")).tzinfo is not None
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", issue[key])
        assert issue["type"] == "ISSUE" and issue["issue_type"] == "issue"
        assert isinstance(issue["author"]["username"], str)
    full = api(fake, "GET", "projects/4242/issues/1").json()
    assert (full["labels"], full["assignees"][0]["username"], full["milestone"]["title"]) == (
        ["bug"],
        "alice",
        "v1",
    )


def test_every_request_the_client_sends_targets_a_documented_route(
    fake: FakeGitLab, client: GitLabClient
) -> None:
    for n in range(3):
        fake.seed_issue(title=f"issue {n}")
    client.check_access()
    client.list_issues(since=fake.issues[1].created_at)
    created = client.create_issue(
        IssueFields(
            title="new",
            labels=frozenset({"bug"}),
            assignees=frozenset({"bob"}),
            milestone="v1",
            state=IssueState.CLOSED,
        )
    )
    client.update_issue(
        created.number,
        IssueFields(
            title="renamed",
            body="b",
            state=IssueState.OPEN,
            labels=frozenset(),
            assignees=frozenset({"carol"}),
            milestone=None,
        ),
    )
    client.get_issue("1")
    assert len(fake.requests) >= 9
    for request in fake.requests:
        route = route_of(request.method, request.path)
        assert route is not None, f"{request.method} {request.path} is not a documented route"
        assert set(request.query) <= route[2], (request.path, request.query)
        body_keys = DOCUMENTED_BODIES.get((route[0], route[1]))
        if body_keys is not None:
            assert set(json.loads(request.body)) <= body_keys
        assert request.status < 400


def test_routes_table_matches_encoded_paths_and_numeric_ids() -> None:
    assert route_of("GET", "/api/v4/projects/a%2Fb%2Fc/issues")
    assert route_of("GET", "/api/v4/projects/42/issues/7")
    assert route_of("GET", "/api/v4/projects/a/b/issues") is None
    assert route_of("PATCH", "/api/v4/projects/42/issues/7") is None


def test_pagination_headers_are_gitlabs(fake: FakeGitLab) -> None:
    for n in range(45):
        fake.seed_issue(title=f"issue {n}")
    middle = api(fake, "GET", "projects/4242/issues", params={"per_page": 20, "page": 2})
    assert len(middle.json()) == 20
    assert {
        k: middle.headers[k] for k in ("X-Page", "X-Per-Page", "X-Next-Page", "X-Prev-Page")
    } == {
        "X-Page": "2",
        "X-Per-Page": "20",
        "X-Next-Page": "3",
        "X-Prev-Page": "1",
    }
    assert (middle.headers["X-Total"], middle.headers["X-Total-Pages"]) == ("45", "3")
    rels = set(re.findall(r'rel="(\w+)"', middle.headers["Link"]))
    assert rels == {"prev", "next", "first", "last"}
    last = api(fake, "GET", "projects/4242/issues", params={"per_page": 20, "page": 3})
    assert len(last.json()) == 5
    assert last.headers["X-Next-Page"] == "" and 'rel="next"' not in last.headers["Link"]


def test_totals_and_last_link_are_left_out_above_ten_thousand_rows(fake: FakeGitLab) -> None:
    fake.omit_totals = True
    for n in range(3):
        fake.seed_issue(title=f"issue {n}")
    response = api(fake, "GET", "projects/4242/issues", params={"per_page": 2})
    assert "X-Total" not in response.headers and "X-Total-Pages" not in response.headers
    assert response.headers["X-Next-Page"] == "2"
    assert 'rel="last"' not in response.headers["Link"]


def test_page_size_is_capped_at_100(fake: FakeGitLab) -> None:
    for n in range(120):
        fake.seed_issue(title=f"issue {n}")
    response = api(fake, "GET", "projects/4242/issues", params={"per_page": 500})
    assert len(response.json()) == 100 and response.headers["X-Per-Page"] == "100"


def test_list_filters_by_state_and_updated_after(fake: FakeGitLab) -> None:
    fake.seed_issue(title="open")
    fake.seed_issue(title="closed", state="closed")
    assert [
        i["title"]
        for i in api(fake, "GET", "projects/4242/issues", params={"state": "closed"}).json()
    ] == ["closed"]
    after = api(
        fake, "GET", "projects/4242/issues", params={"updated_after": "2999-01-01T00:00:00Z"}
    )
    assert after.json() == []
    bad = api(fake, "GET", "projects/4242/issues", params={"updated_after": "yesterday"})
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("PUT", "projects/4242/issues/1", {}, 400),
        ("PUT", "projects/4242/issues/1", {"state_event": "explode"}, 400),
        ("PUT", "projects/4242/issues/1", {"milestone_id": 99999}, 404),
        ("POST", "projects/4242/issues", {"description": "no title"}, 400),
        ("GET", "projects/4242/issues/77", None, 404),
        ("GET", "projects/acme%2Fother/issues", None, 404),
        ("GET", "projects/acme/platform/widgets/issues", None, 404),
    ],
)
def test_the_fake_refuses_what_gitlab_refuses(
    fake: FakeGitLab, method: str, path: str, body: Any, status: int
) -> None:
    fake.seed_issue(title="t")
    assert api(fake, method, path, json=body).status_code == status
    assert fake.issues[1].title == "t"


def test_labels_and_milestones_can_be_listed_and_created(fake: FakeGitLab) -> None:
    created = api(fake, "POST", "projects/4242/labels", json={"name": "urgent", "color": "#ff0000"})
    assert created.status_code == 201 and created.json()["name"] == "urgent"
    again = api(fake, "POST", "projects/4242/labels", json={"name": "urgent", "color": "#ff0000"})
    assert again.status_code == 409
    names = [label["name"] for label in api(fake, "GET", "projects/4242/labels").json()]
    assert "urgent" in names and "bug" in names
    milestone = api(fake, "POST", "projects/4242/milestones", json={"title": "v3"})
    assert milestone.status_code == 201
    found = api(fake, "GET", "projects/4242/milestones", params={"title": "v3"}).json()
    assert [(m["id"], m["title"]) for m in found] == [(milestone.json()["id"], "v3")]


def test_users_and_members_are_found_by_username(fake: FakeGitLab) -> None:
    users = api(fake, "GET", "users", params={"username": "BOB"}).json()
    assert [u["username"] for u in users] == ["bob"]
    members = api(fake, "GET", "projects/4242/members/all", params={"query": "car"}).json()
    assert [m["username"] for m in members] == ["carol"]
    assert members[0]["access_level"] == 30


# --- auth and rate limits ---------------------------------------------------------------------


def test_wrong_or_missing_token_is_401_and_bearer_works(fake: FakeGitLab) -> None:
    wrong = api(fake, "GET", "projects/4242", headers={"PRIVATE-TOKEN": "nope"})
    assert wrong.status_code == 401 and wrong.json() == {"message": "401 Unauthorized"}
    assert api(fake, "GET", "projects/4242", headers={}).status_code == 401
    bearer = api(fake, "GET", "projects/4242", headers={"Authorization": f"Bearer {fake.token}"})
    assert bearer.status_code == 200 and bearer.json()["path_with_namespace"] == fake.repository


def test_every_answer_carries_rate_limit_headers(fake: FakeGitLab) -> None:
    fake.seed_issue(title="t")
    ok = api(fake, "GET", "projects/4242/issues/1")
    answers = [
        ok,
        api(
            fake,
            "GET",
            "projects/4242/issues/1",
            headers={"PRIVATE-TOKEN": fake.token, "If-None-Match": ok.headers["ETag"]},
        ),
        api(fake, "GET", "projects/4242", headers={}),
        api(fake, "GET", "projects/4242/issues/404"),
        api(fake, "GET", "no/such/route"),
    ]
    fake.inject(Fault(status=429, retry_after=3))
    answers.append(api(fake, "GET", "projects/4242"))
    assert [a.status_code for a in answers] == [200, 304, 401, 404, 404, 429]
    assert answers[-1].headers["Retry-After"] == "3"
    for answer in answers:
        limit = int(answer.headers["RateLimit-Limit"])
        observed = int(answer.headers["RateLimit-Observed"])
        assert int(answer.headers["RateLimit-Remaining"]) == limit - observed
        reset = int(answer.headers["RateLimit-Reset"])
        assert time.time() - 1 <= reset <= time.time() + 61
        assert answer.headers["RateLimit-ResetTime"].endswith("GMT")


def test_an_enforced_rate_limit_answers_429_with_retry_after(fake: FakeGitLab) -> None:
    fake.enforce_rate_limit = True
    fake.rate_limit = 2
    statuses = [api(fake, "GET", "projects/4242").status_code for _ in range(3)]
    if statuses[-1] == 200:  # the minute turned over between requests
        statuses = [api(fake, "GET", "projects/4242").status_code for _ in range(3)]
    assert statuses[-1] == 429
    last = api(fake, "GET", "projects/4242")
    assert last.status_code == 429 and 1 <= int(last.headers["Retry-After"]) <= 60
    assert last.headers["RateLimit-Remaining"] == "0"


# --- webhooks ---------------------------------------------------------------------------------


def test_api_changes_send_hooks_that_verify_and_carry_the_fakes_state(
    fake: FakeGitLab, client: GitLabClient
) -> None:
    created = client.create_issue(
        IssueFields(
            title="echo me", body="b", labels=frozenset({"bug"}), assignees=frozenset({"bob"})
        )
    )
    updated = client.update_issue(
        created.number,
        IssueFields(title="echo me again", state=IssueState.CLOSED, labels=frozenset({"docs"})),
    )
    fake.drain_webhooks()
    opened, closed = fake.sent_webhooks
    first, second = parsed(opened, fake.url), parsed(closed, fake.url)
    assert (first.kind, first.action, second.action) == (EventKind.ISSUE, "open", "close")
    assert first.repository == second.repository == "acme/platform/widgets"
    assert first.issue is not None and second.issue is not None
    assert first.issue.title == "echo me" and first.issue.labels == {"bug"}
    # The echo of our own last push is exactly what the push returned.
    assert second.issue == updated
    assert second.issue == client.get_issue(created.number)
    assert json.loads(closed.body)["user"]["username"] == fake.api_user


def test_a_human_edit_sends_one_hook_with_every_change(fake: FakeGitLab) -> None:
    fake.seed_issue(title="t", labels=["bug"], assignees=["alice"])
    fake.edit_issue(1, title="t2", state="closed", labels=["docs"], assignees=["bob", "carol"])
    fake.drain_webhooks()
    (hook,) = fake.sent_webhooks
    payload = json.loads(hook.body)
    assert payload["object_attributes"]["action"] == "close"
    assert set(payload["changes"]) >= {"title", "state_id", "labels", "assignees", "updated_at"}
    assert [u["username"] for u in payload["changes"]["assignees"]["current"]] == ["bob", "carol"]
    event = parsed(hook, fake.url)
    assert event.issue is not None
    assert (event.issue.title, event.issue.state, event.issue.labels, event.issue.assignees) == (
        "t2",
        IssueState.CLOSED,
        {"docs"},
        {"bob", "carol"},
    )
    assert event.issue.updated_at == fake.issues[1].updated_at


def test_every_description_is_stored_with_lf_line_ends_whoever_wrote_it(
    fake: FakeGitLab,
) -> None:
    # GitLab stores a description's CRLF as LF, written through the API or typed in its UI
    # (the soak's human edits): one rule for both, or a human's CRLF would be answered raw.
    fake.seed_issue(title="t", body="seeded\r\nline")
    fake.edit_issue(1, body="human\r\nedit")
    assert fake.issues[1].body == "human\nedit"
    assert fake.seed_issue(title="u", body="a\r\nb").body == "a\nb"
    assert api(fake, "GET", "projects/4242/issues/1").json()["description"] == "human\nedit"


def test_an_edit_that_changes_nothing_sends_no_hook(fake: FakeGitLab) -> None:
    fake.seed_issue(title="t")
    fake.edit_issue(1, title="t")
    fake.drain_webhooks()
    assert fake.sent_webhooks == []


def test_a_milestoned_issue_hook_names_the_issue_for_a_re_read(
    fake: FakeGitLab, client: GitLabClient
) -> None:
    fake.seed_issue(title="t")
    fake.edit_issue(1, milestone="v2")
    fake.drain_webhooks()
    (hook,) = fake.sent_webhooks
    assert json.loads(hook.body)["object_attributes"]["milestone_id"] == fake.milestone_id("v2")
    event = parsed(hook, fake.url)
    assert (event.kind, event.issue, event.issue_number) == (EventKind.ISSUE, None, "1")
    assert client.get_issue("1").milestone == "v2"


def test_hooks_have_gitlabs_headers(fake: FakeGitLab) -> None:
    fake.seed_issue(title="t", notify=True)
    fake.edit_issue(1, title="u")
    fake.drain_webhooks()
    first, second = fake.sent_webhooks
    for hook in (first, second):
        assert hook.headers["X-Gitlab-Event"] == "Issue Hook"
        assert hook.headers["X-Gitlab-Token"] == SECRET
        assert hook.headers["X-Gitlab-Instance"] == fake.url
        assert hook.headers["User-Agent"].startswith("GitLab/")
        assert hook.headers["Idempotency-Key"] == hook.delivery_id
        assert WEBHOOKS.delivery_id(headers=hook.headers, body=hook.body) == hook.delivery_id
    assert first.headers["X-Gitlab-Webhook-UUID"] == second.headers["X-Gitlab-Webhook-UUID"]
    assert first.headers["X-Gitlab-Event-UUID"] != second.headers["X-Gitlab-Event-UUID"]


def test_without_a_secret_no_token_header_is_sent() -> None:
    with FakeGitLab() as fake:
        fake.seed_issue(title="t", notify=True)
        fake.drain_webhooks()
        assert "X-Gitlab-Token" not in fake.sent_webhooks[0].headers


@pytest.mark.skipif(not shared_available(), reason=f"no shared fixtures under {SHARED_DIR}")
def test_hook_payload_has_every_key_a_real_issue_hook_has(fake: FakeGitLab) -> None:
    real = json.loads(
        (SHARED_DIR / "fixtures/gitlab/issue_hook__requirement_updated.json").read_bytes()
    )
    real_with_assignees = json.loads(
        (SHARED_DIR / "fixtures/gitlab/issue_hook__incident_updated.json").read_bytes()
    )
    fake.seed_issue(title="t", assignees=["alice"], labels=["bug"])
    fake.edit_issue(1, body="changed")
    fake.drain_webhooks()
    mine = json.loads(fake.sent_webhooks[0].body)
    assert set(real_with_assignees) <= set(mine)
    assert set(real["object_attributes"]) <= set(mine["object_attributes"])
    assert set(real["project"]) <= set(mine["project"])
    assert set(real["user"]) <= set(mine["user"])
    assert set(real_with_assignees["assignees"][0]) <= set(mine["assignees"][0])
    assert set(real_with_assignees["changes"]["updated_at"]) == set(mine["changes"]["updated_at"])


def test_hooks_are_posted_to_the_webhook_url() -> None:
    received: list[tuple[dict[str, str], bytes]] = []
    arrived = threading.Event()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(({k: v for k, v in self.headers.items()}, body))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            arrived.set()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    ).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/gitlab/"
        with FakeGitLab(webhook_url=url, webhook_secret=SECRET) as fake:
            fake.seed_issue(title="delivered", notify=True)
            assert arrived.wait(5)
        (headers, body) = received[0]
        assert WEBHOOKS.verify(secret=SECRET, body=body, headers=headers, url=url)
        assert headers["X-Gitlab-Event"] == "Issue Hook"
        event = WEBHOOKS.parse(event="Issue Hook", payload=json.loads(body), base_url="")
        assert event.issue is not None and event.issue.title == "delivered"
    finally:
        server.shutdown()
        server.server_close()


def test_deletions_send_no_hook_unless_asked(fake: FakeGitLab) -> None:
    fake.seed_issue(title="t")
    fake.delete_issue(1)
    fake.drain_webhooks()
    assert fake.sent_webhooks == []
    with FakeGitLab(webhook_secret=SECRET, send_delete_webhooks=True) as deleting:
        deleting.seed_issue(title="t")
        deleting.delete_issue(1)
        deleting.drain_webhooks()
        event = parsed(deleting.sent_webhooks[0], deleting.url)
        assert (event.kind, event.issue_number) == (EventKind.ISSUE_DELETED, "1")


def test_tasks_come_as_work_items_the_parser_ignores_and_confidential_issues_as_such(
    fake: FakeGitLab,
) -> None:
    fake.seed_issue(title="task")
    fake.seed_issue(title="secret")
    fake.issue_types[1] = "task"
    fake.confidential.add(2)
    fake.edit_issue(1, title="task 2")
    fake.edit_issue(2, title="secret 2")
    fake.drain_webhooks()
    task, secret = fake.sent_webhooks
    assert json.loads(task.body)["object_kind"] == "work_item"
    assert parsed(task, fake.url).kind is EventKind.IGNORED
    assert secret.headers["X-Gitlab-Event"] == "Confidential Issue Hook"
    secret_event = parsed(secret, fake.url)
    assert secret_event.issue is not None and secret_event.issue.title == "secret 2"


# --- command line -----------------------------------------------------------------------------


def test_the_command_line_serves_seeded_issues_until_interrupted() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "integrations.fake_trackers.gitlab",
            "--port",
            "0",
            "--seed",
            "7",
            "--secret",
            "s",
            "--webhook-url",
            "http://127.0.0.1:9/hooks",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        url = re.search(r"(http://127\.0\.0\.1:\d+)", lines[0])
        token = lines[2].split()[-1]
        assert url is not None and token == "test-token"
        issues = requests.get(
            f"{url.group(1)}/api/v4/projects/acme%2Fwidgets/issues",
            headers={"PRIVATE-TOKEN": token},
            params={"per_page": 100},
            timeout=5,
        ).json()
        assert len(issues) == 7
        assert {i["state"] for i in issues} == {"opened", "closed"}
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

"""FakeGitea: its webhooks (for API and human changes), headers, auth, and command line."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from integrations.fake_trackers.base import Fault, OutgoingWebhook
from integrations.fake_trackers.gitea import FakeGitea
from integrations.providers.base import EventKind, IssueFields, IssueState, WebhookEvent
from integrations.providers.gitea import GiteaClient, GiteaWebhooks
from tests.shared_data import REPO_ROOT, SHARED_DIR, shared_available

SECRET = "hook-secret"
verifier = GiteaWebhooks()


@pytest.fixture
def fake() -> Iterator[FakeGitea]:
    with FakeGitea(webhook_secret=SECRET) as tracker:
        yield tracker


@pytest.fixture
def client(fake: FakeGitea) -> Iterator[GiteaClient]:
    gitea = GiteaClient(
        base_url=fake.url,
        repository=fake.repository,
        token=fake.token,
        timeout=2.0,
        backoff_factor=0.01,
    )
    yield gitea
    gitea.close()


def parse(fake: FakeGitea, hook: OutgoingWebhook) -> WebhookEvent:
    assert verifier.verify(secret=SECRET, body=hook.body, headers=hook.headers, url="")
    event = verifier.event_name(headers=hook.headers, payload=None)
    assert event == hook.event
    assert verifier.delivery_id(headers=hook.headers, body=hook.body) == hook.delivery_id
    return verifier.parse(event=event, payload=json.loads(hook.body), base_url=fake.url)


def api(fake: FakeGitea, method: str, path: str, **kwargs: object) -> requests.Response:
    headers = {"Authorization": f"token {fake.token}"}
    return requests.request(
        method, f"{fake.url}/api/v1{path}", headers=headers, timeout=5, **kwargs
    )  # type: ignore[arg-type]


# --- webhooks for API changes (our own pushes come back as echoes) ---------------------------


def test_creating_through_the_api_sends_opened_then_assigned(fake, client):
    created = client.create_issue(
        IssueFields(title="Echo me", labels=frozenset({"bug"}), assignees=frozenset({"bob"}))
    )

    events = [(h.headers["X-Gitea-Event"], h.event) for h in fake.sent_webhooks]
    assert events == [("issues", "issues"), ("issues", "issue_assign")]
    opened = parse(fake, fake.sent_webhooks[0])
    assert (opened.kind, opened.action) == (EventKind.ISSUE, "opened")
    assert opened.issue == created
    sender = json.loads(fake.sent_webhooks[0].body)["sender"]["login"]
    assert sender == fake.api_user


def test_a_push_with_labels_and_fields_sends_one_webhook_per_call(fake, client):
    issue = fake.seed_issue(title="Before", labels=["bug"])

    result = client.update_issue(
        str(issue.number), IssueFields(title="After", labels=frozenset({"docs"}))
    )

    # Labels change as a removal and an addition: one echo per call.
    assert [(h.event, json.loads(h.body)["action"]) for h in fake.sent_webhooks] == [
        ("issue_label", "label_updated"),
        ("issue_label", "label_updated"),
        ("issues", "edited"),
    ]
    _, after_add, after_patch = (parse(fake, h) for h in fake.sent_webhooks)
    assert after_add.issue is not None and after_patch.issue is not None
    # The intermediate echo shows our labels with the title not yet changed.
    assert (after_add.issue.title, after_add.issue.labels) == ("Before", frozenset({"docs"}))
    # The last echo is exactly the state the client returned: nothing to merge.
    assert after_patch.issue == result == client.get_issue(str(issue.number))


def test_a_patch_touching_several_kinds_of_field_sends_the_matching_event_types(fake, client):
    issue = fake.seed_issue(title="Many", assignees=["alice"])

    client.update_issue(
        str(issue.number),
        IssueFields(
            body="new", state=IssueState.CLOSED, assignees=frozenset({"bob"}), milestone="v1"
        ),
    )

    assert [(h.event, json.loads(h.body)["action"]) for h in fake.sent_webhooks] == [
        ("issues", "edited"),
        ("issues", "closed"),
        ("issue_assign", "assigned"),
        ("issue_milestone", "milestoned"),
    ]
    final = client.get_issue(str(issue.number))
    for hook in fake.sent_webhooks:
        assert parse(fake, hook).issue == final


def test_a_no_op_push_sends_no_webhook(fake, client):
    issue = fake.seed_issue(title="Quiet", labels=["bug"])
    client.update_issue(str(issue.number), IssueFields(title="Quiet", labels=frozenset({"bug"})))
    assert fake.sent_webhooks == []


# --- webhooks for human changes in the tracker ------------------------------------------------


def test_edit_issue_sends_what_gitea_sends_for_each_kind_of_change(fake):
    issue = fake.seed_issue(title="Human", labels=["bug"], assignees=["bob"], milestone="v1")

    fake.edit_issue(issue.number, labels=["docs"], assignees=[], milestone=None, state="closed")

    pairs = [(h.event, json.loads(h.body)["action"]) for h in fake.sent_webhooks]
    assert pairs == [
        ("issues", "closed"),
        ("issue_label", "label_updated"),
        ("issue_assign", "unassigned"),
        ("issue_milestone", "demilestoned"),
    ]
    for hook in fake.sent_webhooks:
        parsed = parse(fake, hook)
        assert parsed.issue is not None
        assert parsed.issue.labels == frozenset({"docs"})
        assert parsed.issue.assignees == frozenset()
        assert parsed.issue.milestone is None
        assert parsed.issue.state is IssueState.CLOSED
        assert json.loads(hook.body)["sender"]["login"] == fake.human_user


def test_an_edited_webhook_carries_the_previous_title_like_gitea(fake):
    issue = fake.seed_issue(title="Old title", body="same")
    fake.edit_issue(issue.number, title="New title")
    payload = json.loads(fake.sent_webhooks[-1].body)
    assert payload["action"] == "edited"
    assert payload["changes"] == {"title": {"from": "Old title"}}
    assert payload["issue"]["title"] == "New title"


def test_a_closed_issue_reports_when_it_was_closed(fake):
    issue = fake.seed_issue(title="Close me")
    fake.edit_issue(issue.number, state="closed")
    closed_at = json.loads(fake.sent_webhooks[-1].body)["issue"]["closed_at"]
    fake.edit_issue(issue.number, body="edited after closing")
    payload = json.loads(fake.sent_webhooks[-1].body)
    assert closed_at is not None
    assert payload["issue"]["closed_at"] == closed_at
    assert payload["issue"]["updated_at"] > closed_at


def test_deleting_an_issue_sends_an_event_parsed_as_issue_deleted(fake):
    issue = fake.seed_issue(title="Doomed")
    fake.delete_issue(issue.number)
    parsed = parse(fake, fake.sent_webhooks[-1])
    assert parsed.kind == EventKind.ISSUE_DELETED
    assert (parsed.issue_external_id, parsed.issue_number) == (str(issue.id), str(issue.number))


def test_a_comment_sends_issue_comment_parsed_as_a_comment(fake):
    issue = fake.seed_issue(title="Discuss")
    comment = fake.add_comment(issue.number, "Me too — ünïcode & <html>", author="carol")
    parsed = parse(fake, fake.sent_webhooks[-1])
    assert parsed.kind == EventKind.COMMENT
    assert parsed.comment is not None
    assert parsed.comment.external_id == str(comment.id)
    assert parsed.comment.body == "Me too — ünïcode & <html>"
    assert parsed.comment.author == "carol"
    assert parsed.issue_number == str(issue.number)


def test_pull_request_changes_send_pull_request_events_that_are_ignored(fake):
    pull = fake.seed_issue(title="A PR", is_pull_request=True)
    fake.edit_issue(pull.number, labels=["bug"])
    hook = fake.sent_webhooks[-1]
    assert hook.headers["X-Gitea-Event"] == "pull_request"
    assert hook.event == "pull_request_label"
    assert parse(fake, hook).kind == EventKind.IGNORED


def test_webhook_bodies_are_go_style_json_and_still_verify(fake):
    issue = fake.seed_issue(title="Tom & Jerry <3 Zoë")
    fake.edit_issue(issue.number, title="Tom & Jerry <4 Zoë")
    body = fake.sent_webhooks[-1].body
    assert b"Tom \\u0026 Jerry \\u003c4 Zo\xc3\xab" in body  # Go escapes &<>, keeps UTF-8
    assert body.startswith(b'{\n  "action"')  # json.MarshalIndent with two spaces
    parsed = parse(fake, fake.sent_webhooks[-1])
    assert parsed.issue is not None and parsed.issue.title == "Tom & Jerry <4 Zoë"


def test_gitea_compatibility_headers_carry_the_same_values(fake):
    fake.seed_issue(title="Headers", notify=True)
    headers = fake.sent_webhooks[-1].headers
    body = fake.sent_webhooks[-1].body
    assert headers["X-Gogs-Signature"] == headers["X-Gitea-Signature"]
    assert headers["X-Hub-Signature-256"] == "sha256=" + headers["X-Gitea-Signature"]
    assert headers["X-Hub-Signature"].startswith("sha1=")
    assert headers["X-Gogs-Delivery"] == headers["X-GitHub-Delivery"] == headers["X-Gitea-Delivery"]
    assert verifier.verify(secret=SECRET, body=body, headers=headers, url="")
    assert not verifier.verify(secret="other", body=body, headers=headers, url="")


@pytest.mark.skipif(not shared_available(), reason=f"shared fixtures not found at {SHARED_DIR}")
def test_webhook_payloads_have_every_field_of_the_real_captures(fake):
    real_issue = json.loads((SHARED_DIR / "fixtures/gitea/issues__opened.json").read_bytes())
    real_comment = json.loads((SHARED_DIR / "fixtures/gitea/issue_comment__new.json").read_bytes())
    issue = fake.seed_issue(title="Shape", notify=True)
    fake.add_comment(issue.number, "shape")
    ours_issue = json.loads(fake.sent_webhooks[0].body)
    ours_comment = json.loads(fake.sent_webhooks[1].body)

    deprecated = {"secret"}  # removed from bodies in Gitea 1.13
    assert set(real_issue) - deprecated <= set(ours_issue)
    assert set(real_issue["issue"]) <= set(ours_issue["issue"])
    assert set(real_issue["repository"]) <= set(ours_issue["repository"])
    assert set(real_issue["sender"]) <= set(ours_issue["sender"])
    assert set(real_comment) - deprecated <= set(ours_comment)
    assert set(real_comment["comment"]) <= set(ours_comment["comment"])


class _Receiver(BaseHTTPRequestHandler):
    received: queue.Queue[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.put((dict(self.headers.items()), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


def test_webhooks_are_posted_to_the_webhook_url_signed_over_the_sent_bytes():
    handler = type("Receiver", (_Receiver,), {"received": queue.Queue()})
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(
        target=receiver.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    ).start()
    try:
        url = f"http://127.0.0.1:{receiver.server_address[1]}/webhooks/gitea/"
        with FakeGitea(webhook_secret=SECRET, webhook_url=url) as fake:
            issue = fake.seed_issue(title="Deliver me")
            fake.edit_issue(issue.number, title="Delivered")
            headers, body = handler.received.get(timeout=5)
            state = fake.issues[issue.number]
            assert headers["X-Gitea-Event"] == "issues"
            assert headers["X-Gitea-Event-Type"] == "issues"
            assert headers["Content-Type"] == "application/json"
            assert verifier.verify(secret=SECRET, body=body, headers=headers, url=url)
            parsed = verifier.parse(
                event=verifier.event_name(headers=headers, payload=None),
                payload=json.loads(body),
                base_url=fake.url,
            )
            assert parsed.issue is not None
            assert parsed.issue.title == state.title == "Delivered"
            assert parsed.issue.updated_at == state.updated_at
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_without_a_secret_the_signature_headers_are_empty_and_never_verify():
    with FakeGitea() as fake:
        fake.seed_issue(title="Unsigned", notify=True)
        hook = fake.sent_webhooks[-1]
    assert hook.headers["X-Gitea-Signature"] == ""
    assert not verifier.verify(secret="", body=hook.body, headers=hook.headers, url="")


# --- HTTP surface ------------------------------------------------------------------------------


def test_a_wrong_or_missing_token_gets_401_and_bearer_is_accepted(fake):
    url = f"{fake.url}/api/v1/repos/acme/widgets"
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, headers={"Authorization": "token nope"}, timeout=5).status_code == 401
    bearer = {"Authorization": f"Bearer {fake.token}"}
    assert requests.get(url, headers=bearer, timeout=5).status_code == 200


def test_listings_are_paged_with_link_and_x_total_count(fake):
    fake.seed(25)
    answer = api(
        fake, "GET", "/repos/acme/widgets/issues", params={"state": "all", "limit": 10, "page": 2}
    )
    assert answer.status_code == 200
    assert len(answer.json()) == 10
    assert answer.headers["X-Total-Count"] == "25"
    assert set(answer.links) == {"next", "last", "first", "prev"}
    assert "page=3" in answer.links["next"]["url"]
    assert "page=3" in answer.links["last"]["url"]


def test_page_size_defaults_to_30_and_is_capped_at_50(fake):
    fake.seed(70)
    default = api(fake, "GET", "/repos/acme/widgets/issues", params={"state": "all"})
    capped = api(fake, "GET", "/repos/acme/widgets/issues", params={"state": "all", "limit": 500})
    assert len(default.json()) == 30
    assert len(capped.json()) == 50


def test_the_issue_listing_defaults_to_open_issues_newest_first(fake):
    fake.seed_issue(title="first")
    fake.seed_issue(title="second", state="closed")
    fake.seed_issue(title="third")
    titles = [i["title"] for i in api(fake, "GET", "/repos/acme/widgets/issues").json()]
    assert titles == ["third", "first"]


def test_an_invalid_since_is_a_422(fake):
    answer = api(fake, "GET", "/repos/acme/widgets/issues", params={"since": "last tuesday"})
    assert answer.status_code == 422


def test_gitea_sends_no_rate_limit_headers_except_retry_after_on_an_injected_429(fake):
    fake.seed(1)
    normal = api(fake, "GET", "/repos/acme/widgets/issues/1")
    fake.inject(Fault(status=429, retry_after=3))
    limited = api(fake, "GET", "/repos/acme/widgets/issues/1")
    assert not [h for h in normal.headers if "ratelimit" in h.lower() or h == "Retry-After"]
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "3"
    assert not [h for h in limited.headers if "ratelimit" in h.lower()]


def test_label_ids_that_name_no_label_are_dropped_like_gitea_does(fake):
    issue = fake.seed_issue(title="Ids")
    answer = api(
        fake,
        "PUT",
        f"/repos/acme/widgets/issues/{issue.number}/labels",
        json={"labels": [fake.label_id("bug"), 987654]},
    )
    assert answer.status_code == 200
    assert [label["name"] for label in answer.json()] == ["bug"]


def test_patching_an_issue_answers_201_like_gitea(fake):
    issue = fake.seed_issue(title="Patch")
    answer = api(
        fake, "PATCH", f"/repos/acme/widgets/issues/{issue.number}", json={"title": "Patched"}
    )
    assert answer.status_code == 201
    assert answer.json()["title"] == "Patched"


def test_another_repository_is_404(fake):
    assert api(fake, "GET", "/repos/acme/other").status_code == 404
    assert api(fake, "GET", "/repos/acme/other/issues").status_code == 404


# --- command line ---------------------------------------------------------------------------------


def test_the_command_line_seeds_serves_and_stops_on_ctrl_c():
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "integrations.fake_trackers.gitea",
            "--port",
            "0",
            "--seed",
            "7",
            "--secret",
            "s",
            "--token",
            "cli-token",
            "--webhook-url",
            "http://127.0.0.1:9/hook",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=env,
    )
    try:
        lines = [process.stdout.readline() for _ in range(3)]  # type: ignore[union-attr]
        url = lines[0].rsplit(" at ", 1)[1].strip()
        assert lines[2].strip() == "token: cli-token"
        answer = requests.get(
            f"{url}/api/v1/repos/acme/widgets/issues",
            params={"state": "all"},
            headers={"Authorization": "token cli-token"},
            timeout=5,
        )
        assert answer.status_code == 200
        assert len(answer.json()) == 7
        process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 5
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=5)

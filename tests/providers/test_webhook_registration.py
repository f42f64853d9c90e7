"""Webhook registration against each fake's hooks API: created, unchanged on a second call,
repaired after a deletion or a disable, refused (for the service: manual steps) on a 403."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from integrations.fake_trackers.base import Fault
from integrations.providers.base import AccessDeniedError, MalformedAnswerError
from integrations.providers.hooks import HookResult, RegistersWebhooks
from tests.providers.kits import KITS, Kit

REGISTERING = [k for k in KITS if k.provider in ("gitea", "github", "gitlab")]
SECRET = "s3cret-for-hooks"


class _Intake:
    """A loopback receiver standing in for our webhook intake: what the fake delivers."""

    def __init__(self) -> None:
        self.bodies: list[tuple[dict[str, str], bytes]] = []
        intake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                intake.bodies.append(({k: v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self) -> None:  # Trello's check before it creates a hook
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/x/1/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(params=REGISTERING, ids=[k.provider for k in REGISTERING])
def kit(request: pytest.FixtureRequest) -> Kit:
    return request.param


@pytest.fixture
def fake(kit: Kit) -> Iterator[Any]:
    tracker = kit.make_fake()
    tracker.start()
    yield tracker
    tracker.stop()


@pytest.fixture
def intake() -> Iterator[_Intake]:
    receiver = _Intake()
    yield receiver
    receiver.close()


def _ensure(kit: Kit, fake: Any, url: str) -> Any:
    client = kit.client(fake)
    try:
        assert isinstance(client, RegistersWebhooks)
        assert client.capabilities.webhook_registration
        return client.ensure_webhook(url=url, secret=SECRET)
    finally:
        client.close()


def _signed_with_secret(kit: Kit, headers: dict[str, str], body: bytes) -> bool:
    if kit.provider == "gitlab":
        return headers.get("X-Gitlab-Token") == SECRET
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return digest in (headers.get("X-Gitea-Signature"), headers.get("X-Hub-Signature-256", "")[7:])


def test_created_then_unchanged_and_deliveries_go_to_the_registered_url(kit, fake, intake):
    assert fake.webhook_url is None
    first = _ensure(kit, fake, intake.url)
    assert first.result == HookResult.CREATED
    [hook] = fake.hooks.values()
    assert hook.url == intake.url and hook.active and hook.secret == SECRET
    assert hook.content_type == "json"
    expected = {"gitea": {"issues", "issue_assign", "issue_label", "issue_milestone"}}
    assert set(hook.events) >= expected.get(
        kit.provider, {"issues_events"} if kit.provider == "gitlab" else {"issues"}
    )

    second = _ensure(kit, fake, intake.url)
    assert second.result == HookResult.UNCHANGED
    assert second.hook_id == first.hook_id and len(fake.hooks) == 1
    assert any("secret" in note for note in second.notes)  # what it cannot check, said

    issue = fake.seed_issue(title="delivered")
    fake.edit_issue(issue.number, title="edited on the tracker")
    fake.drain_webhooks()
    assert intake.bodies, "the fake delivered nothing to the registered hook"
    headers, body = intake.bodies[-1]
    assert _signed_with_secret(kit, headers, body)


def test_a_deleted_hook_is_created_again(kit, fake, intake):
    first = _ensure(kit, fake, intake.url)
    fake.delete_hook(first.hook_id)
    assert fake.webhook_url is None  # nothing is delivered any more
    again = _ensure(kit, fake, intake.url)
    assert again.result == HookResult.CREATED
    assert fake.webhook_url == intake.url


def test_a_disabled_hook_is_repaired_with_our_secret(kit, fake, intake):
    first = _ensure(kit, fake, intake.url)
    fake.set_hook_active(first.hook_id, False)
    hook = fake.hooks[int(first.hook_id)]
    hook.secret = "stale"
    repaired = _ensure(kit, fake, intake.url)
    assert repaired.result == HookResult.REPAIRED
    assert repaired.hook_id == first.hook_id
    assert hook.active and hook.secret == SECRET
    assert any("disabled" in note for note in repaired.notes)
    assert fake.webhook_url == intake.url and fake.webhook_secret == SECRET


def test_a_hook_missing_the_issue_events_is_repaired(kit, fake, intake):
    first = _ensure(kit, fake, intake.url)
    fake.hooks[int(first.hook_id)].events = ["push_events" if kit.provider == "gitlab" else "push"]
    repaired = _ensure(kit, fake, intake.url)
    assert repaired.result == HookResult.REPAIRED
    assert any("events missing" in note for note in repaired.notes)
    assert _ensure(kit, fake, intake.url).result == HookResult.UNCHANGED


def test_someone_elses_hook_is_left_alone(kit, fake, intake):
    other = fake.add_hook(url="https://ci.example.com/hook", secret="x", events=["push"])
    assert _ensure(kit, fake, intake.url).result == HookResult.CREATED
    assert fake.hooks[other.id].url == "https://ci.example.com/hook"
    assert len(fake.hooks) == 2


def test_a_token_without_admin_rights_is_refused(kit, fake, intake):
    fake.inject(Fault(status=403, path_contains="/hooks", count=5))
    with pytest.raises(AccessDeniedError):
        _ensure(kit, fake, intake.url)
    assert not fake.hooks


# --- Trello: create-only (its hook listing would put the token in a logged path) ------------

TRELLO = next(k for k in KITS if k.provider == "trello")


@pytest.fixture
def trello() -> Iterator[Any]:
    tracker = TRELLO.make_fake()
    tracker.start()
    yield tracker
    tracker.stop()


def test_trello_creates_after_its_head_check_and_finds_it_again(trello, intake):
    first = _ensure(TRELLO, trello, intake.url)
    assert first.result == HookResult.CREATED
    [hook] = trello.webhooks.values()
    assert hook["callbackURL"] == intake.url and hook["idModel"] == trello.repository
    assert hook["active"] and hook["id"] == first.hook_id
    again = _ensure(TRELLO, trello, intake.url)
    assert again.result == HookResult.UNCHANGED
    assert any("active" in note for note in again.notes)  # what it cannot check, said
    assert len(trello.webhooks) == 1


def test_trello_creates_a_deleted_hook_again(trello, intake):
    first = _ensure(TRELLO, trello, intake.url)
    trello.webhooks.pop(first.hook_id)
    assert _ensure(TRELLO, trello, intake.url).result == HookResult.CREATED


def test_trello_refuses_a_callback_that_does_not_answer_the_head(trello):
    from integrations.providers.base import ValidationFailedError

    with pytest.raises(ValidationFailedError, match="did not return 200"):
        _ensure(TRELLO, trello, "http://127.0.0.1:9/webhooks/trello/1/")
    assert not trello.webhooks


def test_trello_token_without_rights_is_refused(trello, intake):
    trello.inject(Fault(status=401, path_contains="/webhooks", count=5))
    from integrations.providers.base import AuthenticationError

    with pytest.raises(AuthenticationError):
        _ensure(TRELLO, trello, intake.url)


def test_a_malformed_hooks_listing_is_a_malformed_answer(kit, fake, intake):
    """A hooks listing of the wrong shape is the tracker's fault, told as every provider tells
    a malformed answer — not a KeyError that the API would answer with a 500."""
    _ensure(kit, fake, intake.url)
    fake.render_hook = lambda hook: {"config": "not an object"}

    with pytest.raises(MalformedAnswerError):
        _ensure(kit, fake, intake.url)

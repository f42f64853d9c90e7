"""One `Kit` per provider: how to start its fake and build a client on it.

The conformance suite (`test_conformance.py`) runs every test once per kit in `KITS`: a new
provider is a new module, a new fake, and one `Kit` line here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from integrations.fake_trackers.base import FakeTracker
from integrations.fake_trackers.gitea import FakeGitea
from integrations.fake_trackers.github import FakeGitHub
from integrations.fake_trackers.gitlab import FakeGitLab
from integrations.fake_trackers.trello import FakeTrello
from integrations.providers import client_class
from integrations.providers.base import ProviderClient
from tests.shared_data import gitea_signature, github_signature, trello_signature


@dataclasses.dataclass(frozen=True)
class Kit:
    provider: str
    make_fake: Callable[[], FakeTracker]
    # The base URL a connection would hold for this fake.
    base_url: Callable[[Any], str]
    # The HTTP method of an issue update (PATCH, or PUT on GitLab).
    update_method: str = "PATCH"
    # What the paths of one issue and of the issue listing contain (for faults and counts).
    item_path: str = "/issues/"
    list_path: str = "/issues"
    # The tracker's own status (`tracker_status`) of a new issue, and of it once closed
    # (Trello: the card's list, which archiving does not change).
    open_statuses: tuple[str, ...] = ("open", "opened")
    closed_status: str = "closed"
    # Constructor options beyond base_url/repository/token (Trello's config with its key).
    client_options: Callable[[Any], dict[str, Any]] = lambda fake: {}
    # The headers a tracker sends with a delivery of `body` for `event`, signed with `secret`.
    sign: Callable[[bytes, str, str], dict[str, str]] = lambda body, event, secret: {}
    # The event header value for a fixture file (Zulip naming: `<event>__<variant>.json`).
    event_for: Callable[[str], str] = lambda stem: stem.split("__", 1)[0]
    # Whether the signature covers the body (GitLab sends the secret itself).
    signs_body: bool = True

    def client(self, fake: Any, **options: Any) -> ProviderClient:
        options.setdefault("timeout", 2.0)
        options.setdefault("backoff_factor", 0.01)
        options = {**self.client_options(fake), **options}
        cls = client_class(self.provider)
        return cls(
            base_url=self.base_url(fake),
            repository=fake.repository,
            token=fake.token,
            **options,
        )


def _gitlab_event(stem: str) -> str:
    # `issue_hook__…` → `Issue Hook`; files named by variant only are issue hooks.
    # The "Test" button sends the header of the event it tests (here an issue hook).
    event = stem.split("__", 1)[0] if "__" in stem else "issue_hook"
    if event == "test_hook":
        event = "issue_hook"
    return event.replace("_", " ").title()


KITS = [
    Kit(
        "gitea",
        lambda: FakeGitea(webhook_secret="hook-secret"),
        lambda f: f.url,
        sign=lambda body, event, secret: {
            "X-Gitea-Event": event,
            "X-Gitea-Signature": gitea_signature(secret, body),
            "X-Gitea-Delivery": "d-1",
        },
    ),
    Kit(
        "github",
        lambda: FakeGitHub(webhook_secret="hook-secret"),
        lambda f: f.api_url,
        sign=lambda body, event, secret: {
            "X-GitHub-Event": event,
            "X-Hub-Signature-256": github_signature(secret, body),
            "X-GitHub-Delivery": "d-1",
        },
    ),
    Kit(
        "gitlab",
        lambda: FakeGitLab(webhook_secret="hook-secret"),
        lambda f: f.url,
        "PUT",
        sign=lambda body, event, secret: {"X-Gitlab-Event": event, "X-Gitlab-Token": secret},
        event_for=_gitlab_event,
        signs_body=False,
    ),
    Kit(
        "trello",
        lambda: FakeTrello(webhook_secret="hook-secret"),
        lambda f: f.url,
        "PUT",
        item_path="/cards/",
        list_path="/cards",
        open_statuses=("To Do",),
        closed_status="To Do",  # archiving leaves the card in its list
        client_options=lambda f: {"config": {"api_key": f.api_key}},
        # Trello signs body + callback URL; the suite verifies with url="".
        sign=lambda body, event, secret: {"X-Trello-Webhook": trello_signature(secret, body, "")},
    ),
]

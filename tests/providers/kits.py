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
from integrations.fake_trackers.redmine import FakeRedmine
from integrations.providers import client_class
from integrations.providers.base import ProviderClient
from tests.shared_data import gitea_signature, github_signature


@dataclasses.dataclass(frozen=True)
class Kit:
    provider: str
    make_fake: Callable[[], FakeTracker]
    # The base URL a connection would hold for this fake.
    base_url: Callable[[Any], str]
    # The HTTP method of an issue update (PATCH, or PUT on GitLab).
    update_method: str = "PATCH"
    # The headers a tracker sends with a delivery of `body` for `event`, signed with `secret`.
    sign: Callable[[bytes, str, str], dict[str, str]] = lambda body, event, secret: {}
    # The event header value for a fixture file (Zulip naming: `<event>__<variant>.json`).
    event_for: Callable[[str], str] = lambda stem: stem.split("__", 1)[0]
    # Whether the signature covers the body (GitLab sends the secret itself).
    signs_body: bool = True
    # The tracker's own status names of a new issue (any of) and of a closed one.
    tracker_statuses: tuple[tuple[str, ...], str] = (("open", "opened"), "closed")

    def client(self, fake: Any, **options: Any) -> ProviderClient:
        options.setdefault("timeout", 2.0)
        options.setdefault("backoff_factor", 0.01)
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
    Kit("redmine", FakeRedmine, lambda f: f.url, "PUT", tracker_statuses=(("New",), "Closed")),
]

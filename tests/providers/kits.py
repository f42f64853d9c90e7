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


KITS = [
    Kit("gitea", lambda: FakeGitea(webhook_secret="hook-secret"), lambda f: f.url),
    Kit("github", lambda: FakeGitHub(webhook_secret="hook-secret"), lambda f: f.api_url),
    Kit("gitlab", lambda: FakeGitLab(webhook_secret="hook-secret"), lambda f: f.url, "PUT"),
    Kit(
        "trello",
        lambda: FakeTrello(webhook_secret="hook-secret"),
        lambda f: f.url,
        "PUT",
        "/cards/",
        "/cards",
        ("To Do",),
        "To Do",
        lambda f: {"config": {"api_key": f.api_key}},
    ),
]

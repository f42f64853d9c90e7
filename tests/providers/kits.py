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


KITS = [
    Kit("gitea", lambda: FakeGitea(webhook_secret="hook-secret"), lambda f: f.url),
    Kit("github", lambda: FakeGitHub(webhook_secret="hook-secret"), lambda f: f.api_url),
    Kit("gitlab", lambda: FakeGitLab(webhook_secret="hook-secret"), lambda f: f.url, "PUT"),
]

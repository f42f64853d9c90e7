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
from integrations.fake_trackers.jira import FakeJira
from integrations.providers import client_class
from integrations.providers.base import ProviderClient, split_marker


@dataclasses.dataclass(frozen=True)
class Kit:
    provider: str
    make_fake: Callable[[], FakeTracker]
    # The base URL a connection would hold for this fake.
    base_url: Callable[[Any], str]
    # The HTTP method of an issue update (PATCH, or PUT on GitLab).
    update_method: str = "PATCH"
    # Where a single issue's path and the issue listing's path are recognised (fault matching).
    issue_path: str = "/issues/"
    list_path: str = "/issues"
    # The client's number of a fake issue, and back (Jira: the key `PROJ-12`).
    number: Callable[[Any, Any], str] = lambda fake, issue: str(issue.number)
    fake_number: Callable[[str], int] = int
    # The create marker as the tracker keeps it (markdown trackers: a trailing comment).
    stored_marker: Callable[[Any, Any], str | None] = lambda fake, issue: split_marker(issue.body)[
        1
    ]
    # A label value the tracker refuses (undefined where labels are predefined).
    refused_label: str = "no-such-label"
    # Provider-specific client options (Jira: config_json with the account's e-mail).
    options: Callable[[Any], dict[str, Any]] = lambda fake: {}

    def client(self, fake: Any, **options: Any) -> ProviderClient:
        options.setdefault("timeout", 2.0)
        options.setdefault("backoff_factor", 0.01)
        options = {**self.options(fake), **options}
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
        "jira",
        lambda: FakeJira(webhook_secret="hook-secret"),
        lambda f: f.url,
        "PUT",
        issue_path="/rest/api/3/issue/",
        list_path="/rest/api/3/search/jql",
        number=lambda fake, issue: f"{fake.key}-{issue.number}",
        fake_number=lambda key: int(key.rsplit("-", 1)[1]),
        stored_marker=lambda fake, issue: fake.properties[issue.number]["syndarix"]["create"],
        refused_label="no such label",  # free labels, but never with spaces
        options=lambda fake: {"config": {"email": fake.email}},
    ),
]

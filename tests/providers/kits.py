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
from integrations.fake_trackers.openproject import FakeOpenProject
from integrations.fake_trackers.redmine import FakeRedmine
from integrations.fake_trackers.trello import FakeTrello
from integrations.providers import client_class
from integrations.providers.base import ProviderClient, split_marker
from tests.shared_data import (
    gitea_signature,
    github_signature,
    openproject_signature,
    trello_signature,
)


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
    # The tracker's own status names of a new and of a closed issue.
    open_statuses: tuple[str, ...] = ("open", "opened")
    closed_status: str = "closed"
    # Shared captures that are no delivery of this tracker (refused as malformed).
    rejected_fixtures: frozenset[str] = frozenset()
    # The connection's config_json for this fake (Jira: the account's e-mail).
    config: Callable[[Any], dict[str, Any]] = lambda fake: {}

    def client(self, fake: Any, **options: Any) -> ProviderClient:
        options.setdefault("timeout", 2.0)
        options.setdefault("backoff_factor", 0.01)
        options.setdefault("config", self.config(fake))
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
        "jira",
        lambda: FakeJira(webhook_secret="hook-secret"),
        lambda f: f.url,
        "PUT",
        # Jira names the event in the body; admin webhooks sign like GitHub's legacy header.
        sign=lambda body, event, secret: {"X-Hub-Signature": github_signature(secret, body)},
        issue_path="/rest/api/3/issue/",
        list_path="/rest/api/3/search/jql",
        number=lambda fake, issue: f"{fake.key}-{issue.number}",
        fake_number=lambda key: int(key.rsplit("-", 1)[1]),
        stored_marker=lambda fake, issue: fake.properties[issue.number]["syndarix"]["create"],
        refused_label="no such label",  # free labels, but never with spaces
        open_statuses=("To Do",),
        closed_status="Done",
        rejected_fixtures=frozenset({"example_anomalous_payload.json"}),
        config=lambda fake: {"email": fake.email},
    ),
    Kit(
        "trello",
        lambda: FakeTrello(webhook_secret="hook-secret"),
        lambda f: f.url,
        "PUT",
        issue_path="/cards/",
        list_path="/cards",
        open_statuses=("To Do",),
        closed_status="To Do",  # archiving leaves the card in its list
        config=lambda f: {"api_key": f.api_key},
        # Trello signs body + callback URL; the suite verifies with url="".
        sign=lambda body, event, secret: {"X-Trello-Webhook": trello_signature(secret, body, "")},
    ),
    Kit(
        "openproject",
        lambda: FakeOpenProject(webhook_secret="hook-secret"),
        lambda f: f.url,
        issue_path="/work_packages/",
        list_path="/work_packages",
        open_statuses=("New",),
        closed_status="Closed",
        # The event is the body's `action`; no header names it.
        sign=lambda body, event, secret: {"X-OP-Signature": openproject_signature(secret, body)},
    ),
    Kit(
        "redmine",
        FakeRedmine,
        lambda f: f.url,
        "PUT",
        open_statuses=("New",),
        closed_status="Closed",
    ),
]

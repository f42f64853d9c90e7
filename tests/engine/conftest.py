"""The engine against a real fake Gitea over HTTP and the real database — no mocks.

Webhooks the fake sends are captured (not posted) so each test decides when, whether and in
what order they reach `/webhooks/gitea/` — that is how loss, duplication and reordering are
simulated.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from integrations.fake_trackers.base import OutgoingWebhook
from integrations.fake_trackers.gitea import FakeGitea
from integrations.models import Connection
from issues.inbound import process_delivery
from issues.models import Issue
from issues.outbox import drain
from issues.polling import sync_connection

SECRET = "hook-secret"


class Harness:
    def __init__(self, fake: FakeGitea, connection: Connection) -> None:
        self.fake = fake
        self.connection = connection
        self.hooks: list[OutgoingWebhook] = []
        self.client = Client()
        fake.webhook_sink = self.hooks.append

    def take_hooks(self) -> list[OutgoingWebhook]:
        self.fake.drain_webhooks()
        taken, self.hooks[:] = list(self.hooks), []
        return taken

    def post(self, hook: OutgoingWebhook) -> Any:
        return self.client.post(
            "/webhooks/gitea/",
            data=hook.body,
            content_type="application/json",
            headers={k: v for k, v in hook.headers.items() if k.lower() != "content-type"},
        )

    def deliver(self, hook: OutgoingWebhook) -> Any:
        response = self.post(hook)
        if response.status_code == 202:
            process_delivery(response.json()["delivery"])
        return response

    def deliver_all(self) -> None:
        for hook in self.take_hooks():
            self.deliver(hook)

    def poll(self, *, full: bool = False) -> Any:
        return sync_connection(connection_id=self.connection.pk, full=full)

    def drain(self) -> Any:
        return drain()

    def issue(self, number: int) -> Issue:
        return Issue.objects.get(connection=self.connection, external_number=str(number))

    def writes(self) -> int:
        return sum(self.fake.count_requests(m) for m in ("POST", "PATCH", "PUT", "DELETE"))


@pytest.fixture
def harness(db: Any) -> Iterator[Harness]:
    fake = FakeGitea(repository="acme/widgets", token="gitea-token", webhook_secret=SECRET)
    fake.start()
    connection = Connection.objects.create(
        name="acme",
        provider="gitea",
        base_url=fake.url,
        repository="acme/widgets",
        api_token="gitea-token",
        webhook_secret=SECRET,
    )
    try:
        yield Harness(fake, connection)
    finally:
        fake.stop()


# --- any provider's fake (for the tracker-fault and delivery-chaos tests) --------------------


class ProviderHarness(Harness):
    """`Harness` for the Gitea, GitHub or GitLab fake: webhooks go to `/webhooks/<provider>/`."""

    fake: Any  # any provider's FakeTracker

    def __init__(self, fake: Any, connection: Connection) -> None:
        super().__init__(fake, connection)

    def post(self, hook: OutgoingWebhook) -> Any:
        return self.client.post(
            f"/webhooks/{self.connection.provider}/",
            data=hook.body,
            content_type="application/json",
            headers={k: v for k, v in hook.headers.items() if k.lower() != "content-type"},
        )


@pytest.fixture
def tracker_harness(db: Any) -> Iterator[Any]:
    """A factory: `tracker_harness("gitlab")` starts that provider's fake on loopback, with a
    connection to it, and stops it after the test. The fake knows the labels, users and
    milestones of the convergence simulation."""
    from tests.engine.convergence import FAKES, LABELS, USERS

    started: list[Any] = []

    def make(provider: str, *, repository: str = "acme/widgets") -> ProviderHarness:
        fake = FAKES[provider](repository=repository, token="tracker-token", webhook_secret=SECRET)
        fake.known_labels = list(LABELS)
        fake.known_milestones = ["v1", "v2"]
        fake.known_users.update(USERS)
        fake.start()
        started.append(fake)
        connection = Connection.objects.create(
            name=f"{provider}-{len(started)}",
            provider=provider,
            base_url=fake.url,
            repository=repository,
            api_token="tracker-token",
            webhook_secret=SECRET,
        )
        return ProviderHarness(fake, connection)

    try:
        yield make
    finally:
        for fake in started:
            fake.stop()

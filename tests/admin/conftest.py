"""Admin tests run the real admin against a FakeGitea on loopback and the real database.

Webhooks the fake sends are captured and delivered by hand, as in tests/engine; tasks the
admin queues are recorded instead of reaching the broker (`published`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.test import Client

from integrations.fake_trackers.base import OutgoingWebhook
from integrations.fake_trackers.gitea import FakeGitea
from integrations.models import Connection
from issues.inbound import process_delivery
from issues.models import Conflict, Issue
from issues.services.issues import issue_update

SECRET = "hook-secret"
TOKEN = "gitea-token"
PASSWORD = "pw-for-tests-only-42"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # PBKDF2's million rounds cost seconds per user here; these tests are not about hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class Tracker:
    """A FakeGitea, its Connection, and the webhooks it sent, delivered on demand."""

    def __init__(self, fake: FakeGitea, connection: Connection) -> None:
        self.fake = fake
        self.connection = connection
        self.hooks: list[OutgoingWebhook] = []
        fake.webhook_sink = self.hooks.append

    def deliver_all(self) -> None:
        self.fake.drain_webhooks()
        taken, self.hooks[:] = list(self.hooks), []
        client = Client()
        for hook in taken:
            response = client.post(
                f"/webhooks/gitea/{self.connection.pk}/",
                data=hook.body,
                content_type="application/json",
                headers={k: v for k, v in hook.headers.items() if k.lower() != "content-type"},
            )
            assert response.status_code in (200, 202, 204), response.content
            if response.status_code == 202:
                process_delivery(response.json()["delivery"])

    def issue(self, number: int) -> Issue:
        return Issue.objects.get(connection=self.connection, external_number=str(number))


def start_tracker(**connection_fields: Any) -> Tracker:
    fake = FakeGitea(repository="acme/widgets", token=TOKEN, webhook_secret=SECRET).start()
    fields = {
        "name": "acme",
        "provider": "gitea",
        "base_url": fake.url,
        "repository": "acme/widgets",
        "api_token": TOKEN,
        "webhook_secret": SECRET,
        **connection_fields,
    }
    return Tracker(fake, Connection.objects.create(**fields))


@pytest.fixture
def tracker(db: Any) -> Iterator[Tracker]:
    made = start_tracker()
    try:
        yield made
    finally:
        made.fake.stop()


def make_conflicts(tracker: Tracker, *, title: str = "Crash on save") -> Issue:
    """An issue whose title, body and milestone were changed on both sides concurrently."""
    fake_issue = tracker.fake.seed_issue(
        title=title, body="Steps:\n1. open\n2. save", labels=["bug"], milestone="v1", notify=True
    )
    tracker.deliver_all()
    issue = tracker.issue(fake_issue.number)
    issue_update(
        issue=issue,
        changes={
            "title": f"{title} (local)",
            "body": "Steps:\n1. open\n2. save\n3. crash",
            "milestone": "v2",
        },
    )
    tracker.fake.advance_clock(5)
    tracker.fake.edit_issue(
        fake_issue.number,
        title=f"{title} (remote)",
        body="Steps:\n1. open a file\n2. save",
        milestone=None,
    )
    tracker.deliver_all()
    issue.refresh_from_db()
    assert set(
        Conflict.objects.filter(issue=issue, resolved=False).values_list("field", flat=True)
    ) == {"title", "body", "milestone"}
    return issue


@pytest.fixture
def superuser(db: Any) -> User:
    return get_user_model().objects.create_superuser("root", "", PASSWORD)


@pytest.fixture
def staff_client(superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


def staff_with(*codenames: str) -> User:
    """A staff user holding only these permissions (app_label.codename)."""
    user = get_user_model().objects.create_user(
        f"staff{len(codenames)}", "", PASSWORD, is_staff=True
    )
    for name in codenames:
        app_label, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    """Tasks queued (after commit) by the code under test, instead of reaching the broker."""
    calls: list[tuple[str, tuple[Any, ...]]] = []

    def record(task: Any, *args: Any, **kwargs: Any) -> bool:
        calls.append((task.name, args))
        return True

    monkeypatch.setattr("syndarix_sync.queueing.publish", record)
    return calls


def messages_of(response: Any) -> list[str]:
    """The messages the request left for the next page (call on the 302, not followed)."""
    return [str(m) for m in get_messages(response.wsgi_request)]

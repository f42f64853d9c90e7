"""`GET /api/v1/events/` (SPEC §6) and the conflict e-mail: events come from the models the
engine writes (signals) and from the outbox's one `event_record` call."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.core import mail
from django.db import connection as db_connection

from integrations.fake_trackers.base import Fault
from issues.models import Conflict
from issues.outbox import drain
from issues.services.issues import conflict_resolve, issue_update
from notifications.api import events_bell
from notifications.models import Event
from notifications.services import conflict_notifications_send
from tests.admin.conftest import make_conflicts, start_tracker
from tests.api.conftest import World, make_conflict

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_settle(settings: Any) -> Any:
    settings.EVENTS_SETTLE_SECONDS = 0
    yield
    events_bell.stop()


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Tasks queued by the code under test, recorded instead of reaching the broker."""
    names: list[str] = []
    monkeypatch.setattr(
        "syndarix_sync.queueing.publish", lambda task, *a, **k: names.append(task.name) or True
    )
    return names


def _events(world: World, key: str | None = None, **params: Any) -> dict[str, Any]:
    response = world.client(key).get("/api/v1/events/", params)
    assert response.status_code == 200, response.content
    data: dict[str, Any] = response.json()
    return data


def test_conflicts_opened_and_resolved_are_events_oldest_first_with_a_cursor(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        opened = make_conflict(world.alpha_issue, "title")
    with django_capture_on_commit_callbacks(execute=True):
        conflict_resolve(conflict=opened, strategy="remote_wins")
    page = _events(world)
    assert [(e["type"], e["connection"], e["issue"]) for e in page["events"]] == [
        ("conflict_opened", world.alpha.pk, world.alpha_issue.pk),
        ("conflict_resolved", world.alpha.pk, world.alpha_issue.pk),
    ]
    assert set(page["events"][0]) >= {"id", "type", "created_at", "connection", "issue"}
    assert page["next"] == page["events"][-1]["id"]
    assert _events(world, after=page["next"])["events"] == []
    # A resolved conflict saved again is not resolved twice.
    with django_capture_on_commit_callbacks(execute=True):
        Conflict.objects.get(pk=opened.pk).save()
    assert Event.objects.filter(type="conflict_resolved").count() == 1


def test_a_scoped_token_sees_only_its_connections_events(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        make_conflict(world.alpha_issue, "title")
        make_conflict(world.beta_issue, "title")
    assert {e["connection"] for e in _events(world)["events"]} == {world.alpha.pk, world.beta.pk}
    scoped = _events(world, world.scoped_key)["events"]
    assert {e["connection"] for e in scoped} == {world.alpha.pk}


def test_bad_cursors_are_a_400(world: World) -> None:
    for bad in ("-1", "abc", "1" * 40):
        response = world.client().get("/api/v1/events/", {"after": bad})
        assert response.status_code == 400, bad
    assert world.client().get("/api/v1/events/", {"wait": "x"}).status_code == 400
    assert world.client("nope").get("/api/v1/events/").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_long_poll_returns_as_soon_as_an_event_arrives(published: Any) -> None:
    world = World()
    start = _events(world)["next"]
    answers: list[dict[str, Any]] = []

    def listen() -> None:
        try:
            answers.append(_events(world, after=start, wait=10))
        finally:
            db_connection.close()

    listener = threading.Thread(target=listen)
    began = time.monotonic()
    listener.start()
    time.sleep(1.5)
    make_conflict(world.alpha_issue, "title")  # autocommit: the event is recorded on commit
    listener.join(15)
    elapsed = time.monotonic() - began
    assert answers and [e["type"] for e in answers[0]["events"]] == ["conflict_opened"]
    assert answers[0]["waited"] is True
    assert 1.5 <= elapsed < 5


def test_a_long_poll_with_nothing_new_ends_at_its_wait(world: World) -> None:
    began = time.monotonic()
    page = _events(world, after=10**9, wait=1)
    assert page["events"] == [] and page["next"] == str(10**9)
    assert 0.9 <= time.monotonic() - began < 4


@pytest.mark.django_db(transaction=True)
def test_a_sync_run_and_a_failed_push_are_events_and_a_burst_of_conflicts_is_one_mail(
    published: Any,
) -> None:
    tracker = start_tracker(notify_emails="ops@example.com, lead@example.com")
    try:
        world = World()
        issue = make_conflicts(tracker)  # three conflicts in one delivery
        from issues.tasks import sync_project_issues

        sync_project_issues(tracker.connection.pk, False, "manual")
        other = tracker.fake.seed_issue(title="Refused", notify=True)
        tracker.deliver_all()
        mirror = tracker.issue(other.number)
        issue_update(issue=mirror, changes={"title": "Refused edit"})
        tracker.fake.inject(Fault(status=422, count=100, method="PATCH"))
        drain()
        kinds = [
            e["type"] for e in _events(world)["events"] if e["connection"] == tracker.connection.pk
        ]
        assert kinds.count("conflict_opened") == 3
        assert "sync_run_finished" in kinds and "push_failed" in kinds
        assert issue.pk in {e["issue"] for e in _events(world)["events"]}

        assert conflict_notifications_send() == 1
        assert len(mail.outbox) == 1
        message = mail.outbox[0]
        assert message.to == ["ops@example.com", "lead@example.com"]
        assert "3 new conflicts on acme" in message.subject
        assert "/admin/issues/conflict/" in message.body and "resolve" in message.body
        assert conflict_notifications_send() == 0  # sent once
    finally:
        tracker.fake.stop()

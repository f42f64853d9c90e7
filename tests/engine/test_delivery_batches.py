"""Issue 18 (2): stored deliveries drained in batches — claimed together (SKIP LOCKED), per
issue only the newest full state merged, every delivery ending `processed`, order per issue
kept, and one wake-up per batch instead of a Celery message per delivery.

Through the real intake and the simulated Gitea over loopback, no mocks: publishing is only
recorded (as the admin tests do) where the test counts the messages.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from typing import Any

import pytest
from django.db import connection as db_connection
from django.db import transaction
from django.test.utils import CaptureQueriesContext

from integrations.fake_trackers.base import OutgoingWebhook
from integrations.models import DeliveryStatus, WebhookDelivery
from issues.inbound import COALESCED, drain_deliveries, process_batch
from issues.models import Issue, RemoteTombstone, SyncLog
from issues.tasks import deliveries_wake_flag
from syndarix_sync.queueing import woken
from tests.engine.conftest import Harness


def mirrored(h: Harness, issues: int) -> None:
    for n in range(issues):
        h.fake.seed_issue(title=f"Issue {n}")
    assert h.poll(full=True).success
    h.take_hooks()


def store(h: Harness, hooks: list[OutgoingWebhook]) -> list[int]:
    ids = []
    for hook in hooks:
        response = h.post(hook)
        assert response.status_code == 202, response.content
        ids.append(response.json()["delivery"])
    return ids


def edits(h: Harness, numbers: range, rounds: int) -> list[OutgoingWebhook]:
    for r in range(rounds):
        for n in numbers:
            h.fake.edit_issue(n, title=f"#{n} edit {r}")
    return h.take_hooks()


def statuses() -> Counter[str]:
    return Counter(WebhookDelivery.objects.values_list("status", flat=True))


def differences(h: Harness) -> list[str]:
    mirror = dict(
        Issue.objects.filter(connection=h.connection).values_list("external_number", "title")
    )
    return [
        f"#{i.number}: {mirror.get(str(i.number))!r} != {i.title!r}"
        for i in h.fake.issue_list()
        if mirror.get(str(i.number)) != i.title
    ]


def test_a_batch_merges_the_newest_state_of_each_issue_and_finishes_every_delivery(
    harness: Harness,
) -> None:
    h = harness
    mirrored(h, 5)
    ids = store(h, edits(h, range(1, 6), rounds=3))
    logged_before = SyncLog.objects.count()

    outcomes = process_batch()

    assert set(outcomes) == set(ids)
    assert statuses() == {DeliveryStatus.PROCESSED: 15}
    assert Counter(outcomes.values()) == {"updated": 5, COALESCED: 10}
    assert differences(h) == []
    assert SyncLog.objects.count() - logged_before == 5  # one merge per issue
    # Each merged change carries the correlation id of the delivery that brought it.
    newest = {d.pk: d.correlation_id for d in WebhookDelivery.objects.filter(pk__in=ids)}
    merged = [pk for pk, outcome in outcomes.items() if outcome == "updated"]
    assert set(SyncLog.objects.values_list("correlation_id", flat=True)[:5]) == {
        newest[pk] for pk in merged
    }
    assert process_batch() == {}  # nothing left to claim


def test_the_statements_of_a_batch_do_not_grow_with_it(harness: Harness) -> None:
    h = harness
    mirrored(h, 12)

    def statements(numbers: range) -> list[str]:
        store(h, edits(h, numbers, rounds=1))
        with CaptureQueriesContext(db_connection) as captured:
            outcomes = process_batch()
        assert set(outcomes.values()) == {"updated"}
        return [q["sql"].split(" ", 1)[0] for q in captured.captured_queries]

    small, large = statements(range(1, 3)), statements(range(3, 13))
    assert small == large
    assert len(large) <= 14, large


def test_order_per_issue_holds_whatever_order_the_deliveries_came_in(harness: Harness) -> None:
    h = harness
    mirrored(h, 3)
    hooks = edits(h, range(1, 4), rounds=4)
    store(h, hooks[::-1])  # the newest first, the oldest last
    process_batch()
    assert differences(h) == []
    assert statuses() == {DeliveryStatus.PROCESSED: 12}


def test_a_deletion_keeps_its_place_among_the_edits_of_its_issue(harness: Harness) -> None:
    h = harness
    mirrored(h, 2)
    edited = edits(h, range(1, 3), rounds=1)
    h.fake.delete_issue(1)
    deleted = h.take_hooks()
    # Issue 1: edited, deleted, then its edit replayed (a redelivery): it stays deleted.
    store(h, [*edited, *deleted])
    replay = dataclasses.replace(edited[0], headers=dict(edited[0].headers))
    for name in ("X-Gitea-Delivery", "X-Gogs-Delivery", "X-GitHub-Delivery"):
        if name in replay.headers:
            replay.headers[name] = "replayed-later"
    store(h, [replay])
    process_batch()
    assert not Issue.objects.filter(external_number="1").exists()
    assert RemoteTombstone.objects.filter(connection=h.connection).count() == 1
    assert Issue.objects.get(external_number="2").title == "#2 edit 0"
    assert set(statuses()) == {DeliveryStatus.PROCESSED}


def test_two_states_of_one_second_are_settled_by_reading_the_tracker(harness: Harness) -> None:
    h = harness
    mirrored(h, 1)
    h.fake.edit_issue(1, title="A")
    (first,) = h.take_hooks()
    with h.fake.lock:  # another edit within the same second: the same `updated_at`
        h.fake.issues[1].title = "B"
    second = h.fake.build_webhook(h.fake.issues[1], "edited")
    assert second is not None
    store(h, [first, second])
    h.fake.reset_requests()
    outcomes = process_batch()
    assert h.fake.count_requests("GET", "/issues/1") == 1  # one read settles both
    assert Issue.objects.get().title == "B"
    assert sorted(outcomes.values()) == [COALESCED, "updated"]
    assert statuses() == {DeliveryStatus.PROCESSED: 2}


def test_a_batch_claims_at_most_the_batch_size_and_the_drain_claims_the_rest(
    harness: Harness, settings: Any
) -> None:
    h = harness
    mirrored(h, 7)
    store(h, edits(h, range(1, 8), rounds=1))
    settings.WEBHOOK_BATCH_SIZE = 3
    first = process_batch()
    assert len(first) == 3
    assert min(
        WebhookDelivery.objects.filter(status=DeliveryStatus.RECEIVED).values_list("id", flat=True)
    ) > max(first)  # oldest first
    assert len(drain_deliveries()) == 4
    assert statuses() == {DeliveryStatus.PROCESSED: 7}
    assert differences(h) == []


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_claim_the_same_delivery(harness: Harness, settings: Any) -> None:
    """While one worker's batch is open, another claims past it (SKIP LOCKED), not the same."""
    h = harness
    mirrored(h, 6)
    ids = store(h, edits(h, range(1, 7), rounds=1))
    settings.WEBHOOK_BATCH_SIZE = 3
    held, release = threading.Event(), threading.Event()

    def first_worker() -> None:
        try:
            with transaction.atomic():
                locked = list(
                    WebhookDelivery.objects.select_for_update(skip_locked=True)
                    .filter(pk__in=ids)
                    .order_by("id")[:3]
                )
                assert [d.pk for d in locked] == ids[:3]
                held.set()
                release.wait(10)
        finally:
            db_connection.close()

    thread = threading.Thread(target=first_worker)
    thread.start()
    try:
        assert held.wait(10)
        assert sorted(process_batch()) == ids[3:]
    finally:
        release.set()
        thread.join(10)
    assert sorted(process_batch()) == ids[:3]
    assert differences(h) == []


@pytest.mark.redis
def test_one_wake_up_per_batch_not_a_message_per_delivery(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    h = harness
    mirrored(h, 5)
    published: list[tuple[str, tuple[Any, ...]]] = []
    monkeypatch.setattr(
        "syndarix_sync.queueing.publish",
        lambda task, *args, **kw: published.append((task.name, args)) or True,
    )
    woken(deliveries_wake_flag())
    with django_capture_on_commit_callbacks(execute=True):
        ids = store(h, edits(h, range(1, 6), rounds=2))
    # The first delivery queued a drain; the nine stored before it started rode along.
    assert published == [("issues.tasks.process_webhook_event", (ids[0],))]

    outcomes = drain_deliveries()  # the flag comes down once a claim finds nothing
    assert set(outcomes) == set(ids)
    with django_capture_on_commit_callbacks(execute=True):
        later = store(h, edits(h, range(1, 2), rounds=1))
    assert published[1:] == [("issues.tasks.process_webhook_event", (later[0],))]

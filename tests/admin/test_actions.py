"""Admin actions and buttons: sync now / full resync, outbox retry, delivery reprocess."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from integrations.models import Connection, DeliveryStatus, WebhookDelivery
from issues.models import Issue, OutboxEntry, OutboxStatus
from tests.admin.conftest import messages_of, staff_with

CHANGELIST = "/admin/integrations/connection/"


@pytest.fixture
def connection(db):
    return Connection.objects.create(
        name="acme",
        provider="gitea",
        base_url="http://127.0.0.1:9",
        repository="acme/widgets",
        api_token="t",
        webhook_secret="s",
    )


@pytest.mark.parametrize(
    ("action", "full", "says"),
    [("sync_now", False, "Sync queued"), ("full_resync", True, "Full resync queued")],
)
def test_sync_actions_queue_a_manual_run_after_commit(
    connection, staff_client, published, django_capture_on_commit_callbacks, action, full, says
):
    other = Connection.objects.create(
        name="beta", provider="gitea", base_url="http://x.test", repository="b/c"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            CHANGELIST, {"action": action, "_selected_action": [connection.pk, other.pk]}
        )
    assert response.status_code == 302
    assert published == [
        ("issues.tasks.sync_project_issues", (connection.pk, full, "manual")),
        ("issues.tasks.sync_project_issues", (other.pk, full, "manual")),
    ]
    (message,) = messages_of(response)
    assert message.startswith(f"{says} for 2 connections (acme, beta)")


def test_nothing_is_queued_before_the_commit(
    connection, staff_client, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        staff_client.post(CHANGELIST, {"action": "sync_now", "_selected_action": [connection.pk]})
    assert published == [] and len(callbacks) == 1


def test_sync_buttons_on_the_connection_page(
    connection, staff_client, published, django_capture_on_commit_callbacks
):
    url = f"/admin/integrations/connection/{connection.pk}/sync/"
    page = staff_client.get(f"/admin/integrations/connection/{connection.pk}/change/").content
    assert page.decode().count(f'action="{url}"') == 2  # Sync now, Full resync
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(url)
        staff_client.post(url, {"full": "1"})
    assert [args for _, args in published] == [
        (connection.pk, False, "manual"),
        (connection.pk, True, "manual"),
    ]
    assert staff_client.get(url).status_code == 405


def test_sync_and_test_need_the_change_permission(connection, published):
    viewer = Client()
    viewer.force_login(staff_with("integrations.view_connection"))
    for path in ("sync", "test"):
        assert (
            viewer.post(f"/admin/integrations/connection/{connection.pk}/{path}/").status_code
            == 403
        )
    listing = viewer.get(CHANGELIST).content.decode()
    assert "sync_now" not in listing and "test_connection" not in listing
    assert published == []


def _entry(connection, issue, status, attempts=0, error=""):
    return OutboxEntry.objects.create(
        connection=connection,
        issue=issue,
        operation="update",
        changes={"title": "x"},
        status=status,
        attempts=attempts,
        last_error=error,
        next_attempt_at=timezone.now() + timedelta(hours=1),
    )


@pytest.fixture
def outbox(connection):
    issue = Issue.objects.create(
        connection=connection, external_id="7", external_number="7", title="t"
    )
    return {
        "failed": _entry(connection, issue, OutboxStatus.FAILED, 5, "HTTP 500"),
        "pending": _entry(connection, issue, OutboxStatus.PENDING, 2),
        "done": _entry(connection, issue, OutboxStatus.DONE, 1),
    }


def test_retry_now_makes_pending_and_failed_rows_due_at_once(
    outbox, staff_client, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/issues/outboxentry/",
            {"action": "retry_now", "_selected_action": [e.pk for e in outbox.values()]},
        )
    assert messages_of(response) == [
        "2 outbox entries queued for an immediate push.",
        "1 skipped: already done or being pushed.",
    ]
    now = timezone.now()
    for name in ("failed", "pending"):
        row = OutboxEntry.objects.get(pk=outbox[name].pk)
        assert (row.status, row.attempts) == (OutboxStatus.PENDING, 0)
        assert row.next_attempt_at <= now
    assert OutboxEntry.objects.get(pk=outbox["done"].pk).status == OutboxStatus.DONE
    assert published == [("issues.tasks.drain_outbox", ())]


def test_requeue_failed_touches_only_failed_rows(
    outbox, staff_client, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/issues/outboxentry/",
            {"action": "requeue_failed", "_selected_action": [e.pk for e in outbox.values()]},
        )
    assert messages_of(response)[0] == "1 outbox entry queued for an immediate push."
    assert OutboxEntry.objects.get(pk=outbox["failed"].pk).status == OutboxStatus.PENDING
    pending = OutboxEntry.objects.get(pk=outbox["pending"].pk)
    assert pending.attempts == 2 and pending.next_attempt_at > timezone.now()


def test_outbox_actions_need_the_change_permission(outbox):
    viewer = Client()
    viewer.force_login(staff_with("issues.view_outboxentry"))
    response = viewer.post(
        "/admin/issues/outboxentry/",
        {"action": "requeue_failed", "_selected_action": [outbox["failed"].pk]},
    )
    assert response.status_code == 200  # the admin answers "no action selected"
    assert OutboxEntry.objects.get(pk=outbox["failed"].pk).status == OutboxStatus.FAILED


def test_reprocess_puts_deliveries_back_and_queues_them(
    connection, staff_client, published, django_capture_on_commit_callbacks
):
    now = timezone.now()
    made = [
        WebhookDelivery.objects.create(
            provider="gitea",
            connection=connection,
            delivery_id=f"d{n}",
            event="issues",
            body=b"{}",
            status=status,
            processed_at=processed,
            error="boom",
        )
        for n, (status, processed) in enumerate(
            [
                (DeliveryStatus.FAILED, now - timedelta(minutes=3)),
                (DeliveryStatus.PROCESSED, now - timedelta(minutes=3)),
                (DeliveryStatus.PROCESSING, now),  # a worker has it right now: left alone
            ]
        )
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/integrations/webhookdelivery/",
            {"action": "reprocess", "_selected_action": [d.pk for d in made]},
        )
    assert messages_of(response) == [
        "2 deliveries queued for processing again.",
        "1 skipped: a worker is processing them right now.",
    ]
    first, second, busy = (WebhookDelivery.objects.get(pk=d.pk) for d in made)
    assert (first.status, first.error, first.processed_at) == (DeliveryStatus.RECEIVED, "", None)
    assert second.status == DeliveryStatus.RECEIVED
    assert busy.status == DeliveryStatus.PROCESSING
    assert published == [
        ("issues.tasks.process_webhook_event", (first.pk,)),
        ("issues.tasks.process_webhook_event", (second.pk,)),
    ]


def test_a_reprocessed_delivery_is_applied_again_by_the_task(
    tracker, staff_client, published, django_capture_on_commit_callbacks
):
    from issues.tasks import process_webhook_event

    fake_issue = tracker.fake.seed_issue(title="Hello", notify=True)
    tracker.deliver_all()
    issue = tracker.issue(fake_issue.number)
    Issue.objects.filter(pk=issue.pk).delete()  # lost locally, say
    delivery = WebhookDelivery.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(
            "/admin/integrations/webhookdelivery/",
            {"action": "reprocess", "_selected_action": [delivery.pk]},
        )
    ((_, args),) = published
    assert process_webhook_event(*args) == "created"
    assert tracker.issue(fake_issue.number).title == "Hello"

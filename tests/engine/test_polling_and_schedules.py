from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from integrations.fake_trackers.base import Fault
from integrations.models import Connection
from issues.polling import CURSOR_OVERLAP, SyncAlreadyRunning, due_connections, sync_connection


def test_cursor_is_the_newest_tracker_stamp_of_a_successful_run_only(harness):
    harness.fake.seed_issue(title="one")
    harness.fake.advance_clock(-3600)  # the tracker's clock, not ours, is what counts
    newest = harness.fake.seed_issue(title="two").updated_at
    run = harness.poll()
    harness.connection.refresh_from_db()
    assert run.success
    assert harness.connection.poll_cursor == max(newest, harness.fake.issues[1].updated_at)
    cursor = harness.connection.poll_cursor

    harness.fake.inject(Fault(status=500, count=20, method="GET"))
    failed = harness.poll()
    harness.connection.refresh_from_db()
    assert failed.success is False and "transient" in failed.error
    assert harness.connection.poll_cursor == cursor  # a failed run never moves the cursor


def test_incremental_poll_asks_since_the_cursor_minus_the_overlap(harness):
    harness.fake.seed_issue(title="one")
    harness.poll()
    harness.connection.refresh_from_db()
    harness.fake.reset_requests()
    harness.poll()
    since = harness.fake.requests[0].query["since"][0]
    expected = (harness.connection.poll_cursor - CURSOR_OVERLAP).strftime("%Y-%m-%dT%H:%M:%S")
    assert since.startswith(expected)


def test_two_runs_never_overlap_on_one_connection(harness):
    Connection.objects.filter(pk=harness.connection.pk).update(
        sync_lock_until=timezone.now() + timedelta(minutes=5)
    )
    with pytest.raises(SyncAlreadyRunning):
        sync_connection(connection_id=harness.connection.pk, full=False)
    # An expired lease (a killed worker's) does not block the next run.
    Connection.objects.filter(pk=harness.connection.pk).update(
        sync_lock_until=timezone.now() - timedelta(seconds=1)
    )
    assert sync_connection(connection_id=harness.connection.pk, full=False).success


def test_every_run_is_recorded_with_counts(harness):
    for n in range(3):
        harness.fake.seed_issue(title=f"i{n}")
    run = harness.poll(full=True)
    assert (run.seen, run.created, run.deleted, run.success) == (3, 3, 0, True)
    assert run.finished_at is not None and run.duration_seconds is not None
    assert run.requests >= 1


def test_a_full_pass_writes_its_progress_after_the_first_page_then_at_intervals(
    harness, monkeypatch
):
    """Before: one progress UPDATE — a commit of its own — per page."""
    monkeypatch.setattr("issues.polling.PROGRESS_INTERVAL", 3600.0)
    for n in range(160):  # four pages at Gitea's 50
        harness.fake.seed_issue(title=f"i{n}")
    with CaptureQueriesContext(db_connection) as captured:
        run = harness.poll(full=True)
    progress = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith("UPDATE") and 'SET "seen" = ' in q["sql"]
    ]
    assert len(progress) == 1, progress  # the first page's
    assert (run.seen, run.total, run.created) == (160, 160, 160)  # the run's own save


@pytest.mark.django_db
def test_saving_a_connection_updates_its_schedule_in_place() -> None:
    connection = Connection.objects.create(
        name="c", provider="gitea", base_url="http://x", repository="a/b"
    )
    task = PeriodicTask.objects.get(name=f"full sync of connection {connection.pk}")
    assert json.loads(task.kwargs) == {"connection_id": connection.pk}
    assert task.interval.every == 86_400 and task.enabled
    connection.full_sync_interval_seconds = 3600
    connection.enabled = False
    connection.save()
    again = PeriodicTask.objects.get(name=f"full sync of connection {connection.pk}")
    assert again.pk == task.pk  # updated, never deleted and re-created
    assert again.interval.every == 3600 and not again.enabled


@pytest.mark.django_db
def test_sync_schedules_registers_the_global_tasks() -> None:
    call_command("sync_schedules", stdout=open("/dev/null", "w"))  # noqa: SIM115
    names = set(PeriodicTask.objects.values_list("task", flat=True))
    assert {
        "issues.tasks.drain_outbox",
        "issues.tasks.sweep_webhook_deliveries",
        "issues.tasks.sync_issues_incremental",
    } <= names


@pytest.mark.django_db
def test_due_connections_honour_intervals_and_poll_faster_when_webhooks_are_unhealthy():
    now = timezone.now()
    fresh = Connection.objects.create(
        name="fresh", provider="gitea", base_url="http://x", repository="a/1", last_polled_at=now
    )
    Connection.objects.create(name="never", provider="gitea", base_url="http://x", repository="a/2")
    unhealthy = Connection.objects.create(
        name="unhealthy",
        provider="gitea",
        base_url="http://x",
        repository="a/3",
        last_polled_at=now - timedelta(seconds=90),
        webhook_healthy=False,
    )
    Connection.objects.create(
        name="off", provider="gitea", base_url="http://x", repository="a/4", enabled=False
    )
    due = set(due_connections())
    names = set(Connection.objects.filter(pk__in=due).values_list("name", flat=True))
    assert names == {"never", "unhealthy"}
    assert fresh.pk not in due and unhealthy.pk in due

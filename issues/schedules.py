"""Periodic tasks in django-celery-beat, kept in step with connections.

Always `update_or_create` by a stable name — never delete-and-recreate, which would reset
beat's last-run bookkeeping and can fire a task twice.
"""

from __future__ import annotations

import json
import zlib

from django.db import connection as db_connection
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from integrations.models import Connection

GLOBAL_TASKS: dict[str, tuple[str, int]] = {
    # name: (task, every N seconds)
    "outbox drain": ("issues.tasks.drain_outbox", 30),
    "webhook delivery sweep": ("issues.tasks.sweep_webhook_deliveries", 60),
    "due incremental polls": ("issues.tasks.sync_issues_incremental", 30),
    "conflict notifications": ("notifications.tasks.send_conflict_notifications", 60),
}


# One PostgreSQL advisory lock for the schedule tables, whose rows have no unique constraint.
_SCHEDULE_LOCK = zlib.crc32(b"syndarix:schedules")


def _every(seconds: int) -> IntervalSchedule:
    """The interval row for `seconds`, created race-free.

    django-celery-beat's tables have no unique constraint, so two connections saved at the
    same moment both missed the row in `get_or_create`, both inserted one, and every later
    `get()` raised MultipleObjectsReturned (a 500). A transaction-scoped advisory lock
    serialises the look-up and the insert (held until the caller's transaction commits, so
    the second writer sees the first one's row); duplicates left by older versions are
    tolerated by taking the oldest.
    """
    every = max(1, seconds)
    with transaction.atomic():
        if db_connection.vendor == "postgresql":
            with db_connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SCHEDULE_LOCK])
        # SQLite serialises writers by itself: one write transaction at a time.
        existing = (
            IntervalSchedule.objects.filter(every=every, period=IntervalSchedule.SECONDS)
            .order_by("id")
            .first()
        )
        if existing is not None:
            return existing
        return IntervalSchedule.objects.create(every=every, period=IntervalSchedule.SECONDS)


def global_schedules_sync() -> None:
    for name, (task, seconds) in GLOBAL_TASKS.items():
        PeriodicTask.objects.update_or_create(
            name=name,
            defaults={"task": task, "interval": _every(seconds), "enabled": True, "queue": "sync"},
        )


def connection_schedules_sync(*, connection: Connection) -> None:
    """The daily (by default) full reconciliation of one connection. Incremental polls are
    driven by the global "due incremental polls" task, which honours each connection's own
    interval and polls faster while its webhooks are unhealthy."""
    PeriodicTask.objects.update_or_create(
        name=f"full sync of connection {connection.pk}",
        defaults={
            "task": "issues.tasks.sync_issues_full",
            "interval": _every(connection.full_sync_interval_seconds),
            "kwargs": json.dumps({"connection_id": connection.pk}),
            "enabled": connection.enabled,
            "queue": "sync",
        },
    )


def connection_schedules_disable(*, connection_id: int) -> None:
    PeriodicTask.objects.filter(name=f"full sync of connection {connection_id}").update(
        enabled=False
    )

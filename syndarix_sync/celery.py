"""The Celery app: every task runs on queue `sync`; schedules live in django-celery-beat."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syndarix_sync.settings")

app = Celery("syndarix_sync")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def _drop_broken_database_connections(task: Any = None, **_: Any) -> None:
    """A connection that failed in an earlier task (PostgreSQL restarted, say) is checked and
    replaced before this one runs. Celery's own fixup looks only every CELERY_DB_REUSE_MAX
    tasks, so without this a worker fails task after task on a dead connection. Healthy
    connections are left alone: no ping per task."""
    from django.db import connections

    if task is not None and task.request.is_eager:
        return  # runs inside its caller, on the caller's connection and transaction
    for connection in connections.all(initialized_only=True):
        if connection.errors_occurred:
            connection.close_if_unusable_or_obsolete()

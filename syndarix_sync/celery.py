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
    """What Django does around each request, done before each task: a connection broken by a
    PostgreSQL restart (or past CONN_MAX_AGE) is closed, and CONN_HEALTH_CHECKS pings the
    one reused. Celery's own fixup checks only every CELERY_DB_REUSE_MAX tasks, so without
    this a worker would fail task after task on a dead connection."""
    from django.db import close_old_connections

    if task is not None and task.request.is_eager:
        return  # runs inside its caller, on the caller's connection and transaction
    close_old_connections()


# Connects the signals that carry the correlation id from publisher to worker.
import syndarix_sync.correlation  # noqa: E402,F401

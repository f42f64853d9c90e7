"""Queue Celery tasks only after the surrounding transaction commits.

A task queued inside a transaction can run before the commit and miss its row; a task queued
after a rollback works on nothing. If the broker is down the row is still committed, and the
periodic sweeps pick it up: publishing failures are logged, never raised into a request.
"""

from __future__ import annotations

from typing import Any

from celery import Task
from django.db import transaction

from syndarix_sync.logs import get_logger

logger = get_logger(__name__)

# Fail fast when the broker is down: the database row is the durable record, not the message.
PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}


def publish(task: Task, *args: Any, **kwargs: Any) -> bool:
    try:
        task.apply_async(args=args, kwargs=kwargs, retry=True, retry_policy=PUBLISH_RETRY_POLICY)
    except Exception as exc:  # noqa: BLE001 - broker down: the sweep re-queues from the database
        # No traceback: during an outage every request would print the same one.
        logger.warning(
            "queue_unavailable",
            task=task.name,
            args=list(args),
            error=f"{type(exc).__name__}: {exc}",
            detail="the work is stored in the database; the sweep will queue it",
        )
        return False
    return True


def queue_on_commit(task: Task, *args: Any, **kwargs: Any) -> None:
    transaction.on_commit(lambda: publish(task, *args, **kwargs))

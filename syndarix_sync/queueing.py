"""Queue Celery tasks only after the surrounding transaction commits.

A task queued inside a transaction can run before the commit and miss its row; a task queued
after a rollback works on nothing. If the broker is down the row is still committed, and the
periodic sweeps pick it up: publishing failures are logged, never raised into a request.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from django.db import transaction

logger = logging.getLogger(__name__)

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
    except Exception:  # broker down: the sweep re-queues from the database
        logger.warning(
            "could not queue %s%r; the sweep will pick it up", task.name, args, exc_info=True
        )
        return False
    return True


def queue_on_commit(task: Task, *args: Any, **kwargs: Any) -> None:
    transaction.on_commit(lambda: publish(task, *args, **kwargs))

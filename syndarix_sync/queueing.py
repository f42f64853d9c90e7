"""Queue Celery tasks only after the surrounding transaction commits.

A task queued inside a transaction can run before the commit and miss its row; a task queued
after a rollback works on nothing. If the broker is down the row is still committed, and the
periodic sweeps pick it up: publishing failures are logged, never raised into a request.
"""

from __future__ import annotations

import functools
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


# --- one wake-up for many rows ------------------------------------------------------------------
# A task that drains rows (stored webhook deliveries) needs one message to start, not one per
# row: a flag in the shared Redis (REDIS_URL) says "a drain is queued or running". Whoever
# stores a row publishes only when it sets the flag; the drain clears it once a claim finds
# nothing, and claims once more after that, so a row stored before the flag came down is
# claimed and one stored after it publishes again. A lost message or a killed worker costs at
# most the flag's lifetime, then the next row publishes; the periodic sweep stays the net
# under all of it.
WAKE_FLAG_SECONDS = 10


@functools.cache
def _wake_client(url: str) -> Any:
    import redis

    # Short timeouts: Redis gone must not hold a webhook's answer (the sweep covers it).
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=1)


def _wake_redis() -> Any:
    """The shared Redis the flags live in; None without one (every row then publishes: a
    per-process flag would hide other processes' rows, a database one cost a write a row)."""
    from django.conf import settings

    return _wake_client(settings.REDIS_URL) if settings.REDIS_URL else None


def wake(task: Task, flag: str, *args: Any) -> bool:
    """Publish `task` unless a wake-up published under `flag` has not started yet."""
    client = _wake_redis()
    if client is not None:
        try:
            if not client.set(flag, 1, nx=True, ex=WAKE_FLAG_SECONDS):
                return True  # one is queued: it will claim this row too
        except Exception as exc:  # noqa: BLE001 - Redis down: publish (which logs if it fails)
            logger.warning("wake_flag_unavailable", error=f"{type(exc).__name__}: {exc}")
    return publish(task, *args)


def wake_on_commit(task: Task, flag: str, *args: Any) -> None:
    transaction.on_commit(lambda: wake(task, flag, *args))


def woken(flag: str) -> None:
    """Called by the woken task when it is about to stop: later rows must publish again."""
    client = _wake_redis()
    if client is None:
        return
    try:
        client.delete(flag)
    except Exception as exc:  # noqa: BLE001 - the flag expires by itself
        logger.warning("wake_flag_unavailable", error=f"{type(exc).__name__}: {exc}")

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


# --- one wake-up for many rows ------------------------------------------------------------------
# A task that drains rows (stored webhook deliveries) needs one message to start, not one per
# row: a flag in the shared Redis cache says "a wake-up is queued and has not started yet".
# Whoever stores a row publishes only when it sets the flag; the task clears it each time it
# starts a round of claiming, before the claim, so a row stored after the claim publishes
# again. A lost message (broker restarted) costs at most the flag's lifetime, then the next
# row publishes; the periodic sweep stays the net under all of it.
WAKE_FLAG_SECONDS = 10


def _wake_cache() -> Any:
    from django.conf import settings
    from django.core.cache import cache

    # Only a cache every process shares, cheaply: with the database cache the flag would
    # cost a write per row, and a per-process cache would hide other processes' flags.
    backend = str(settings.CACHES["default"]["BACKEND"])
    return cache if backend.endswith("RedisCache") else None


def wake(task: Task, flag: str, *args: Any) -> bool:
    """Publish `task` unless a wake-up published under `flag` has not started yet."""
    cache = _wake_cache()
    if cache is not None:
        try:
            if not cache.add(flag, 1, timeout=WAKE_FLAG_SECONDS):
                return True  # one is queued: it will claim this row too
        except Exception as exc:  # noqa: BLE001 - Redis down: publish (which logs if it fails)
            logger.warning("wake_flag_unavailable", error=f"{type(exc).__name__}: {exc}")
    return publish(task, *args)


def wake_on_commit(task: Task, flag: str, *args: Any) -> None:
    transaction.on_commit(lambda: wake(task, flag, *args))


def woken(flag: str) -> None:
    """Called by the woken task before each claim: later rows must publish again."""
    cache = _wake_cache()
    if cache is None:
        return
    try:
        cache.delete(flag)
    except Exception as exc:  # noqa: BLE001 - the flag expires by itself
        logger.warning("wake_flag_unavailable", error=f"{type(exc).__name__}: {exc}")

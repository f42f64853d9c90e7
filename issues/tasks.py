"""Celery tasks: thin, idempotent, taking ids; the work lives in the engine modules."""

from __future__ import annotations

from typing import Any

from celery import shared_task


def deliveries_wake_flag() -> str:
    """The flag of a queued, not yet started drain (syndarix_sync.queueing.wake): one per
    database, so services (and test runs) sharing a Redis never hide each other's."""
    from django.db import connection

    return f"syndarix:deliveries-wake:{connection.settings_dict['NAME']}"


@shared_task(name="issues.tasks.process_webhook_event", acks_late=True)
def process_webhook_event(delivery_id: int | None = None) -> str:
    """A wake-up: drain the stored deliveries a batch at a time (the one that queued this
    message among them); the outcome of `delivery_id` when this drain processed it."""
    from issues.inbound import drain_deliveries

    outcomes = drain_deliveries()
    if delivery_id is None:
        return f"{len(outcomes)} processed"
    return outcomes.get(delivery_id, "not-claimable")


@shared_task(name="issues.tasks.sweep_webhook_deliveries")
def sweep_webhook_deliveries() -> int:
    """Wake a drain for deliveries stored but never processed (broker down, worker killed);
    one message for all of them. Returns how many were found."""
    from issues.inbound import stuck_deliveries
    from syndarix_sync.queueing import publish

    ids = stuck_deliveries()
    if ids:
        publish(process_webhook_event, ids[0])
    return len(ids)


@shared_task(name="issues.tasks.sync_project_issues", acks_late=True)
def sync_project_issues(
    connection_id: int, full: bool = False, trigger: str = ""
) -> dict[str, Any]:
    from issues.polling import SyncAlreadyRunning, sync_connection

    try:
        run = sync_connection(connection_id=connection_id, full=full, trigger=trigger)
    except SyncAlreadyRunning as exc:
        return {"status": "skipped", "reason": str(exc)}
    return {"status": "ok" if run.success else "failed", "run": run.pk, "error": run.error}


@shared_task(name="issues.tasks.sync_issues_incremental")
def sync_issues_incremental(connection_id: int | None = None) -> list[int]:
    """Poll one connection, or every enabled connection whose interval is due."""
    from issues.polling import due_connections
    from syndarix_sync.queueing import publish

    ids = [connection_id] if connection_id is not None else due_connections()
    for cid in ids:
        publish(sync_project_issues, cid, False)
    return ids


@shared_task(name="issues.tasks.sync_issues_full")
def sync_issues_full(connection_id: int | None = None) -> list[int]:
    from integrations.models import Connection
    from syndarix_sync.queueing import publish

    ids = (
        [connection_id]
        if connection_id is not None
        else list(Connection.objects.filter(enabled=True).values_list("id", flat=True))
    )
    for cid in ids:
        publish(sync_project_issues, cid, True)
    return ids


@shared_task(name="issues.tasks.push_issue_to_external", acks_late=True)
def push_issue_to_external(issue_id: int) -> dict[str, int]:
    from issues.outbox import drain

    report = drain(issue_id=issue_id)
    return {"pushed": report.pushed, "skipped": report.skipped, "failed": report.failed}


@shared_task(name="issues.tasks.drain_outbox", acks_late=True)
def drain_outbox() -> dict[str, int]:
    """The periodic backstop: everything due, including rows whose lease ran out."""
    from issues.outbox import drain

    report = drain()
    return {"pushed": report.pushed, "skipped": report.skipped, "failed": report.failed}

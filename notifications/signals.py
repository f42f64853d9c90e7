"""Events observed from the models the engine writes, without touching the engine."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from issues.models import Conflict, SyncRun
from notifications.models import EventType
from notifications.services import event_record


@receiver(post_save, sender=Conflict, dispatch_uid="notifications.conflict")
def conflict_saved(sender: Any, instance: Conflict, created: bool, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return
    kind = EventType.CONFLICT_RESOLVED if instance.resolved else EventType.CONFLICT_OPENED
    if kind == EventType.CONFLICT_OPENED and not created:
        return  # an open conflict updated in place (a newer remote value) is not news
    connection_id = instance.issue.connection_id

    def record() -> None:
        event_record(
            type=kind,
            connection_id=connection_id,
            issue_id=instance.issue_id,
            object_id=instance.pk,
            data={"conflict": instance.pk, "field": instance.field},
        )

    transaction.on_commit(record)


@receiver(post_save, sender=SyncRun, dispatch_uid="notifications.sync_run")
def sync_run_saved(sender: Any, instance: SyncRun, **kwargs: Any) -> None:
    if kwargs.get("raw") or instance.finished_at is None:
        return
    run = instance

    def record() -> None:
        event_record(
            type=EventType.SYNC_RUN_FINISHED,
            connection_id=run.connection_id,
            object_id=run.pk,
            data={
                "run": run.pk,
                "kind": run.kind,
                "success": bool(run.success),
                "error": run.error[:500],
            },
        )

    transaction.on_commit(record)

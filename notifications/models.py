from __future__ import annotations

from django.db import models


class EventType(models.TextChoices):
    CONFLICT_OPENED = "conflict_opened", "Conflict opened"
    CONFLICT_RESOLVED = "conflict_resolved", "Conflict resolved"
    PUSH_FAILED = "push_failed", "Push failed"
    SYNC_RUN_FINISHED = "sync_run_finished", "Sync run finished"


class Event(models.Model):
    """Something an agent or a person wants to hear about, in the order it happened.

    The id is the cursor of `GET /api/v1/events/`. `object_id` is the conflict, outbox entry
    or run the event is about (with `type`, it keeps a signal that fires twice from recording
    the same event twice). `notified_at` is set once a conflict_opened event was mailed."""

    type = models.CharField(max_length=32, choices=EventType.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    connection = models.ForeignKey(
        "integrations.Connection", on_delete=models.CASCADE, related_name="events"
    )
    issue = models.ForeignKey(
        "issues.Issue", null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    object_id = models.BigIntegerField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["type", "object_id"], name="event_once_per_object")
        ]
        indexes = [
            models.Index(
                fields=["type", "notified_at"],
                name="event_unnotified",
                condition=models.Q(notified_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} #{self.pk}"

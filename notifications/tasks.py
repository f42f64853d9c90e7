from __future__ import annotations

from celery import shared_task

from notifications.services import conflict_notifications_send


@shared_task(name="notifications.tasks.send_conflict_notifications", ignore_result=True)
def send_conflict_notifications() -> int:
    """Periodic (every minute): what accumulated since the last run goes out as one mail per
    connection."""
    return conflict_notifications_send()

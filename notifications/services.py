"""Recording events and mailing conflict notifications."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from notifications.models import Event, EventType


def event_record(
    *,
    type: str,
    connection_id: int,
    issue_id: int | None = None,
    object_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> Event | None:
    """Record one event; a second event of the same type about the same object is ignored
    (returns None), so a receiver that fires twice never reports something twice."""
    try:
        with transaction.atomic():
            return Event.objects.create(
                type=type,
                connection_id=connection_id,
                issue_id=issue_id,
                object_id=object_id,
                data=data or {},
            )
    except IntegrityError:
        return None


def notification_addresses(raw: str) -> list[str]:
    """The addresses of a connection's `notify_emails` (comma, space or newline separated)."""
    return [part for part in raw.replace(",", " ").split() if part]


def conflict_notifications_send() -> int:
    """Mail every connection's not-yet-mailed opened conflicts, one message per connection:
    a burst of conflicts between two runs of this (periodic) task is one e-mail. Returns the
    number of messages sent. Events of connections without addresses are marked done too."""
    sent = 0
    with transaction.atomic():
        pending = list(
            Event.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(type=EventType.CONFLICT_OPENED, notified_at__isnull=True)
            .select_related("connection", "issue")
            .order_by("id")
        )
        by_connection: dict[int, list[Event]] = defaultdict(list)
        for event in pending:
            by_connection[event.connection_id].append(event)
        for events in by_connection.values():
            connection = events[0].connection
            addresses = notification_addresses(connection.notify_emails)
            if addresses:
                send_mail(
                    subject=_subject(connection.name, len(events)),
                    message=_body(events),
                    from_email=None,
                    recipient_list=addresses,
                )
                sent += 1
        Event.objects.filter(pk__in=[e.pk for e in pending]).update(notified_at=timezone.now())
    return sent


def _subject(name: str, count: int) -> str:
    return f"[Syndarix Sync] {count} new conflict{'' if count == 1 else 's'} on {name}"


def _body(events: list[Event]) -> str:
    lines = ["These fields changed on both sides and wait for a decision:", ""]
    for event in events:
        issue = event.issue
        title = str(issue) if issue is not None else "(issue deleted)"
        field = event.data.get("field", "?")
        url = settings.PUBLIC_URL + reverse("admin:issues_conflict_resolve", args=[event.object_id])
        lines.append(f"- {title}: {field} — resolve at {url}")
    lines += ["", "The tracker keeps its value until someone decides."]
    return "\n".join(lines)

"""`GET /api/v1/events/?after=<cursor>&wait=<seconds>` (SPEC §6).

Events oldest first, at most `limit` (100), with `next`: the cursor to send as `after` to get
the ones after these (the same cursor again when nothing was new). With `wait` (at most 25 s)
and nothing new, the request waits for an event — checking the database once a second — so
an agent listens without polling in a loop.

A waiting request holds a web thread: the web runs gunicorn's gthread workers (Procfile,
`WEB_THREADS`), and at most `EVENTS_MAX_WAITERS` requests per process wait at once; any
further one answers at once (with `"waited": false`), so listeners can never take the
threads the webhook intake needs.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from issues.api.permissions import scoped
from issues.api.schema import api_operation
from issues.api.views import ApiView
from notifications.models import Event

MAX_WAIT_SECONDS = 25
PAGE = 100
_waiters = threading.BoundedSemaphore(getattr(settings, "EVENTS_MAX_WAITERS", 16))


class EventSerializer(serializers.ModelSerializer[Event]):
    id = serializers.CharField(help_text="Also the cursor of this event.")

    class Meta:
        model = Event
        fields = ("id", "type", "created_at", "connection", "issue", "data")


class EventPageSerializer(serializers.Serializer[Any]):
    events = EventSerializer(many=True)
    next = serializers.CharField(help_text="Send as `after` to get the events after these.")
    waited = serializers.BooleanField()


def _int_param(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or len(raw) > 18:
        raise ValidationError({name: "must be a non-negative integer"})
    return min(int(raw), maximum)


def _settled(rows: QuerySet[Event], after: int) -> list[Event]:
    """The events after the cursor, up to the first one younger than EVENTS_SETTLE_SECONDS.

    Ids are handed out when a row is inserted, not when it commits: a younger event with a
    smaller id could still become visible after a reader moved its cursor past it. Events
    are recorded after their change commits, in a one-statement transaction, so a second is
    far more than that window; holding back everything from the first young event keeps the
    cursor from skipping any."""
    events = list(rows.filter(id__gt=after).order_by("id")[:PAGE])
    settle = float(getattr(settings, "EVENTS_SETTLE_SECONDS", 1.0))
    if settle <= 0:
        return events
    horizon = timezone.now() - timedelta(seconds=settle)
    for index, event in enumerate(events):
        if event.created_at > horizon:
            return events[:index]
    return events


class EventListApi(ApiView):
    queryset = Event.objects.all()
    scope_field = "connection_id"
    pagination_class = None

    @api_operation(
        summary="Events: conflicts opened/resolved, pushes failed, sync runs finished",
        tag="sync",
        responses={200: EventPageSerializer},
        parameters=[
            OpenApiParameter("after", int, description="Cursor: the `next` of the last answer."),
            OpenApiParameter("wait", int, description="Long-poll up to this many seconds (≤25)."),
        ],
    )
    def get(self, request: Request) -> Response:
        after = _int_param(request, "after", 0, 2**62)
        wait = _int_param(request, "wait", 0, MAX_WAIT_SECONDS)
        rows = scoped(Event.objects.all(), request, self.scope_field)
        events = _settled(rows, after)
        waited = False
        if not events and wait and _waiters.acquire(blocking=False):
            waited = True
            try:
                deadline = time.monotonic() + wait
                while not events and time.monotonic() < deadline:
                    time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
                    events = _settled(rows, after)
            finally:
                _waiters.release()
        next_cursor = events[-1].pk if events else after
        return Response(
            {
                "events": EventSerializer(events, many=True).data,
                "next": str(next_cursor),
                "waited": waited,
            }
        )

"""`GET /api/v1/events/?after=<cursor>&wait=<seconds>` (SPEC §6).

Events oldest first, at most `limit` (100), with `next`: the cursor to send as `after` to get
the ones after these (the same cursor again when nothing was new). With `wait` (at most 25 s)
and nothing new, the request waits for an event (woken by one watcher thread per process,
see `_Bell`), so an agent listens without polling in a loop.

A waiting request holds a web thread: the web runs gunicorn's gthread workers (Procfile,
`WEB_THREADS`, 64), and at most `EVENTS_MAX_WAITERS` (40) requests per process wait at once;
any further one answers at once (`"waited": false`, `Retry-After: 5`), so listeners never
take the threads the webhook intake needs.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

from django import db
from django.conf import settings
from django.db.models import Max, QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from issues.api.permissions import scoped
from issues.api.schema import BAD_REQUEST, api_operation
from issues.api.views import ApiView
from notifications.models import Event

MAX_WAIT_SECONDS = 25
PAGE = 100
BELL_INTERVAL_SECONDS = 0.5
OVERFLOW_RETRY_AFTER = 5
_waiters = threading.BoundedSemaphore(getattr(settings, "EVENTS_MAX_WAITERS", 40))


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


class _Bell:
    """One thread per web process watches the newest settled event id (two small queries a
    second) and wakes the waiting requests when it moves; a waiting request holds no
    database connection and sends no query until then."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.latest = 0
        self._running = False
        self._last_wanted = 0.0
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._start_lock:
            self._last_wanted = time.monotonic()
            if not self._running:
                self._running = True
                self.latest = self._newest_or_latest()
                self._thread = threading.Thread(target=self._watch, name="events-bell", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Stop watching now (tests: no thread may query a database being torn down)."""
        with self._start_lock:
            self._last_wanted = float("-inf")
            thread = self._thread
        if thread is not None:
            thread.join(5)

    def _newest_or_latest(self) -> int:
        try:
            return self._newest()
        except Exception:  # noqa: BLE001 - the database is down: try again, keep serving
            return self.latest
        finally:
            _close_connection()

    def _newest(self) -> int:
        horizon = timezone.now() - timedelta(
            seconds=float(getattr(settings, "EVENTS_SETTLE_SECONDS", 1.0))
        )
        newest = Event.objects.filter(created_at__lte=horizon).aggregate(Max("id"))["id__max"]
        return int(newest or 0)

    def _watch(self) -> None:
        while True:
            with self._start_lock:
                # Nobody has waited for a while (longer than any wait): stop watching.
                if time.monotonic() - self._last_wanted > MAX_WAIT_SECONDS + 5:
                    self._running = False
                    return
            newest = self._newest_or_latest()
            if newest != self.latest:
                with self.changed:
                    self.latest = newest
                    self.changed.notify_all()
            time.sleep(BELL_INTERVAL_SECONDS)

    def wait_past(self, seen: int, timeout: float) -> int:
        with self.changed:
            self.changed.wait_for(lambda: self.latest != seen, timeout)
            return self.latest


events_bell = _Bell()


def _close_connection() -> None:
    if not db.connection.in_atomic_block:  # (a test's transaction)
        db.connection.close()


def _wait_for_events(rows: QuerySet[Event], after: int, wait: int) -> list[Event]:
    events_bell.start()
    _close_connection()  # not held while waiting: listeners must not exhaust PostgreSQL
    deadline = time.monotonic() + wait
    seen = events_bell.latest
    events: list[Event] = []
    while not events:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        latest = events_bell.wait_past(seen, remaining)
        if latest == seen:
            continue  # timed out (the loop ends) or a spurious wake-up
        seen = latest
        events = _settled(rows, after)  # may be none for this token's scope: wait on
        _close_connection()
    return events


class EventListApi(ApiView):
    queryset = Event.objects.all()
    scope_field = "connection_id"
    pagination_class = None

    @api_operation(
        summary="Events: conflicts opened/resolved, pushes failed, sync runs finished",
        tag="sync",
        responses={200: EventPageSerializer, 400: BAD_REQUEST},
        parameters=[
            OpenApiParameter("after", int, description="Cursor: the `next` of the last answer."),
            OpenApiParameter("wait", int, description="Long-poll up to this many seconds (≤25)."),
        ],
    )
    def get(self, request: Request) -> Response:
        after = _int_param(request, "after", 0, 2**62)
        wait = _int_param(
            request, "wait", 0, min(MAX_WAIT_SECONDS, getattr(settings, "EVENTS_MAX_WAIT", 25))
        )
        rows = scoped(Event.objects.all(), request, self.scope_field)
        events = _settled(rows, after)
        waited = False
        if not events and wait and _waiters.acquire(blocking=False):
            waited = True
            try:
                events = _wait_for_events(rows, after, wait)
            finally:
                _waiters.release()
        next_cursor = events[-1].pk if events else after
        response = Response(
            {
                "events": EventSerializer(events, many=True).data,
                "next": str(next_cursor),
                "waited": waited,
            }
        )
        if wait and not waited and not events:
            # Every waiting slot of this process is taken: ask the client to come back
            # later rather than let it spin.
            response["Retry-After"] = str(OVERFLOW_RETRY_AFTER)
        return response

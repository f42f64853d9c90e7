"""The correlation id at the two doors of a unit of work: an HTTP request and a Celery task.

A request takes the caller's `X-Correlation-ID` when it is plain enough to trust, or a new
one, binds it for every log line of the request, and answers with it. A task published while
an id is bound carries it in a message header; the worker binds it again before the task runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog
from celery import signals
from django.core.signals import request_finished
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

from syndarix_sync.logs import clean_correlation_id, current_correlation_id, get_logger
from syndarix_sync.logs import new_correlation_id as _new_id

logger = get_logger("syndarix.request")

HEADER = "X-Correlation-ID"
TASK_HEADER = "syndarix_correlation_id"
# Probed every few seconds by orchestrators and Prometheus: logged at DEBUG, not INFO.
_QUIET_PATHS = frozenset({"/healthz", "/metrics"})


class CorrelationIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        cid = clean_correlation_id(request.headers.get(HEADER)) or _new_id()
        request.correlation_id = cid  # type: ignore[attr-defined]
        # A thread serves many requests: nothing bound by the previous one may leak into this.
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(correlation_id=cid)
        started = time.perf_counter()
        response = self.get_response(request)
        response[HEADER] = cid
        status = response.status_code
        level = "debug" if request.path in _QUIET_PATHS and status < 500 else None
        if level is None:
            level = "error" if status >= 500 else "warning" if status >= 400 else "info"
        getattr(logger, level)(
            "request",
            method=request.method,
            path=request.path,  # never the query string: it may carry a token
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        # Still bound: Django logs a failed request's traceback after the middleware returns.
        # `request_finished` unbinds it once the response is sent.
        return response


@receiver(request_finished)
def _unbind_request_context(**_: Any) -> None:
    structlog.contextvars.clear_contextvars()


@signals.before_task_publish.connect
def _put_correlation_id_on_message(headers: dict[str, Any] | None = None, **_: Any) -> None:
    cid = current_correlation_id()
    if cid and headers is not None:
        headers[TASK_HEADER] = cid


@signals.task_prerun.connect
def _bind_task_context(task_id: str = "", task: Any = None, **_: Any) -> None:
    request = getattr(task, "request", None)
    if request is None:
        return
    if not request.is_eager:
        # A worker process runs task after task; an eager task runs inside its caller, whose
        # context (and correlation id) it keeps.
        structlog.contextvars.clear_contextvars()
    context: dict[str, Any] = {"task": task.name, "task_id": task_id}
    cid = clean_correlation_id(getattr(request, TASK_HEADER, None))
    if cid:
        context["correlation_id"] = cid
    structlog.contextvars.bind_contextvars(**context)


@signals.task_postrun.connect
def _unbind_task_context(task: Any = None, **_: Any) -> None:
    request = getattr(task, "request", None)
    if request is not None and not request.is_eager:
        structlog.contextvars.clear_contextvars()
    else:
        structlog.contextvars.unbind_contextvars("task", "task_id")

"""Answer 503, not 500, when the database is unreachable.

While PostgreSQL is down (restart, failover, network) every view that touches the database
raises `OperationalError` / `InterfaceError`. A 500 says "bug"; a 503 with `Retry-After` says
"come back shortly", which is the truth: trackers redeliver webhooks answered 5xx, and load
balancers and agents back off. Nothing is stored while the database is down, so nothing is
acknowledged that could be lost.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from syndarix_sync.logs import get_logger

logger = get_logger(__name__)

RETRY_AFTER_SECONDS = 5


def database_unavailable_response() -> JsonResponse:
    response = JsonResponse({"detail": "database unavailable"}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """Turns a database connection failure raised by a view into a 503 JSON answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OperationalError | InterfaceError):
            logger.warning(
                "database_unavailable",
                method=request.method,
                path=request.path,
                error=f"{type(exception).__name__}: {exception}",
            )
            return database_unavailable_response()
        return None


class ApiBodyLimitMiddleware:
    """A request to /api/ with a body over API_MAX_BODY_BYTES is answered 413 (JSON) from its
    Content-Length, before a byte of the body is read. Webhooks keep their own, larger limit
    (WEBHOOK_MAX_BODY_BYTES); a request without Content-Length has no body under WSGI."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            limit: int = settings.API_MAX_BODY_BYTES
            raw = request.META.get("CONTENT_LENGTH") or "0"
            try:
                length = int(raw)
            except ValueError:
                length = -1
            if length < 0:
                return JsonResponse(
                    {"detail": "Invalid Content-Length.", "code": "bad_request"}, status=400
                )
            if length > limit:
                return JsonResponse(
                    {
                        "detail": f"The request body is over {limit} bytes.",
                        "code": "request_too_large",
                    },
                    status=413,
                )
        return self.get_response(request)

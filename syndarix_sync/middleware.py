"""Answer 503, not 500, when the database is unreachable.

While PostgreSQL is down (restart, failover, network) every view that touches the database
raises `OperationalError` / `InterfaceError`. A 500 says "bug"; a 503 with `Retry-After` says
"come back shortly", which is the truth: trackers redeliver webhooks answered 5xx, and load
balancers and agents back off. Nothing is stored while the database is down, so nothing is
acknowledged that could be lost.
"""

from __future__ import annotations

from collections.abc import Callable

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

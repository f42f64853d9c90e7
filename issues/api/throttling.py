"""Per-user rate limits, one budget for reads and a smaller one for writes.

Rates come from settings (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], set from the environment)
and are read on every request, so a changed setting applies without re-importing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

READ_SCOPE = "api_read"
WRITE_SCOPE = "api_write"


class ApiRateThrottle(SimpleRateThrottle):
    def __init__(self) -> None:
        # SimpleRateThrottle resolves its rate here, from a fixed scope; this scope depends
        # on the request's method, so allow_request resolves the rate instead.
        self.rate = None

    def allow_request(self, request: Request, view: Any) -> bool:
        self.scope = READ_SCOPE if request.method in SAFE_METHODS else WRITE_SCOPE
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_rate(self) -> str | None:
        rates: Mapping[str, Any] = api_settings.DEFAULT_THROTTLE_RATES
        try:
            rate: str | None = rates[self.scope or ""]
        except KeyError:
            raise ImproperlyConfigured(f"No throttle rate set for scope {self.scope!r}") from None
        return rate

    def get_cache_key(self, request: Request, view: Any) -> str:
        if request.user is not None and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"addr-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

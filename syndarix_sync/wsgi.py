"""The WSGI application: Django, with the webhook intake on a middleware chain of its own.

A tracker's POST to `/webhooks/…` needs the correlation id, the security and common checks
(host, Content-Length) and the 503 on a database outage — not sessions, CSRF, auth, messages,
static files or frame options, which every other request keeps (settings.MIDDLEWARE vs
settings.WEBHOOK_MIDDLEWARE).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syndarix_sync.settings")

WEBHOOK_PREFIX = "/webhooks/"


class ShortChainHandler(WSGIHandler):
    """Django's WSGI handler (request signals, connection handling, URL routing, error
    answers) over its own middleware list."""

    def __init__(self, middleware: Sequence[str]) -> None:
        self.middleware = list(middleware)
        super().__init__()

    def load_middleware(self, is_async: bool = False) -> None:
        # Django builds the chain from settings.MIDDLEWARE and nothing else: the list is
        # swapped for this one build, at start-up, before any request is served.
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = self.middleware
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


def build_application() -> Callable[[dict[str, Any], Any], Iterable[bytes]]:
    django.setup(set_prefix=False)
    everything = WSGIHandler()
    webhooks = ShortChainHandler(settings.WEBHOOK_MIDDLEWARE)

    def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        handler = (
            webhooks if environ.get("PATH_INFO", "").startswith(WEBHOOK_PREFIX) else everything
        )
        return handler(environ, start_response)

    return application


application = build_application()

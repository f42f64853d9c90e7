"""Only http/https links from trackers, wherever they are stored or shown (SPEC §8).

The providers drop other URLs where they parse a tracker's answer (`shapes.web_url`); this
holds behind them whatever a provider does: the Issue column refuses to store, and gives
back as "", any URL that is not http/https, and the admin renders only such URLs as links.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.db import models


def is_web_url(value: object) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        parts = urlsplit(value.strip())
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def web_url_or_empty(value: object) -> str:
    return value if isinstance(value, str) and is_web_url(value) else ""


class WebUrlField(models.URLField):
    """A URLField that holds http/https URLs only, on every write (save, update,
    bulk_create) and every read (rows stored before the rule)."""

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return web_url_or_empty(value) if value else value

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return web_url_or_empty(value) if value else value

    def deconstruct(self) -> Any:
        # The column is a plain URLField: no migration, and none when this class moves.
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.URLField", args, kwargs

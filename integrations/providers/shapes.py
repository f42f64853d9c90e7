"""Shape checks for the JSON trackers send, and the header lookup webhooks need.

Every provider module reads documents (REST answers, webhook payloads) whose shape it relies
on; these helpers check one value each and raise `ShapeError`, naming where in the document
the value sits (`issue.number is not an integer (got a string)`). A ShapeError is internal:
the caller turns it into the public error that fits (a TransientError or PermanentError for
an API answer, a WebhookPayloadError for a delivery).
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from syndarix_sync.logs import get_logger

logger = get_logger(__name__)


class ShapeError(ValueError):
    """A JSON value does not have the shape the tracker documents."""


def describe(value: Any) -> str:
    """What a JSON value is, for an error message: `null`, `a string`, `an object`, …"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _found(data: Mapping[str, Any], key: str) -> str:
    return "it is missing" if key not in data else f"got {describe(data[key])}"


def is_int(value: Any) -> TypeGuard[int]:
    """An integer, and not a bool (bool is an int subclass; `"id": true` is no id)."""
    return isinstance(value, int) and not isinstance(value, bool)


def require_mapping(value: Any, what: str) -> Mapping[str, Any]:
    """`value` itself, which must be a JSON object; `what` names it (`issue.milestone`)."""
    if not isinstance(value, Mapping):
        raise ShapeError(f"{what} is not an object (got {describe(value)})")
    return value


# Every tracker's ids and numbers fit in 64 bits. JSON integers have no bound: a 150-digit
# "id" would pass as an int and then fail to store (external_id holds 100 characters).
MAX_ID = 2**63 - 1


def require_int(data: Mapping[str, Any], key: str, what: str) -> int:
    """`data[key]`, which must be an id or number: an integer from 0 to 2^63-1 (what the
    mirror's columns hold; no tracker numbers anything below zero). `what` names `data`."""
    value = data.get(key)
    if not is_int(value):
        raise ShapeError(f"{what}.{key} is not an integer ({_found(data, key)})")
    if not 0 <= value <= MAX_ID:
        raise ShapeError(f"{what}.{key} is out of range (negative or more than 64 bits)")
    return value


def require_str(data: Mapping[str, Any], key: str, what: str) -> str:
    """`data[key]`, which must be a string (empty allowed)."""
    value = data.get(key)
    if not isinstance(value, str):
        raise ShapeError(f"{what}.{key} is not a string ({_found(data, key)})")
    return value


def optional_str(data: Mapping[str, Any], key: str, what: str) -> str | None:
    """`data[key]` if it is a string; None if it is null or missing."""
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ShapeError(f"{what}.{key} is not a string (got {describe(value)})")
    return value


def optional_list(data: Mapping[str, Any], key: str, what: str) -> list[Any] | None:
    """`data[key]` if it is a list; None if it is null or missing."""
    value = data.get(key)
    if value is not None and not isinstance(value, list):
        raise ShapeError(f"{what}.{key} is not a list (got {describe(value)})")
    return value


WEB_URL_SCHEMES = ("http", "https")


def web_url(value: str | None, what: str) -> str:
    """A tracker's link to a web page (an issue's `html_url`/`web_url`) if it is an http or
    https URL with a host; otherwise "" — dropped and logged, never stored. Why: the mirror
    renders it as a link, and a forged `javascript:` URL there runs in the admin's session."""
    if not value:
        return ""
    try:
        parts = urlsplit(value.strip())
        ok = parts.scheme.lower() in WEB_URL_SCHEMES and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        scheme = value.split(":", 1)[0][:20] if ":" in value else ""
        logger.warning("tracker_url_dropped", what=what, scheme=scheme)
        return ""
    return value


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, looked up case-insensitively; None if absent (or not a string).

    Django's `request.headers` is case-insensitive already; plain dicts (tests, replays of
    stored deliveries) are not.
    """
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if isinstance(key, str) and key.lower() == lowered:
                value = candidate
                break
    return value if isinstance(value, str) else None


def signature_matches(
    *,
    secret: str,
    message: bytes,
    provided: str | None,
    algorithm: str = "sha256",
    prefix: str = "",
    base64_digest: bool = False,
) -> bool:
    """Whether `provided` (a webhook's signature header) is the HMAC of `message` under
    `secret`: `prefix` + hex digest (compared without regard to case, as hex is), or the
    base64 digest. Without a secret anyone could forge deliveries, so none is accepted; a
    header that cannot be encoded never matches. The one check every signing tracker uses."""
    if not secret or not provided:
        return False
    mac = hmac.new(secret.encode(), message, algorithm)
    sent = provided.strip()
    if base64_digest:
        expected = base64.b64encode(mac.digest())
    else:
        expected = (prefix + mac.hexdigest()).encode()
        sent = sent.lower()
    return hmac.compare_digest(expected, sent.encode("utf-8", "replace"))


__all__ = [
    "MAX_ID",
    "ShapeError",
    "describe",
    "header",
    "is_int",
    "optional_list",
    "optional_str",
    "require_int",
    "require_mapping",
    "require_str",
    "signature_matches",
    "web_url",
]

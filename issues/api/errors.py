"""What API callers learn of a tracker's failure: the status and a short reason in words.

Why: a tracker's error body is whatever the connection's base URL answered, and echoing it
(the first 200 characters went into `sync/history/` `error` and the 502 of `refresh/`) gave
any token in scope a window onto that address. The full text stays in the logs and the admin.
"""

from __future__ import annotations

import re
from http import HTTPStatus

from integrations.providers.base import ProviderError, RateLimitedError

# How the provider clients word a failure (integrations/providers/http.py): "<what>: HTTP 500 …"
_STATUS = re.compile(r"\bHTTP (\d{3})\b")
# Failures without a status, recognised by the clients' own wording (never the tracker's).
_REASONS = (
    ("rate limited", "the tracker rate-limited the requests"),
    ("no answer within", "the tracker did not answer in time"),
    ("cannot connect", "the tracker could not be reached"),
    ("TLS error", "TLS error talking to the tracker"),
    ("refused tracker address", "the tracker address is refused (SPEC §8)"),
    ("redirected to another origin", "the tracker redirected to another origin (not followed)"),
    ("not JSON", "the tracker answered something that is not JSON"),
)


def reason_for_status(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "error"
    return f"the tracker answered HTTP {status} ({phrase})"


def public_error(text: str) -> str:
    """A stored error text (a sync run's `error`), reduced to what an API caller may see."""
    if not text:
        return ""
    kind = ""
    for prefix in ("permanent: ", "transient: "):
        if text.startswith(prefix):
            kind = prefix
            break
    match = _STATUS.search(text)
    if match:
        return kind + reason_for_status(int(match.group(1)))
    for marker, reason in _REASONS:
        if marker in text:
            return kind + reason
    return kind + "the tracker call failed (details in the admin and the logs)"


def public_provider_error(exc: ProviderError) -> str:
    """The same for an exception caught now (the refresh endpoint's 502)."""
    if isinstance(exc, RateLimitedError):
        return f"the tracker rate-limited the requests (retry after {exc.retry_after:.0f} s)"
    if exc.status is not None:
        return reason_for_status(exc.status)
    return public_error(str(exc))

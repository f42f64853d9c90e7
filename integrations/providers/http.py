"""HTTP plumbing shared by every provider client.

One `requests.Session` per client, a timeout on every call, urllib3's Retry for connection
errors and, for reads only, 502/503/504 (never for 429: the caller decides, from Retry-After,
when to come back; never for a write: a tracker edit may land between the failed write and
a blind retry, so the outbox retries writes after a fresh read), and one mapping from status
codes to the typed errors in `base`.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from integrations.providers.base import (
    AccessDeniedError,
    AuthenticationError,
    MalformedAnswerError,
    NotFoundError,
    PermanentError,
    ProviderError,
    RateLimitedError,
    RateLimitGate,
    TransientError,
    ValidationFailedError,
)
from syndarix_sync.logs import get_logger

logger = get_logger(__name__)

USER_AGENT = "syndarix-sync/0.1 (+issue mirror)"
_LINK_RE = re.compile(r'<([^>]+)>\s*;\s*rel="?([^";]+)"?')
# When a tracker rate-limits us without saying for how long.
DEFAULT_RETRY_AFTER_SECONDS = 60.0


def build_session(*, max_retries: int = 3, backoff_factor: float = 0.5) -> requests.Session:
    retry = Retry(
        total=max_retries,
        connect=max_retries,
        read=False,  # a read timeout may mean the write happened; the outbox decides, not urllib3
        status=max_retries,
        status_forcelist=(502, 503, 504),
        # Reads only. Not POST: after a 504 the issue may exist already. Not PATCH/PUT/DELETE:
        # a retried write overwrites a tracker edit made between the two (issue 12 #1).
        allowed_methods=frozenset({"GET", "HEAD", "OPTIONS"}),
        backoff_factor=backoff_factor,
        respect_retry_after_header=False,
        raise_on_status=False,
    )
    adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=8)
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def parse_link_header(value: str | None) -> dict[str, str]:
    """`<url>; rel="next", <url>; rel="last"` → {"next": url, "last": url}."""
    if not value:
        return {}
    return {rel: url for url, rel in _LINK_RE.findall(value)}


def _header_float(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return float(raw.strip())
    except ValueError:
        return None


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait, from Retry-After (seconds or HTTP date), else a rate-limit reset header.

    GitHub's `x-ratelimit-reset` and GitLab's `RateLimit-Reset` are epoch seconds; IETF-draft
    `RateLimit-Reset` is a delta. A value larger than a day's worth of seconds is an epoch.
    """
    now = time.time() if now is None else now
    raw = headers.get("Retry-After")
    if raw:
        raw = raw.strip()
        if raw.isdigit():
            return float(raw)
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0.0, when.timestamp() - now)
    for name in ("X-RateLimit-Reset", "RateLimit-Reset"):
        reset = _header_float(headers, name)
        if reset is not None:
            # A negative delta (seen from proxies rewriting the header) means "now", not the past.
            return max(0.0, reset - now) if reset > 86_400 else max(0.0, reset)
    return None


def is_rate_limited(response: requests.Response) -> bool:
    if response.status_code == 429:
        return True
    if response.status_code == 403:
        remaining = response.headers.get("X-RateLimit-Remaining") or response.headers.get(
            "RateLimit-Remaining"
        )
        if remaining is not None and remaining.strip() == "0":
            return True
        if "Retry-After" in response.headers:
            return True  # GitHub's secondary rate limits
    return False


def _message(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        text = response.text[:200]
        return text or response.reason or ""
    if isinstance(data, dict):
        for key in ("message", "error", "error_description"):
            if isinstance(data.get(key), str):
                return data[key][:200]
    return str(data)[:200]


# Canonical fields (SPEC §4): what a refusal may name.
_FIELD_NAMES = frozenset({"title", "body", "state", "labels", "assignees", "milestone"})


def refused_field(response: requests.Response) -> str | None:
    """The canonical field a 400/422 names in a structured error body (GitHub's
    `errors[].field`), when there is exactly one."""
    try:
        data = response.json()
    except ValueError:
        return None
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return None
    named = {e["field"] for e in errors if isinstance(e, dict) and e.get("field") in _FIELD_NAMES}
    return named.pop() if len(named) == 1 else None


def raise_for_response(response: requests.Response, *, what: str) -> None:
    """Raise the typed error for a non-2xx/304 response; return for success."""
    status = response.status_code
    if status < 400:
        return
    detail = f"{what}: HTTP {status} {_message(response)}".strip()
    if is_rate_limited(response):
        wait = retry_after_seconds(response.headers)
        raise RateLimitedError(
            f"{what}: rate limited (HTTP {status})",
            status=status,
            retry_after=DEFAULT_RETRY_AFTER_SECONDS if wait is None else wait,
        )
    if status == 401:
        raise AuthenticationError(detail, status=status)
    if status == 403:
        raise AccessDeniedError(detail, status=status)
    if status in (404, 410):
        raise NotFoundError(detail, status=status)
    if status in (400, 422):
        raise ValidationFailedError(detail, status=status, field=refused_field(response))
    if status >= 500 or status in (408, 409, 425):
        raise TransientError(detail, status=status)
    raise PermanentError(detail, status=status)


class HttpTransport:
    """A session with a base URL, auth headers and a request counter (used by tests and bench)."""

    def __init__(
        self,
        *,
        api_root: str,
        headers: Mapping[str, str],
        timeout: float,
        max_retries: int = 3,
        backoff_factor: float = 0.5,
        gate: RateLimitGate | None = None,
    ) -> None:
        self.api_root = api_root.rstrip("/")
        self.timeout = timeout
        self.session = build_session(max_retries=max_retries, backoff_factor=backoff_factor)
        self.session.headers.update(headers)
        self.requests_made = 0
        self.gate = gate
        # The tracker's clock: the `Date` header of the last response.
        self.last_server_time: datetime | None = None

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.api_root}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        ok_not_modified: bool = False,
    ) -> requests.Response:
        if self.gate is not None:
            self.gate.check()  # raises RateLimitedError without sending while paused
        self.requests_made += 1
        url = self.url(path)
        started = time.perf_counter()
        try:
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    headers=dict(headers or {}),
                    timeout=self.timeout,
                )
            except requests.exceptions.SSLError as exc:
                raise PermanentError(f"{what}: TLS error: {exc}") from exc
            except requests.exceptions.Timeout as exc:
                raise TransientError(f"{what}: no answer within {self.timeout:g}s") from exc
            except requests.exceptions.ConnectionError as exc:
                raise TransientError(f"{what}: cannot connect to {self.api_root}: {exc}") from exc
            except requests.exceptions.RequestException as exc:
                raise ProviderError(f"{what}: {exc}") from exc
        except ProviderError as exc:
            self._log(method, url, what, started, error=str(exc))
            raise
        self._log(method, url, what, started, status=response.status_code)
        self.last_server_time = parse_http_date(response.headers.get("Date")) or (
            self.last_server_time
        )
        if response.status_code == 304 and ok_not_modified:
            return response
        try:
            raise_for_response(response, what=what)
        except RateLimitedError as exc:
            if self.gate is not None:
                self.gate.hold(exc.retry_after)
            raise
        return response

    def _log(
        self,
        method: str,
        url: str,
        what: str,
        started: float,
        *,
        status: int | None = None,
        error: str | None = None,
    ) -> None:
        """One line per call to a tracker. Reads are DEBUG (a poll makes one a minute per
        connection); writes and failures always show. The query string is left out: it is
        noise here, and the one place a careless tracker URL could carry a credential."""
        failed = error is not None or (status is not None and status >= 400 and status != 404)
        level = "warning" if failed else "info" if method not in ("GET", "HEAD") else "debug"
        getattr(logger, level)(
            "tracker_request",
            what=what,
            method=method,
            url=url.split("?", 1)[0],
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            **({"error": error} if error else {}),
        )

    def json(self, response: requests.Response, *, what: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise MalformedAnswerError(f"{what}: the tracker answered something not JSON") from exc

    def close(self) -> None:
        self.session.close()


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP `Date` header → aware datetime; None when absent or unparsable."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def parse_timestamp(value: Any) -> datetime | None:
    """ISO 8601 (with `Z` or an offset) → aware datetime; None for missing or unparsable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        # GitLab webhooks: "2016-01-04 15:31:46 UTC"
        try:
            parsed = datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S %Z")
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, what every provider accepts for `since`."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

"""Structured logs: one JSON object per line, every line of one unit of work carrying its
correlation id, and no secret on any line.

The correlation id is bound in `structlog.contextvars` by whoever starts a unit of work — the
request middleware, the webhook task (from the stored delivery), the outbox drain (from the
outbox row), a poll run — so every line logged below it, through structlog or the standard
`logging` module (Django, Celery, urllib3), carries it. Rows that outlive a process (webhook
deliveries, outbox entries, sync log) store the id, so it survives a broker outage or a
worker crash: the next worker binds it again from the row.

This module must not import Django settings: settings.py imports it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[redacted]"
# Keys whose values never reach a log line, wherever they appear (event keys, nested dicts).
SENSITIVE_KEYS = frozenset(
    {
        "api_token",
        "token",
        "access_token",
        "webhook_secret",
        "secret",
        "password",
        "authorization",
        "cookie",
        "set-cookie",
        "private-token",
        "x-gitlab-token",
        "x-hub-signature",
        "x-hub-signature-256",
        "x-gitea-signature",
        "signature",
        "field_encryption_key",
        "secret_key",
    }
)
# Credentials inside free text (an exception message quoting a header or a URL): the value
# after the name is replaced, the name kept so the line still says what was there.
_SECRET_IN_TEXT = re.compile(
    r"(?i)\b(authorization|private-token|x-gitlab-token|api_token|access_token|token|bearer|"
    r"secret|password)([\"']?\s*[:=]\s*[\"']?|\s+)(?:(?:token|bearer)\s+)?([^\s\"',;&)}]+)"
)
_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def clean_correlation_id(value: str | None) -> str | None:
    """A caller-supplied id is kept only when it is short and plain: it ends up in headers,
    database rows and every log line."""
    value = (value or "").strip()
    return value if _CORRELATION_ID.match(value) else None


def current_correlation_id() -> str:
    return str(structlog.contextvars.get_contextvars().get("correlation_id") or "")


@contextmanager
def correlation(correlation_id: str | None = None, **context: Any) -> Iterator[str]:
    """Bind a correlation id (the given one, the one already bound, or a new one) and extra
    context for the duration of a block; the previous binding comes back afterwards."""
    cid = correlation_id or current_correlation_id() or new_correlation_id()
    with structlog.contextvars.bound_contextvars(correlation_id=cid, **context):
        yield cid


def scrub_text(text: str) -> str:
    return _SECRET_IN_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)


def _scrub(value: Any, depth: int = 0) -> Any:
    # Exact type checks first: nearly every value is a short str, an int or None.
    kind = type(value)
    if kind is str:
        return scrub_text(value)
    if kind is int or value is None or kind is bool or kind is float or depth > 6:
        return value
    if isinstance(value, Mapping):
        return {
            k: REDACTED if str(k).lower() in SENSITIVE_KEYS else _scrub(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v, depth + 1) for v in value]
    return value


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Masks credential-named keys and credentials in every value, wherever they slipped in."""
    for key, value in event_dict.items():
        if key.lower() in SENSITIVE_KEYS:
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(value)
    return event_dict


def _redact_at_render(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """In the formatter: a standard-library record is masked here in full; a structlog event
    was masked in its own chain already, and only its freshly formatted traceback is left."""
    if event_dict.get("_from_structlog"):
        for key in ("exception", "stack"):
            if key in event_dict:
                event_dict[key] = _scrub(event_dict[key])
        return event_dict
    return redact_secrets(logger, method, event_dict)


def _drop_color_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # Uvicorn-style duplicates some libraries attach; the rendered line has the message once.
    event_dict.pop("color_message", None)
    return event_dict


# Runs for structlog's own loggers and, as `foreign_pre_chain`, for standard-library records.
_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    _drop_color_message,
]


def build_formatter(renderer: str = "json") -> structlog.stdlib.ProcessorFormatter:
    """The logging.Formatter every handler uses (referenced from settings.LOGGING)."""
    final: Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if renderer == "console"
        else structlog.processors.JSONRenderer()
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.processors.format_exc_info,
            _redact_at_render,  # reads `_from_structlog`: before the meta keys are removed
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            final,
        ],
    )


def configure_structlog() -> None:
    """structlog hands its events to the standard library, so there is one pipeline (the
    formatter above) and one place (settings.LOGGING) that decides levels and handlers."""
    structlog.configure(
        processors=[
            # First: a line below the logger's level (a debug line on the hot path) is
            # dropped before any other processor runs (2 µs a call instead of 8).
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            # Here too, not only in the formatter: any handler (a library's, a test's) gets
            # the event already masked.
            redact_secrets,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)

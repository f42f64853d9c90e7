"""Webhook registration, the part every tracker shares: find our hook by its address, create
it when missing, repair it when disabled or listening to the wrong events.

A provider supplies three small calls (list, create, update) over its hooks API; this module
decides. Plain Python, no Django: the service in `integrations/services.py` adds the
connection, the manual steps and the error answers.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from integrations.providers.shapes import (
    optional_list,
    optional_str,
    require_int,
    require_mapping,
)


class HookResult(enum.StrEnum):
    CREATED = "created"
    REPAIRED = "repaired"
    UNCHANGED = "unchanged"


@dataclasses.dataclass(frozen=True)
class RemoteHook:
    """One hook as the tracker lists it. `content_type` is None where the tracker always
    sends JSON (GitLab)."""

    id: str
    url: str
    events: frozenset[str]
    active: bool
    content_type: str | None = "json"


@dataclasses.dataclass(frozen=True)
class HookOutcome:
    result: HookResult
    hook_id: str
    # What was wrong before a repair, and what the API cannot show us (the secret).
    notes: tuple[str, ...] = ()


# No tracker's hooks API returns the secret it holds: an unchanged hook may still carry an
# old secret (deliveries then fail their signature check and show in the webhook log).
SECRET_NOTE = (
    "the tracker does not show a hook's secret: it was set when the hook was created or "
    "repaired, and cannot be checked on an unchanged hook"
)


def parse_repo_hook(data: Any) -> RemoteHook:
    """One hook of the GitHub-shaped hooks API (Gitea answers the same shape); ShapeError for
    anything else, which the client turns into MalformedAnswerError."""
    hook = require_mapping(data, "hook")
    config = require_mapping(hook.get("config"), "hook.config")
    events = optional_list(hook, "events", "hook") or []
    return RemoteHook(
        id=str(require_int(hook, "id", "hook")),
        url=optional_str(config, "url", "hook.config") or "",
        events=frozenset(e for e in events if isinstance(e, str)),
        active=hook.get("active") is True,
        content_type=optional_str(config, "content_type", "hook.config"),
    )


def same_url(a: str, b: str) -> bool:
    return a.strip().rstrip("/") == b.strip().rstrip("/")


def problems(hook: RemoteHook, *, events: frozenset[str]) -> list[str]:
    """Why `hook` does not deliver what we need ([] when it does)."""
    found: list[str] = []
    if not hook.active:
        found.append("the hook was disabled")
    missing = events - hook.events
    if missing:
        found.append("events missing: " + ", ".join(sorted(missing)))
    if hook.content_type not in (None, "json"):
        found.append(f"content type was {hook.content_type}, not json")
    return found


def ensure_hook(
    *,
    url: str,
    events: Iterable[str],
    listing: Callable[[], list[RemoteHook]],
    create: Callable[[], RemoteHook],
    update: Callable[[RemoteHook], RemoteHook],
) -> HookOutcome:
    """Create or repair the hook that posts to `url`. An update re-sends the secret too
    (it cannot be read back), so a repaired hook always carries the connection's secret."""
    wanted = frozenset(events)
    ours = [hook for hook in listing() if same_url(hook.url, url)]
    if not ours:
        created = create()
        return HookOutcome(HookResult.CREATED, created.id)
    # Several hooks to our address: one healthy one is enough (a second would double every
    # delivery, which the intake deduplicates); otherwise repair the first.
    for hook in ours:
        if not problems(hook, events=wanted):
            return HookOutcome(HookResult.UNCHANGED, hook.id, (SECRET_NOTE,))
    broken = ours[0]
    found = problems(broken, events=wanted)
    repaired = update(broken)
    left = problems(repaired, events=wanted)
    if left:
        raise HookRepairFailed("the tracker kept the hook broken: " + "; ".join(left))
    return HookOutcome(HookResult.REPAIRED, repaired.id, tuple(found))


class HookRepairFailed(Exception):
    """The tracker accepted the update but the hook is still not right."""


@runtime_checkable
class RegistersWebhooks(Protocol):
    """A client whose tracker lets a token create its webhook
    (`Capabilities.webhook_registration`)."""

    # False where the tracker signs with a secret of its own (Trello: the Power-Up's), so
    # the connection must hold that one and a generated secret would break every signature.
    sets_webhook_secret: bool

    def ensure_webhook(self, *, url: str, secret: str) -> HookOutcome: ...

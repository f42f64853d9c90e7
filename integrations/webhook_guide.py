"""What to pick in each tracker's webhook form, and whether its address can reach us."""

from __future__ import annotations

import dataclasses
import ipaddress
from urllib.parse import urlsplit


@dataclasses.dataclass(frozen=True)
class HookGuide:
    where: str
    content_type: str
    events: str
    secret: str


GUIDES: dict[str, HookGuide] = {
    "gitea": HookGuide(
        where="Repository → Settings → Webhooks → Add webhook → Gitea",
        content_type="POST, application/json",
        events="Custom events: Issues, Issue Assigned, Issue Labeled, Issue Milestoned",
        secret="Secret: the webhook secret saved here",
    ),
    "github": HookGuide(
        where="Repository → Settings → Webhooks → Add webhook",
        content_type="application/json",
        events="Let me select individual events: Issues",
        secret="Secret: the webhook secret saved here",
    ),
    "gitlab": HookGuide(
        where="Project → Settings → Webhooks → Add new webhook",
        content_type="(always JSON)",
        events="Trigger: Issues events",
        secret="Secret token: the webhook secret saved here",
    ),
}


def guide_for(provider: str) -> HookGuide | None:
    return GUIDES.get(provider)


def unreachable_reason(url: str) -> str:
    """Why a tracker on another machine cannot deliver to `url`, or "" when it may."""
    host = (urlsplit(url).hostname or "").lower()
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return f"{host} is this machine's own name"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return ""
    if address.is_loopback or address.is_unspecified:
        return f"{host} is a loopback address"
    return ""

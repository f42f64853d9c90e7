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
    "jira": HookGuide(
        where="Jira settings → System → WebHooks → Create a WebHook",
        content_type="(always JSON)",
        events="Issue: created, updated, deleted; Comment: created, updated, deleted",
        secret="Secret: the webhook secret saved here",
    ),
    "trello": HookGuide(
        where="Trello has no webhook page: POST /1/webhooks with callbackURL = the address "
        "below and idModel = the board's id (with the connection's key and token)",
        content_type="(always JSON)",
        events="(every change of the board)",
        secret="Signed with the Trello app secret: save that secret here",
    ),
    "openproject": HookGuide(
        where="Administration → API and webhooks → Webhooks → + Webhook",
        content_type="(always JSON)",
        events="Work packages: created, updated; enabled for this project",
        secret="Signature secret: the webhook secret saved here",
    ),
}


def guide_for(provider: str) -> HookGuide | None:
    return GUIDES.get(provider)


def manual_steps(provider: str, url: str) -> list[str]:
    """The webhook form, field by field, for a person setting the hook up by hand."""
    guide = guide_for(provider)
    if guide is None:
        return []
    return [
        guide.where,
        f"Payload URL: {url}",
        f"Content type: {guide.content_type}",
        f"Events: {guide.events}",
        guide.secret,
        "Active: on",
    ]


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

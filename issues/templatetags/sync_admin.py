"""Template tags for the admin: the sync dashboard on the admin index."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from issues.conflict_display import FIELD_LABELS
from issues.dashboard import dashboard_rows
from issues.web_urls import web_url_or_empty

register = template.Library()


@register.inclusion_tag("admin/includes/sync_dashboard.html", takes_context=True)
def sync_dashboard(context: template.Context) -> dict[str, Any]:
    """One row per connection: health, outbox, conflicts and the latest run (two queries)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("integrations.view_connection"):
        return {"visible": False}
    return {
        "visible": True,
        "rows": dashboard_rows(),
        "progress_url": reverse("admin:integrations_connection_progress"),
        "can_view_outbox": user.has_perm("issues.view_outboxentry"),
        "can_view_conflicts": user.has_perm("issues.view_conflict"),
    }


@register.filter
def web_href(value: Any) -> str:
    """A tracker URL fit for `<a href>`: http/https only, else "" (a `javascript:` URL from a
    forged tracker answer would run in the admin's session)."""
    return web_url_or_empty(value)


@register.filter
def join_if_list(value: Any) -> str:
    """A set field's value as "a, b"; anything else as text."""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "(none)"
    return "" if value is None else str(value)


@register.filter
def field_label(field: str) -> str:
    """ "milestone" → "Milestone", as the resolution page names the issue's fields."""
    return FIELD_LABELS.get(field, field)

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from notifications.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """The event stream agents read from /api/v1/events/, browsable (written by the sync)."""

    list_display = ("id", "created_at", "type", "connection", "issue", "notified_at")
    list_filter = ("type", "connection")
    list_select_related = ("connection", "issue")
    readonly_fields = ("type", "created_at", "connection", "issue", "object_id", "data")
    exclude = ("notified_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from issues.models import ApiToken, Conflict, Issue, OutboxEntry, SyncLog, SyncRun


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by the engine: browsable, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Issue)
class IssueAdmin(admin.ModelAdmin):
    list_display = ("__str__", "connection", "state", "sync_status", "external_number",
                    "remote_updated_at", "updated_at")
    list_filter = ("connection", "state", "sync_status")
    search_fields = ("title", "body", "external_id", "external_number")
    readonly_fields = ("connection", "external_id", "external_number", "remote_url", "title",
                       "body", "state", "labels", "assignees", "milestone", "base", "versions",
                       "sync_status", "sync_error", "remote_created_at", "remote_updated_at",
                       "remote_deleted_at", "created_at", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Local changes go through the services (and the outbox), never a raw admin save.
        return False


@admin.register(SyncLog)
class SyncLogAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "connection", "issue", "direction", "action", "trigger",
                    "correlation_id")
    list_filter = ("direction", "action", "trigger", "provider")
    search_fields = ("correlation_id",)
    date_hierarchy = "created_at"


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "connection", "kind", "success", "seen", "created", "updated",
                    "deleted", "conflicts", "failed", "requests", "duration_seconds")
    list_filter = ("kind", "success", "connection")


@admin.register(OutboxEntry)
class OutboxEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "issue", "connection", "operation", "status", "attempts",
                    "next_attempt_at", "last_error")
    list_filter = ("status", "operation", "connection")
    search_fields = ("last_error", "correlation_id")


@admin.register(Conflict)
class ConflictAdmin(ReadOnlyAdmin):
    list_display = ("id", "issue", "field", "detected_at", "resolved", "resolution",
                    "resolved_by", "resolved_at")
    list_filter = ("resolved", "field", "issue__connection")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "name", "user", "created_at", "last_used_at", "revoked")
    list_filter = ("revoked",)
    search_fields = ("name", "user__username", "prefix")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    exclude = ("key_hash",)
    filter_horizontal = ("connections",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # keys are minted by `manage.py create_api_token`, shown once

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from integrations.crypto import mask
from integrations.models import Connection, WebhookDelivery


class ConnectionForm(forms.ModelForm):
    """Secrets are write-only: blank keeps the stored value, and the stored value never renders."""

    api_token = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave blank to keep the current token.",
    )
    webhook_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave blank to keep the current secret. Without one, webhooks are refused.",
    )

    class Meta:
        model = Connection
        fields = (
            "name", "provider", "base_url", "repository", "enabled", "api_token",
            "webhook_secret", "direction", "conflict_policy", "delete_policy", "create_remote",
            "allow_create_labels", "label_filter", "milestone_filter", "state_filter",
            "poll_interval_seconds", "full_sync_interval_seconds",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Never put the stored secret into the form's initial data (it would reach the HTML).
        self.initial["api_token"] = ""
        self.initial["webhook_secret"] = ""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in ("api_token", "webhook_secret"):
            if not cleaned.get(name) and self.instance.pk:
                cleaned[name] = getattr(self.instance, name)
        return cleaned


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionForm
    list_display = ("name", "provider", "repository", "direction", "enabled",
                    "webhook_healthy", "last_webhook_at", "last_polled_at")
    list_filter = ("provider", "direction", "enabled", "webhook_healthy", "conflict_policy")
    search_fields = ("name", "repository", "base_url")
    readonly_fields = ("webhook_url_display", "token_display", "secret_display", "poll_cursor",
                       "poll_etag", "last_polled_at", "last_full_sync_at", "last_webhook_at",
                       "webhook_healthy", "webhook_unhealthy_since", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "provider", "base_url", "repository", "enabled")}),
        ("Credentials", {"fields": ("api_token", "token_display", "webhook_secret",
                                    "secret_display", "webhook_url_display")}),
        ("Sync behaviour", {"fields": ("direction", "conflict_policy", "delete_policy",
                                       "create_remote", "allow_create_labels")}),
        ("Partial sync", {"fields": ("label_filter", "milestone_filter", "state_filter")}),
        ("Schedule", {"fields": ("poll_interval_seconds", "full_sync_interval_seconds")}),
        ("Health", {"fields": ("poll_cursor", "poll_etag", "last_polled_at", "last_full_sync_at",
                               "last_webhook_at", "webhook_healthy", "webhook_unhealthy_since",
                               "created_at", "updated_at")}),
    )

    @admin.display(description="Webhook URL (paste into the tracker)")
    def webhook_url_display(self, obj: Connection) -> str:
        if not obj.pk:
            return "available after saving"
        warning = ""
        if obj.base_url.startswith("http://"):
            warning = " (the tracker is reached over plain http: tokens travel unencrypted)"
        return format_html("<code>{}</code>{}", obj.webhook_url, warning)

    @admin.display(description="Stored token")
    def token_display(self, obj: Connection) -> str:
        return mask(obj.api_token) or "—"

    @admin.display(description="Stored secret")
    def secret_display(self, obj: Connection) -> str:
        return mask(obj.webhook_secret) or "—"


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("delivery_id", "provider", "event", "connection", "status", "received_at",
                    "processed_at", "attempts")
    list_filter = ("provider", "status", "event")
    search_fields = ("delivery_id", "correlation_id", "error")
    readonly_fields = ("provider", "connection", "delivery_id", "event", "headers", "payload",
                       "received_at", "processed_at", "status", "attempts", "error",
                       "correlation_id")
    exclude = ("body",)

    @admin.display(description="Raw body")
    def payload(self, obj: WebhookDelivery) -> str:
        text = bytes(obj.body).decode("utf-8", errors="replace")
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", text[:200_000])

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

"""The admin for connections and webhook deliveries.

Connections get "Test connection", "Register webhook", "Sync now" and "Full resync" — as
list actions and as buttons on the connection's page — plus the webhook URL to paste, webhook
health and the latest run's progress. Deliveries get "Reprocess". Views stay thin: each calls a
service in `integrations.services` and reports what it did with `message_user`.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince
from django.views.decorators.http import require_GET, require_POST

from integrations.crypto import mask
from integrations.models import Connection, WebhookDelivery
from integrations.providers import PROVIDER_CHOICES, is_supported, netguard
from integrations.providers.base import Capabilities, ConfigOption, validate_config
from integrations.providers.registry import capabilities, config_options
from integrations.services import (
    WebhookRegistrationError,
    connection_sync_request,
    connection_test,
    connection_webhook_ensure,
    delivery_reprocess,
)
from integrations.webhook_guide import guide_for, unreachable_reason
from issues.dashboard import webhook_state
from notifications.services import notification_addresses
from syndarix_sync.admin_fields import IntervalField, NameListField

# Where the stored token goes: changing any of these needs the token again (SPEC §6).
TOKEN_BOUND_FIELDS = ("base_url", "provider", "repository")

# A tracker without webhooks (Redmine): no URL to paste, no webhook health to show.
_POLLED_ONLY = (
    "None: {provider} has no webhooks. This connection is polled (every poll interval) "
    "and deletions are found by the full sync."
)


class ConnectionForm(forms.ModelForm):
    """Secrets are write-only: blank keeps the stored value, and the stored value never renders."""

    api_token = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="The tracker's API token (read and write access to issues).",
    )
    webhook_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Without one, webhooks are refused and changes arrive by polling only.",
    )
    label_filter = NameListField(
        required=False, help_text="Only sync issues carrying one of these labels (comma separated)."
    )
    milestone_filter = NameListField(
        required=False,
        help_text="Only sync issues in one of these milestones (comma separated).",
    )
    # Declared fields get no initial value from the model: take its defaults.
    poll_interval_seconds = IntervalField(
        label="Poll interval",
        minimum=10,
        initial=Connection._meta.get_field("poll_interval_seconds").default,
        help_text="How often to ask the tracker for changes.",
    )
    full_sync_interval_seconds = IntervalField(
        label="Full sync interval",
        minimum=60,
        initial=Connection._meta.get_field("full_sync_interval_seconds").default,
        help_text="How often to read every issue (finds deletions and drift).",
    )

    class Meta:
        model = Connection
        fields = (
            "name",
            "provider",
            "base_url",
            "repository",
            "enabled",
            "api_token",
            "webhook_secret",
            "direction",
            "conflict_policy",
            "delete_policy",
            "create_remote",
            "allow_create_labels",
            "label_filter",
            "milestone_filter",
            "state_filter",
            "poll_interval_seconds",
            "full_sync_interval_seconds",
            "notify_emails",
        )
        widgets = {"notify_emails": forms.Textarea(attrs={"rows": 2, "cols": 60})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Never put the stored secret into the form's initial data (it would reach the HTML).
        self.initial["api_token"] = ""
        self.initial["webhook_secret"] = ""
        if "provider" in self.fields:
            # Only providers with a client: a connection that cannot sync is not offered.
            self.fields["provider"].choices = supported_provider_choices()  # type: ignore[attr-defined]
        stored = self.instance.config_json or {}
        for name, (provider, option) in option_fields().items():
            self.fields[name] = _form_field(option)
            if provider == self.instance.provider and option.name in stored:
                self.initial[name] = stored[option.name]

        # "Keep" only makes sense when there is something stored to keep.
        for name, what in (("api_token", "token"), ("webhook_secret", "secret")):
            if name in self.fields and getattr(self.instance, name, None):
                self.fields[name].help_text += f" Leave blank to keep the current {what}."

    def clean_notify_emails(self) -> str:
        raw = self.cleaned_data.get("notify_emails") or ""
        addresses = notification_addresses(raw)
        validate = forms.EmailField().clean
        for address in addresses:
            try:
                validate(address)
            except forms.ValidationError:
                raise forms.ValidationError(f"Not an e-mail address: {address}") from None
        return ", ".join(addresses)

    def clean_base_url(self) -> str:
        value: str = self.cleaned_data.get("base_url") or ""
        try:
            netguard.check_url(value)
        except netguard.AddressRefused as exc:
            raise forms.ValidationError(
                f"Not a tracker address: {exc}. Link-local and cloud metadata addresses are "
                "refused (and TRACKER_DENY_NETWORKS)."
            ) from None
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.instance.pk:
            # The stored token must never follow the connection to a new address: the form
            # keeps it only while base_url, provider and repository stay as they were.
            moved = [
                name
                for name in TOKEN_BOUND_FIELDS
                if name in cleaned and cleaned[name] != getattr(self.instance, name)
            ]
            if moved and not cleaned.get("api_token"):
                self.add_error(
                    "api_token",
                    f"Enter the token again: {', '.join(moved)} changed, and the stored token "
                    "is never sent to a new address.",
                )
        for name in ("api_token", "webhook_secret"):
            if not cleaned.get(name) and self.instance.pk:
                cleaned[name] = getattr(self.instance, name)
        self._clean_config(cleaned)
        return cleaned

    def _clean_config(self, cleaned: dict[str, Any]) -> None:
        """The chosen provider's option fields → config_json, checked against its schema."""
        provider = cleaned.get("provider")
        if not provider or not is_supported(provider):
            return
        values = {
            option.name: cleaned.get(name)
            for name, (owner, option) in option_fields().items()
            if owner == provider
        }
        try:
            self.instance.config_json = validate_config(config_options(provider), values)
        except ValueError as exc:
            self.add_error(None, f"Provider options: {exc}")


def describe_capabilities(caps: Capabilities) -> str:
    """One line for people: what the tracker holds and how it is kept in step."""
    parts = [
        "webhooks" if caps.webhooks else "polling only",
        "deletions seen in webhooks"
        if caps.deletion_in_webhooks
        else "deletions found by the full pass",
        f"at most {caps.max_assignees} assignee(s)"
        if caps.max_assignees is not None
        else "any number of assignees",
        "milestones" if caps.milestones else "no milestones",
        "labels must exist" if caps.labels_predefined else "labels created on use",
        "label/assignee add-remove writes" if caps.set_delta_writes else "whole-set writes",
    ]
    return ", ".join(parts)


def supported_provider_choices() -> list[tuple[str, str]]:
    return [(key, label) for key, label in PROVIDER_CHOICES if is_supported(key)]


def option_fields() -> dict[str, tuple[str, ConfigOption]]:
    """Form field name (`config__<provider>__<key>`) → (provider, option), for every
    provider with a client: the admin shows the chosen provider's options as form fields."""
    return {
        f"config__{provider}__{option.name}": (provider, option)
        for provider, _ in supported_provider_choices()
        for option in config_options(provider)
    }


def _form_field(option: ConfigOption) -> forms.Field:
    label = option.label
    if option.kind is bool:
        return forms.BooleanField(required=False, label=label, help_text=option.help_text)
    if option.kind is int:
        return forms.IntegerField(required=False, label=label, help_text=option.help_text)
    # Required only for its own provider: checked in clean(), not by the field.
    return forms.CharField(required=False, label=label, help_text=option.help_text)


def _ago(value: Any) -> str:
    return f"{timesince(value)} ago" if value else "never"


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionForm
    change_form_template = "admin/integrations/connection/change_form.html"
    list_display = (
        "name",
        "provider",
        "repository",
        "direction",
        "enabled",
        "webhooks_column",
        "last_webhook_at",
        "last_polled_at",
    )
    list_filter = ("provider", "direction", "enabled", "webhook_healthy", "conflict_policy")
    search_fields = ("name", "repository", "base_url")
    readonly_fields = (
        "webhook_url_display",
        "capabilities_display",
        "token_display",
        "secret_display",
        "webhook_health",
        "sync_progress",
        "poll_cursor",
        "poll_etag",
        "last_polled_at",
        "last_full_sync_at",
        "last_webhook_at",
        "webhook_healthy",
        "webhooks_column",
        "webhook_unhealthy_since",
        "rate_limited_until",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("name", "provider", "base_url", "repository", "enabled")}),
        (
            "Credentials",
            {
                "fields": (
                    "api_token",
                    "token_display",
                    "webhook_secret",
                    "secret_display",
                    "webhook_url_display",
                )
            },
        ),
        ("Sync status", {"fields": ("sync_progress", "webhook_health", "capabilities_display")}),
        (
            "Sync behaviour",
            {
                "fields": (
                    "direction",
                    "conflict_policy",
                    "delete_policy",
                    "create_remote",
                    "allow_create_labels",
                )
            },
        ),
        ("Partial sync", {"fields": ("label_filter", "milestone_filter", "state_filter")}),
        ("Schedule", {"fields": ("poll_interval_seconds", "full_sync_interval_seconds")}),
        ("Notifications", {"fields": ("notify_emails",)}),
        (
            "Health",
            {
                "fields": (
                    "poll_cursor",
                    "poll_etag",
                    "last_polled_at",
                    "last_full_sync_at",
                    "last_webhook_at",
                    "webhooks_column",
                    "webhook_unhealthy_since",
                    "rate_limited_until",
                    "created_at",
                    "updated_at",
                )
            },
        ),
    )
    actions = ("test_connection", "register_webhook", "sync_now", "full_resync")

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        extra = list(option_fields())
        base = super().get_fieldsets(request, obj)
        if not extra:
            return base
        return (*base, ("Provider options", {"fields": extra}))

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        # The option fields are added by the form itself: not model fields to build.
        fields = kwargs.get("fields") or flatten_fieldsets(self.get_fieldsets(request, obj))
        kwargs["fields"] = [f for f in fields if not f.startswith("config__")]
        return super().get_form(request, obj, change=change, **kwargs)

    # --- read-only displays ---------------------------------------------------------------

    @admin.display(description="What this tracker can hold")
    def capabilities_display(self, obj: Connection) -> str:
        if not obj.provider or not is_supported(obj.provider):
            return "no client for this provider"
        return describe_capabilities(capabilities(obj.provider))

    @admin.display(description="Webhook URL (paste into the tracker)")
    def webhook_url_display(self, obj: Connection) -> str:
        if not obj.pk:
            return "available after saving"
        if not obj.receives_webhooks:
            return _POLLED_ONLY.format(provider=obj.get_provider_display())
        url = obj.webhook_url
        parts = [
            format_html(
                '<code id="sx-webhook-url">{}</code> <button type="button" class="button" '
                'data-copy="sx-webhook-url">Copy</button>',
                url,
            )
        ]
        reason = unreachable_reason(url)
        if reason:
            parts.append(
                format_html(
                    '<p class="sx-bad" id="sx-webhook-unreachable">A tracker on another machine '
                    "cannot reach this address ({}). Set PUBLIC_URL to the address trackers "
                    "can reach (and SYNDARIX_BIND=0.0.0.0 so the web server listens on it, "
                    "or put a reverse proxy in front); see the README.</p>",
                    reason,
                )
            )
        if obj.base_url.startswith("http://"):
            parts.append(
                format_html(
                    "<p>{}</p>",
                    "The tracker is reached over plain http: tokens travel unencrypted.",
                )
            )
        guide = guide_for(obj.provider)
        if guide is not None:
            parts.append(
                format_html(
                    '<dl id="sx-hook-guide"><dt>Where</dt><dd>{}</dd><dt>Content type</dt>'
                    "<dd>{}</dd><dt>Events</dt><dd>{}</dd><dt>Secret</dt><dd>{}</dd></dl>",
                    guide.where,
                    guide.content_type,
                    guide.events,
                    guide.secret,
                )
            )
        return format_html("{}", mark_safe("".join(str(p) for p in parts)))  # noqa: S308 - parts are format_html output

    @admin.display(description="Webhooks healthy")
    def webhooks_column(self, obj: Connection) -> str:
        state = webhook_state(obj)
        css = "sx-ok" if state.ok else ("sx-bad" if state.status == "unhealthy" else "sx-warn")
        return format_html('<span class="{}">{}</span>', css, state.text)

    @admin.display(description="Stored token")
    def token_display(self, obj: Connection) -> str:
        return mask(obj.api_token) or "—"

    @admin.display(description="Stored secret")
    def secret_display(self, obj: Connection) -> str:
        return mask(obj.webhook_secret) or "—"

    @admin.display(description="Webhooks")
    def webhook_health(self, obj: Connection) -> str:
        if not obj.pk:
            return "—"
        if not obj.receives_webhooks:
            return _POLLED_ONLY.format(provider=obj.get_provider_display())
        if not obj.webhook_secret:
            return "No webhook secret: webhooks are refused and changes arrive by polling only."
        if not obj.webhook_healthy:
            return format_html(
                "<strong>Unhealthy</strong> since {}: polling found changes that no webhook "
                "brought. The connection is polled every minute until webhooks arrive again "
                "(last webhook: {}).",
                _ago(obj.webhook_unhealthy_since),
                _ago(obj.last_webhook_at),
            )
        if obj.last_webhook_at is None:
            return (
                "No webhook seen yet: paste the webhook URL above into the tracker (with the "
                "events, content type and secret listed there)."
            )
        return f"Healthy: last webhook {_ago(obj.last_webhook_at)}."

    @admin.display(description="Latest sync run")
    def sync_progress(self, obj: Connection) -> str:
        if not obj.pk:
            return "—"
        from issues.dashboard import latest_run_of

        return render_to_string(
            "admin/includes/sync_run.html",
            {
                "connection_id": obj.pk,
                "run": latest_run_of(obj),
                "progress_url": reverse("admin:integrations_connection_progress"),
            },
        )

    def save_model(self, request: HttpRequest, obj: Connection, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        # A bad token or address is said now, not at the first sync run.
        if obj.api_token and (not change or form.has_changed()):
            result = connection_test(connection=obj)
            if not result.ok:
                self.message_user(
                    request,
                    f"Saved, but the connection test failed: {result.message}",
                    messages.WARNING,
                )

    # --- actions (list) and buttons (change page) -----------------------------------------

    def _test(self, request: HttpRequest, connection: Connection) -> None:
        result = connection_test(connection=connection)
        self.message_user(
            request,
            f"{connection.name}: {result.message}",
            messages.SUCCESS if result.ok else messages.ERROR,
        )

    def _sync(self, request: HttpRequest, connections: list[Connection], *, full: bool) -> None:
        for connection in connections:
            connection_sync_request(connection=connection, full=full)
        what = "Full resync" if full else "Sync"
        names = ", ".join(c.name for c in connections)
        count = len(connections)
        self.message_user(
            request,
            f"{what} queued for {count} connection{'' if count == 1 else 's'} "
            f"({names}); its progress shows on the connection page and the dashboard.",
            messages.SUCCESS,
        )

    @admin.action(description="Test connection", permissions=["change"])
    def test_connection(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        for connection in queryset.order_by("name"):
            self._test(request, connection)

    def _register_webhook(self, request: HttpRequest, connection: Connection) -> None:
        """Through the same service as the API: create or repair the tracker's hook."""
        try:
            outcome = connection_webhook_ensure(connection=connection)
        except WebhookRegistrationError as exc:
            steps = "; ".join(exc.steps)
            self.message_user(
                request,
                f"{connection.name}: {exc.message}" + (f" By hand: {steps}" if steps else ""),
                messages.ERROR,
            )
            return
        said = {
            "created": "webhook created",
            "repaired": "webhook repaired",
            "unchanged": "webhook already in place",
        }[outcome.result]
        notes = "".join(f" ({note})" for note in outcome.notes)
        self.message_user(
            request,
            f"{connection.name}: {said} on the tracker, posting to {outcome.webhook_url}.{notes}",
            messages.SUCCESS,
        )

    @admin.action(description="Register webhook", permissions=["change"])
    def register_webhook(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        for connection in queryset.order_by("name"):
            self._register_webhook(request, connection)

    @admin.action(description="Sync now", permissions=["change"])
    def sync_now(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        self._sync(request, list(queryset.order_by("name")), full=False)

    @admin.action(description="Full resync", permissions=["change"])
    def full_resync(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        self._sync(request, list(queryset.order_by("name")), full=True)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        extra = [
            path("progress/", view(self.progress_view), name="integrations_connection_progress"),
            path(
                "<int:connection_id>/test/",
                view(self.test_view),
                name="integrations_connection_test",
            ),
            path(
                "<int:connection_id>/webhook/",
                view(self.webhook_view),
                name="integrations_connection_webhook",
            ),
            path(
                "<int:connection_id>/sync/",
                view(self.sync_view),
                name="integrations_connection_sync",
            ),
        ]
        return extra + super().get_urls()

    def _connection_for_change(self, request: HttpRequest, connection_id: int) -> Connection:
        connection = get_object_or_404(Connection, pk=connection_id)
        if not self.has_change_permission(request, connection):
            raise PermissionDenied
        return connection

    def _back(self, connection: Connection) -> HttpResponseRedirect:
        return HttpResponseRedirect(
            reverse("admin:integrations_connection_change", args=[connection.pk])
        )

    def test_view(self, request: HttpRequest, connection_id: int) -> HttpResponse:
        return require_POST(self._test_view)(request, connection_id)

    def _test_view(self, request: HttpRequest, connection_id: int) -> HttpResponse:
        connection = self._connection_for_change(request, connection_id)
        self._test(request, connection)
        return self._back(connection)

    def webhook_view(self, request: HttpRequest, connection_id: int) -> HttpResponse:
        return require_POST(self._webhook_view)(request, connection_id)

    def _webhook_view(self, request: HttpRequest, connection_id: int) -> HttpResponse:
        connection = self._connection_for_change(request, connection_id)
        self._register_webhook(request, connection)
        return self._back(connection)

    def sync_view(self, request: HttpRequest, connection_id: int) -> HttpResponse:
        return require_POST(self._sync_view)(request, connection_id)

    def _sync_view(self, request: HttpRequest, connection_id: int) -> HttpResponse:
        connection = self._connection_for_change(request, connection_id)
        self._sync(request, [connection], full=request.POST.get("full") == "1")
        return self._back(connection)

    def progress_view(self, request: HttpRequest) -> HttpResponse:
        return require_GET(self._progress_view)(request)

    def _progress_view(self, request: HttpRequest) -> HttpResponse:
        """The latest run of each connection asked for (`?ids=1,2`), for the progress bars."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        from issues.dashboard import connections_with_health, latest_runs

        raw = request.GET.get("ids", "")
        ids = [int(part) for part in raw.split(",") if part.strip().isdigit()][:200]
        connections = connections_with_health(Connection.objects.filter(pk__in=ids))
        runs = latest_runs(connections)
        return JsonResponse(
            {
                "now": timezone.now().isoformat(),
                "connections": {str(cid): summary.as_json() for cid, summary in runs.items()},
            }
        )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "delivery_id",
        "provider",
        "event",
        "connection",
        "status",
        "received_at",
        "processed_at",
        "attempts",
    )
    list_filter = ("provider", "status", "event", "connection")
    list_select_related = ("connection",)
    search_fields = ("delivery_id", "correlation_id", "error")
    readonly_fields = (
        "provider",
        "connection",
        "delivery_id",
        "event",
        "headers",
        "payload",
        "received_at",
        "processed_at",
        "status",
        "attempts",
        "error",
        "correlation_id",
    )
    exclude = ("body",)
    actions = ("reprocess",)

    @admin.display(description="Raw body")
    def payload(self, obj: WebhookDelivery) -> str:
        text = bytes(obj.body).decode("utf-8", errors="replace")
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", text[:200_000])

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_reprocess_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("integrations.change_webhookdelivery")

    @admin.action(description="Reprocess", permissions=["reprocess"])
    def reprocess(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        selected = queryset.count()
        count = delivery_reprocess(delivery_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(
            request,
            f"{count} deliver{'y' if count == 1 else 'ies'} queued for processing again.",
            messages.SUCCESS,
        )
        if selected > count:
            self.message_user(
                request,
                f"{selected - count} skipped: a worker is processing them right now.",
                messages.WARNING,
            )

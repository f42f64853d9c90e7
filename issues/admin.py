"""The admin for the mirror: issues, the audit trail, runs, the outbox, and conflict resolution.

Views here are thin: they check permissions, call a service (`conflict_resolve`,
`outbox_retry`), and report counts with `message_user`. Nothing edits a mirror row directly.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from issues.conflict_display import FIELD_LABELS, ResolutionForm, conflict_view, field_order
from issues.dashboard import error_in_words
from issues.models import (
    ApiToken,
    Conflict,
    ConflictResolution,
    Issue,
    OutboxEntry,
    OutboxStatus,
    SyncLog,
    SyncRun,
    Trigger,
)
from issues.outbox import outbox_retry
from issues.services.issues import IssueServiceError, conflict_resolve, issue_update
from issues.services.tokens import api_token_create
from syndarix_sync.admin_fields import NameListField
from syndarix_sync.logs import new_correlation_id


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by the engine: browsable, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _resolve_url(conflict_id: int) -> str:
    return reverse("admin:issues_conflict_resolve", args=[conflict_id])


class IssueForm(forms.ModelForm):
    """The fields a person may change; the change itself is made by `issue_update` (the one
    write path: versions, audit log, outbox), never by saving this form's instance."""

    EDITABLE = ("title", "body", "state", "labels", "assignees", "milestone")

    labels = NameListField(required=False, help_text="Comma separated.")
    assignees = NameListField(required=False, help_text="Logins, comma separated.")
    milestone = forms.CharField(required=False, help_text="Blank for none.")

    class Meta:
        model = Issue
        fields = ("title", "body", "state", "labels", "assignees", "milestone")

    def clean_milestone(self) -> str | None:
        return (self.cleaned_data.get("milestone") or "").strip() or None

    def changes(self) -> dict[str, Any]:
        """The edited fields whose value differs from the stored one."""
        stored = Issue.objects.get(pk=self.instance.pk) if self.instance.pk else None
        return {
            name: self.cleaned_data[name]
            for name in self.EDITABLE
            if name in self.cleaned_data
            and (stored is None or self.cleaned_data[name] != getattr(stored, name))
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.instance.pk and not self.errors:
            open_conflicts = {
                c.field: c for c in self.instance.conflicts.filter(resolved=False).order_by("id")
            }
            for name in self.changes():
                if name in open_conflicts:
                    self.add_error(
                        name,
                        format_html(
                            'This field is in conflict with the tracker: <a href="{}">resolve '
                            "the conflict</a> first (it shows both values).",
                            _resolve_url(open_conflicts[name].pk),
                        ),
                    )
        return cleaned


@admin.register(Issue)
class IssueAdmin(admin.ModelAdmin):
    form = IssueForm
    list_display = (
        "__str__",
        "connection",
        "state",
        "sync_status",
        "external_number",
        "remote_updated_at",
        "updated_at",
    )
    list_filter = ("connection", "state", "sync_status")
    list_select_related = ("connection",)
    search_fields = ("title", "body", "external_id", "external_number")
    readonly_fields = (
        "conflicts_display",
        "connection",
        "external_id",
        "external_number",
        "remote_link",
        "base",
        "versions",
        "sync_status",
        "sync_error_words",
        "remote_created_at",
        "remote_updated_at",
        "remote_deleted_at",
        "created_at",
        "updated_at",
    )

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets: list[Any] = [
            (None, {"fields": ("conflicts_display", "connection", "remote_link")}),
            (
                "Fields (saved through the outbox to the tracker)",
                {"fields": IssueForm.EDITABLE},
            ),
            (
                "Sync",
                {
                    "fields": (
                        "sync_status",
                        "sync_error_words",
                        "external_id",
                        "external_number",
                        "remote_created_at",
                        "remote_updated_at",
                        "remote_deleted_at",
                        "created_at",
                        "updated_at",
                    )
                },
            ),
        ]
        if request.user.is_superuser:
            # The merge's bookkeeping: useful when debugging the sync, noise otherwise.
            fieldsets.append(
                ("Merge internals", {"classes": ("collapse",), "fields": ("base", "versions")})
            )
        return fieldsets

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Issues are created by agents (the API) or mirrored from the tracker.
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and not obj.connection.allows_outbound:
            fields += list(IssueForm.EDITABLE)  # an inbound-only connection is never pushed
        return fields

    def save_model(self, request: HttpRequest, obj: Issue, form: Any, change: bool) -> None:
        changes = form.changes() if hasattr(form, "changes") else {}
        if changes:
            issue_update(
                issue=obj,
                changes=changes,
                trigger=Trigger.MANUAL,
                correlation_id=new_correlation_id(),
            )
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        return  # nothing related is edited here

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return None  # the sync log (issue history) is the audit trail of issue edits

    @admin.display(description="Sync error")
    def sync_error_words(self, obj: Issue) -> str:
        return error_in_words(obj.sync_error) or "—"

    @admin.display(description="In the tracker")
    def remote_link(self, obj: Issue) -> str:
        if not obj.remote_url:
            return "not created in the tracker yet"
        return format_html('<a href="{0}" rel="noreferrer">{0}</a>', obj.remote_url)

    @admin.display(description="Open conflicts")
    def conflicts_display(self, obj: Issue) -> str:
        open_conflicts = list(obj.conflicts.filter(resolved=False).order_by("id"))
        if not open_conflicts:
            return "none"
        fields = ", ".join(FIELD_LABELS.get(c.field, c.field) for c in open_conflicts)
        return format_html(
            '{} — <a href="{}">resolve them</a>', fields, _resolve_url(open_conflicts[0].pk)
        )


@admin.register(SyncLog)
class SyncLogAdmin(ReadOnlyAdmin):
    # The columns a person scans first; the issue title is cut so they stay on screen.
    list_display = (
        "created_at",
        "direction",
        "action",
        "trigger",
        "connection",
        "issue_short",
    )
    list_filter = ("direction", "action", "trigger", "provider")
    list_select_related = ("connection", "issue")
    search_fields = ("correlation_id",)
    date_hierarchy = "created_at"

    @admin.display(description="Issue", ordering="issue__external_number")
    def issue_short(self, obj: SyncLog) -> str:
        return Truncator(str(obj.issue)).chars(50) if obj.issue_id else "—"


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "connection",
        "kind",
        "success",
        "progress",
        "created",
        "updated",
        "deleted",
        "conflicts",
        "failed",
        "requests",
        "duration_seconds",
    )
    list_filter = ("kind", "success", "connection")
    list_select_related = ("connection",)

    @admin.display(description="Seen")
    def progress(self, obj: SyncRun) -> str:
        if obj.total:
            return f"{obj.seen} of {obj.total}"
        return str(obj.seen)


@admin.register(OutboxEntry)
class OutboxEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "issue",
        "connection",
        "operation",
        "status",
        "attempts",
        "next_attempt_at",
        "error_words",
    )
    list_filter = ("status", "operation", "connection")
    list_select_related = ("issue", "connection")
    search_fields = ("last_error", "correlation_id")
    actions = ("retry_now", "requeue_failed")

    @admin.display(description="Last error")
    def error_words(self, obj: OutboxEntry) -> str:
        return Truncator(error_in_words(obj.last_error)).chars(120)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("issues.change_outboxentry")

    def _retry(self, request: HttpRequest, ids: list[int], skipped: int) -> None:
        from issues.tasks import drain_outbox
        from syndarix_sync.queueing import queue_on_commit

        count = outbox_retry(entry_ids=ids)
        if count:
            queue_on_commit(drain_outbox)
        self.message_user(
            request,
            f"{count} outbox entr{'y' if count == 1 else 'ies'} queued for an immediate push.",
            messages.SUCCESS,
        )
        if skipped:
            self.message_user(
                request, f"{skipped} skipped: already done or being pushed.", messages.WARNING
            )

    @admin.action(description="Retry now", permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[OutboxEntry]) -> None:
        wanted = (OutboxStatus.PENDING, OutboxStatus.FAILED)
        ids = list(queryset.filter(status__in=wanted).values_list("id", flat=True))
        self._retry(request, ids, queryset.count() - len(ids))

    @admin.action(description="Requeue failed", permissions=["retry"])
    def requeue_failed(self, request: HttpRequest, queryset: QuerySet[OutboxEntry]) -> None:
        ids = list(queryset.filter(status=OutboxStatus.FAILED).values_list("id", flat=True))
        self._retry(request, ids, queryset.count() - len(ids))


class OpenFilter(admin.SimpleListFilter):
    """Open conflicts by default: that is the work list."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("open", "Open"), ("resolved", "Resolved"), ("all", "All")]

    def choices(self, changelist: Any) -> Any:
        current = self.value() or "open"
        for value, title in self.lookup_choices:
            yield {
                "selected": current == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Conflict]) -> QuerySet[Conflict]:
        value = self.value() or "open"
        if value == "open":
            return queryset.filter(resolved=False)
        if value == "resolved":
            return queryset.filter(resolved=True)
        return queryset


class AgeFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"
    BUCKETS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("hour", "Less than an hour"),
            ("day", "Less than a day"),
            ("older", "Older than a day"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Conflict]) -> QuerySet[Conflict]:
        now = timezone.now()
        value = self.value()
        if value in self.BUCKETS:
            return queryset.filter(detected_at__gte=now - self.BUCKETS[value])
        if value == "older":
            return queryset.filter(detected_at__lt=now - self.BUCKETS["day"])
        return queryset


def _short(value: Any) -> str:
    if isinstance(value, list):
        text = ", ".join(str(v) for v in value) or "(none)"
    elif value is None:
        text = "(none)"
    else:
        text = str(value)
    return Truncator(text.replace("\n", " ")).chars(30)


@admin.register(Conflict)
class ConflictAdmin(ReadOnlyAdmin):
    # "Resolve" comes right after the issue: it is what the list is for.
    list_display = (
        "issue_link",
        "resolve_link",
        "field",
        "connection",
        "base_short",
        "local_short",
        "remote_short",
        "detected_at",
        "resolution_display",
    )
    list_filter = (
        OpenFilter,
        ("issue__connection", admin.RelatedFieldListFilter),
        "field",
        AgeFilter,
    )
    list_select_related = ("issue", "issue__connection", "resolved_by")
    search_fields = ("issue__title", "issue__external_number")
    readonly_fields = (
        "issue",
        "field",
        "base_value",
        "local_value",
        "remote_value",
        "detected_at",
        "resolved",
        "resolution",
        "resolved_value",
        "resolved_by",
        "resolved_at",
        "resolve_link",
    )
    actions = ("take_remote", "take_local")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # conflicts are part of the audit trail

    def has_resolve_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("issues.change_conflict")

    # --- list columns ---------------------------------------------------------------------

    @admin.display(description="Issue", ordering="issue__external_number")
    def issue_link(self, obj: Conflict) -> str:
        url = reverse("admin:issues_issue_change", args=[obj.issue_id])
        return format_html('<a href="{}">{}</a>', url, Truncator(str(obj.issue)).chars(40))

    @admin.display(description="Connection", ordering="issue__connection__name")
    def connection(self, obj: Conflict) -> str:
        return obj.issue.connection.name

    @admin.display(description="Base")
    def base_short(self, obj: Conflict) -> str:
        return _short(obj.base_value)

    @admin.display(description="Local")
    def local_short(self, obj: Conflict) -> str:
        return _short(obj.local_value)

    @admin.display(description="Remote")
    def remote_short(self, obj: Conflict) -> str:
        return _short(obj.remote_value)

    @admin.display(description="Resolution")
    def resolution_display(self, obj: Conflict) -> str:
        if not obj.resolved:
            return "open"
        who = f" by {obj.resolved_by}" if obj.resolved_by_id else " by the sync"
        return f"{obj.get_resolution_display()}{who}"

    @admin.display(description="Action")
    def resolve_link(self, obj: Conflict) -> str:
        label = "Resolve" if not obj.resolved else "View"
        return format_html('<a href="{}">{}</a>', _resolve_url(obj.pk), label)

    # --- bulk actions ---------------------------------------------------------------------

    def _take(
        self, request: HttpRequest, queryset: QuerySet[Conflict], strategy: str, side: str
    ) -> None:
        resolved = skipped = 0
        errors: list[str] = []
        for conflict in queryset.select_related("issue").order_by("id"):
            if conflict.resolved:
                skipped += 1
                continue
            try:
                conflict_resolve(conflict=conflict, strategy=strategy, user=request.user)
            except IssueServiceError as exc:
                errors.append(f"{conflict.field} of {conflict.issue}: {exc}")
                continue
            resolved += 1
        self.message_user(
            request,
            f"Took the {side} value for {resolved} conflict{'' if resolved == 1 else 's'}.",
            messages.SUCCESS if resolved else messages.INFO,
        )
        if skipped:
            self.message_user(
                request, f"{skipped} already resolved, left as they were.", messages.WARNING
            )
        for error in errors:
            self.message_user(request, f"Not resolved: {error}", messages.ERROR)

    @admin.action(description="Take remote (keep the tracker's values)", permissions=["resolve"])
    def take_remote(self, request: HttpRequest, queryset: QuerySet[Conflict]) -> None:
        self._take(request, queryset, ConflictResolution.REMOTE_WINS, "remote")

    @admin.action(description="Take local (push the local values)", permissions=["resolve"])
    def take_local(self, request: HttpRequest, queryset: QuerySet[Conflict]) -> None:
        self._take(request, queryset, ConflictResolution.LOCAL_WINS, "local")

    # --- the per-issue resolution page ----------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path(
                "<int:conflict_id>/resolve/",
                self.admin_site.admin_view(self.resolve_view),
                name="issues_conflict_resolve",
            ),
        ]
        return extra + super().get_urls()

    def resolve_view(self, request: HttpRequest, conflict_id: int) -> HttpResponse:
        """Every open conflict of one issue, side by side; Apply resolves the chosen fields
        in one transaction through `conflict_resolve`."""
        if not self.has_resolve_permission(request):
            raise PermissionDenied
        conflict = get_object_or_404(
            Conflict.objects.select_related("issue__connection"), pk=conflict_id
        )
        issue = conflict.issue
        open_conflicts = sorted(issue.conflicts.filter(resolved=False), key=field_order)
        if request.method == "POST":
            form = ResolutionForm(request.POST, conflicts=open_conflicts)
            if form.is_valid():
                try:
                    applied = self._apply(request, form.cleaned_data["decisions"])
                except IssueServiceError as exc:
                    form.add_error(None, f"Nothing was changed: {exc}")
                else:
                    self.message_user(request, applied, messages.SUCCESS)
                    return HttpResponseRedirect(request.path)
        else:
            form = ResolutionForm(conflicts=open_conflicts)
        views = []
        for open_conflict in open_conflicts:
            view = conflict_view(open_conflict)
            view.choice_field = form[f"choice_{open_conflict.pk}"]
            view.merged_field = form[f"merged_{open_conflict.pk}"]
            views.append(view)
        resolved = (
            issue.conflicts.filter(resolved=True)
            .select_related("resolved_by")
            .order_by("-resolved_at", "-id")[:20]
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Resolve conflicts of {issue}",
            "subtitle": None,
            "issue": issue,
            "conflict": conflict,
            "form": form,
            "views": views,
            "resolved": resolved,
            "changelist_url": reverse("admin:issues_conflict_changelist"),
            "issue_url": reverse("admin:issues_issue_change", args=[issue.pk]),
        }
        return TemplateResponse(request, "admin/issues/conflict/resolve.html", context)

    @staticmethod
    def _apply(request: HttpRequest, decisions: list[Any]) -> str:
        done = []
        with transaction.atomic():
            for decision in decisions:
                conflict_resolve(
                    conflict=decision.conflict,
                    strategy=decision.strategy,
                    value=decision.value,
                    user=request.user,
                )
                done.append(
                    f"{FIELD_LABELS.get(decision.conflict.field)} "
                    f"({ConflictResolution(decision.strategy).label.lower()})"
                )
        return (
            f"Resolved {len(done)} conflict{'' if len(done) == 1 else 's'}: "
            f"{', '.join(done)}. Local and merged values are pushed to the tracker by "
            "the outbox."
        )


class ApiTokenAddForm(forms.ModelForm):
    """A new token: scoped to the chosen connections, or explicitly to all of them."""

    class Meta:
        model = ApiToken
        fields = ("user", "name", "connections", "all_connections")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        chosen = cleaned.get("connections")
        if cleaned.get("all_connections") and chosen:
            raise forms.ValidationError(
                "Choose connections or every connection (unscoped), not both."
            )
        if not cleaned.get("all_connections") and not chosen:
            raise forms.ValidationError(
                "Choose the connections this token may see, or tick “every connection”: a "
                "token scoped to nothing sees nothing."
            )
        return cleaned


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = (
        "prefix",
        "name",
        "user",
        "scope",
        "created_at",
        "last_used_at",
        "active",
    )
    list_filter = ("revoked", "all_connections")
    search_fields = ("name", "user__username", "prefix")
    # Unscoped is chosen when the token is minted; the admin shows it but cannot grant it later.
    readonly_fields = ("prefix", "all_connections", "created_at", "last_used_at")
    exclude = ("key_hash",)
    filter_horizontal = ("connections",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiToken]:
        return super().get_queryset(request).prefetch_related("connections")

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = ApiTokenAddForm
            kwargs["fields"] = ApiTokenAddForm.Meta.fields
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else ()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ApiTokenAddForm.Meta.fields
        return super().get_fields(request, obj)

    @admin.display(description="Scope")
    def scope(self, token: ApiToken) -> str:
        if token.all_connections:
            return "every connection (unscoped)"
        names = [c.name for c in token.connections.all()]
        return ", ".join(names) if names else "nothing (its connections are gone)"

    @admin.display(description="Active", boolean=True, ordering="revoked")
    def active(self, token: ApiToken) -> bool:
        return not token.revoked

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        token, key = api_token_create(
            user=form.cleaned_data["user"],
            name=form.cleaned_data.get("name") or "",
            connection_ids=[c.pk for c in form.cleaned_data.get("connections") or ()],
            all_connections=bool(form.cleaned_data.get("all_connections")),
        )
        obj.pk = token.pk
        obj.prefix, obj.created_at = token.prefix, token.created_at
        obj._state.adding = False
        self._new_key = key

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        if change:
            super().save_related(request, form, formsets, change)
        # a new token's connections were set by api_token_create

    def response_add(
        self, request: HttpRequest, obj: ApiToken, post_url_continue: Any = None
    ) -> HttpResponse:
        """The key, once: only its hash is stored, so this page is the only place it shows."""
        key = getattr(self, "_new_key", "")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "API token created",
            "token": obj,
            "key": key,
            "changelist_url": reverse("admin:issues_apitoken_changelist"),
        }
        response = TemplateResponse(request, "admin/issues/apitoken/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

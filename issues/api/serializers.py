"""Input and output shapes of the API (SPEC §6 names), validated so that bad input is a 400
naming the field, never a 500: strict types, size limits, and ids checked against the range
the database can hold before any lookup."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.validators import URLValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from integrations.models import Connection
from integrations.providers import is_supported, netguard
from integrations.providers.base import ConfigOption, validate_config
from integrations.providers.registry import capabilities, config_options, refused_values
from issues.api.errors import public_error
from issues.canonical import FIELDS
from issues.models import (
    Conflict,
    ConflictResolution,
    Issue,
    IssueState,
    SyncLog,
    SyncRun,
)
from issues.web_urls import web_url_or_empty

# Ids are 64-bit (BigAutoField); a larger number would overflow the database driver.
MAX_DB_ID = 2**63 - 1
MAX_TITLE_LENGTH = 1000  # Issue.title's column
MAX_BODY_LENGTH = 262_144
MAX_NAME_LENGTH = 255  # one label, login or filter entry
MAX_MILESTONE_LENGTH = 300  # Issue.milestone's column
MAX_LIST_ITEMS = 100


def _encodable(value: str) -> None:
    # A lone surrogate (legal in JSON's \ud800 escapes) cannot be stored as UTF-8.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise serializers.ValidationError("Text must be valid Unicode.") from None


class StrictCharField(serializers.CharField):
    """A string and only a string: DRF's CharField would turn 12 or 1.5 into text."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators.append(_encodable)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def name_list_field(**kwargs: Any) -> serializers.ListField:
    """A list of non-empty names (labels, logins, filter entries)."""
    return serializers.ListField(
        child=StrictCharField(max_length=MAX_NAME_LENGTH), max_length=MAX_LIST_ITEMS, **kwargs
    )


class RejectUnknownFieldsMixin:
    """Answers 400 for a misspelt field instead of silently ignoring it. Output-only fields
    (an agent may send back what it read) are ignored."""

    ignored_fields: frozenset[str] = frozenset()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        initial = getattr(self, "initial_data", {})
        known = set(self.fields) | self.ignored_fields  # type: ignore[attr-defined]
        unknown = sorted(set(initial) - known) if isinstance(initial, Mapping) else []
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return attrs


# --- errors (for the OpenAPI document) ------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong.")
    code = serializers.CharField(required=False, help_text="A stable, machine-readable code.")


class ConflictErrorSerializer(ErrorSerializer):
    conflicting_fields = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Fields with an open conflict that the request would change.",
    )
    conflicts = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        help_text="Ids of those open conflicts (see sync/conflicts/).",
    )


# --- issues ----------------------------------------------------------------------------------

ISSUE_FIELDS = (
    "id",
    "connection",
    "title",
    "body",
    "state",
    "labels",
    "assignees",
    "milestone",
    "external_id",
    "external_number",
    "remote_url",
    "sync_status",
    "sync_error",
    "tracker_status",
    "created_at",
    "updated_at",
    "remote_updated_at",
)


class WebUrlOutputField(serializers.CharField):
    """A tracker link as the API shows it: http/https only, else empty (SPEC §8)."""

    def to_representation(self, value: Any) -> str:
        return web_url_or_empty(value)


class IssueSerializer(serializers.ModelSerializer):
    """A mirrored issue. `sync_status` is `pending` while a local change is not yet
    acknowledged by the tracker and `conflict` while the issue has an open conflict."""

    # Empty until the tracker has the issue, so not declared as a URI.
    remote_url = WebUrlOutputField(read_only=True)
    labels = serializers.ListField(child=serializers.CharField(), read_only=True)
    assignees = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Issue
        fields = ISSUE_FIELDS
        read_only_fields = ISSUE_FIELDS


class IssueFieldsInputSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """The issue fields an agent may set. Unknown fields are refused; output-only fields
    (id, sync_status, …) are ignored."""

    ignored_fields = frozenset(ISSUE_FIELDS) - set(FIELDS)

    title = StrictCharField(max_length=MAX_TITLE_LENGTH)
    body = StrictCharField(max_length=MAX_BODY_LENGTH, allow_blank=True, trim_whitespace=False)
    state = serializers.ChoiceField(choices=IssueState.choices)
    labels = name_list_field(help_text="Label names; the list replaces the issue's labels.")
    assignees = name_list_field(help_text="Logins; the list replaces the issue's assignees.")
    milestone = StrictCharField(
        max_length=MAX_MILESTONE_LENGTH,
        allow_null=True,
        allow_blank=True,
        help_text="Milestone name; null or empty for none.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        # What the connection's tracker cannot hold is refused here, naming the field.
        connection = attrs.get("connection") or self.context.get("connection")
        if isinstance(connection, Connection) and is_supported(connection.provider):
            # First what no value of this tracker can be (two assignees where it holds one),
            # then values it does not define (a label, version or login Redmine lacks).
            problems = capabilities(connection.provider).refusals(attrs) or refused_values(
                connection, attrs
            )
            if problems:
                raise serializers.ValidationError({f: [m] for f, m in problems.items()})
        return attrs


class IssueCreateInputSerializer(IssueFieldsInputSerializer):
    """A new issue: `connection` and `title` are required."""

    connection = serializers.IntegerField(
        min_value=1, max_value=MAX_DB_ID, help_text="Id of the connection (sync/configs/)."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("body", "state", "labels", "assignees", "milestone"):
            self.fields[name].required = False

    def validate_connection(self, value: int) -> Connection:
        visible = self.context["connections"]
        connection = visible.filter(pk=value).first()
        if connection is None:
            raise serializers.ValidationError("No connection with this id.")
        return connection


class IssueUpdateInputSerializer(IssueFieldsInputSerializer):
    """The fields to change; those not sent are left alone."""

    force = serializers.BooleanField(
        default=False,
        help_text="Change fields that have an open conflict anyway: the new value settles "
        "the conflict (it was chosen after seeing the remote value).",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["partial"] = True
        super().__init__(*args, **kwargs)


class SyncLogSerializer(serializers.ModelSerializer):
    class Meta:
        model = SyncLog
        fields = (
            "id",
            "issue",
            "connection",
            "provider",
            "direction",
            "action",
            "trigger",
            "before",
            "after",
            "correlation_id",
            "created_at",
        )
        read_only_fields = fields


class RefreshResultSerializer(serializers.Serializer):
    outcome = serializers.CharField(
        help_text="What applying the tracker's state did: updated, unchanged, conflict, "
        "stale (the mirror already had newer data)…"
    )
    issue = IssueSerializer()


# --- connections -----------------------------------------------------------------------------

# Where the stored token goes: changing any of these needs the token again.
TOKEN_BOUND_FIELDS = ("base_url", "provider", "repository")


class ConnectionSerializer(serializers.ModelSerializer):
    """A tracker connection. Secrets are write-only: omitted on update, they are kept."""

    base_url = serializers.URLField(
        max_length=500,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text=Connection._meta.get_field("base_url").help_text,
    )
    name = StrictCharField(
        max_length=200,
        validators=[
            UniqueValidator(
                Connection.objects.all(), message="A connection with this name already exists."
            )
        ],
    )
    repository = StrictCharField(
        max_length=300, help_text=Connection._meta.get_field("repository").help_text
    )
    api_token = StrictCharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="The tracker's API token (write-only).",
    )
    webhook_secret = StrictCharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="The secret the tracker signs webhooks with (write-only).",
    )
    label_filter = name_list_field(
        required=False, help_text="Only sync issues carrying one of these labels."
    )
    milestone_filter = name_list_field(
        required=False, help_text="Only sync issues in one of these milestones."
    )
    poll_interval_seconds = serializers.IntegerField(
        min_value=10, max_value=30 * 86_400, required=False
    )
    full_sync_interval_seconds = serializers.IntegerField(
        min_value=60, max_value=365 * 86_400, required=False
    )
    webhook_url = serializers.CharField(
        read_only=True,
        help_text="Paste this into the tracker's webhook settings; empty for a tracker "
        "without webhooks (`sync_mode` polling).",
    )
    sync_mode = serializers.SerializerMethodField(
        help_text="`webhooks` (plus polls), or `polling` for a tracker without webhooks "
        "(Redmine): changes arrive by polls, deletions by the full sync."
    )
    has_api_token = serializers.SerializerMethodField()
    has_webhook_secret = serializers.SerializerMethodField()
    config_json = serializers.JSONField(
        required=False,
        help_text="The provider's own options (SPEC §3); unknown keys are refused.",
    )

    class Meta:
        model = Connection
        fields = (
            "id",
            "name",
            "provider",
            "base_url",
            "repository",
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
            "enabled",
            "config_json",
            "webhook_url",
            "sync_mode",
            "webhook_healthy",
            "last_polled_at",
            "last_webhook_at",
            "has_api_token",
            "has_webhook_secret",
        )
        read_only_fields = ("id", "webhook_healthy", "last_polled_at", "last_webhook_at")

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_has_api_token(self, connection: Connection) -> bool:
        return bool(connection.api_token)

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_has_webhook_secret(self, connection: Connection) -> bool:
        return bool(connection.webhook_secret)

    def validate_base_url(self, value: str) -> str:
        try:
            netguard.check_url(value)
        except netguard.AddressRefused as exc:
            raise serializers.ValidationError(
                f"Not a tracker address: {exc}. Link-local and cloud metadata addresses are "
                "refused (and TRACKER_DENY_NETWORKS)."
            ) from None
        return value

    @extend_schema_field(serializers.ChoiceField(choices=["webhooks", "polling"]))
    def get_sync_mode(self, connection: Connection) -> str:
        return "webhooks" if connection.receives_webhooks else "polling"

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = self._validate_provider_options(attrs)
        initial = getattr(self, "initial_data", {})
        unknown = sorted(set(initial) - set(self.fields)) if isinstance(initial, Mapping) else []
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        connection = self.instance
        if isinstance(connection, Connection):
            # The stored token must never be sent to a new address: whoever points the
            # connection elsewhere gives the token for it in the same request.
            moved = sorted(
                name
                for name in TOKEN_BOUND_FIELDS
                if name in attrs and attrs[name] != getattr(connection, name)
            )
            if moved and not attrs.get("api_token"):
                raise serializers.ValidationError(
                    {
                        "api_token": [
                            f"Changing {', '.join(moved)} requires api_token in the same "
                            "request: the stored token is never sent to a new address."
                        ]
                    }
                )
        return attrs

    def _validate_provider_options(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Only a provider with a client can sync; its options are checked against its
        schema (unknown keys are a 400)."""
        provider = attrs.get("provider", getattr(self.instance, "provider", None))
        if "provider" in attrs and not is_supported(attrs["provider"]):
            raise serializers.ValidationError(
                {"provider": [f"{attrs['provider']!r} has no client yet: it cannot sync."]}
            )
        if "config_json" in attrs or "provider" in attrs:
            options: tuple[ConfigOption, ...] = (
                config_options(provider) if provider and is_supported(provider) else ()
            )
            current = getattr(self.instance, "config_json", None) or {}
            try:
                attrs["config_json"] = validate_config(options, attrs.get("config_json", current))
            except ValueError as exc:
                raise serializers.ValidationError({"config_json": [str(exc)]}) from exc
        return attrs


class SyncTriggerQuerySerializer(serializers.Serializer):
    full = serializers.BooleanField(
        required=False,
        default=False,
        help_text="1/true: a full reconciliation instead of an incremental poll.",
    )


class SyncTriggerResultSerializer(serializers.Serializer):
    connection = serializers.IntegerField()
    full = serializers.BooleanField()
    status = serializers.CharField(help_text="Always `queued`: the sync runs in a worker.")


class WebhookEnsureResultSerializer(serializers.Serializer):
    result = serializers.ChoiceField(choices=["created", "repaired", "unchanged"])
    webhook_url = serializers.CharField()
    steps = serializers.ListField(
        child=serializers.CharField(), help_text="The tracker's webhook form, field by field."
    )
    notes = serializers.ListField(
        child=serializers.CharField(),
        help_text="What was repaired, and what the tracker's API cannot show (the secret).",
    )


class SyncStatusSerializer(serializers.ModelSerializer):
    """Counts come from query annotations (one query for the whole page)."""

    pending_outbox = serializers.IntegerField(
        read_only=True, help_text="Local changes not yet acknowledged by the tracker."
    )
    failed_outbox = serializers.IntegerField(
        read_only=True, help_text="Pushes that gave up after their retries (retryable)."
    )
    open_conflicts = serializers.IntegerField(read_only=True)

    class Meta:
        model = Connection
        fields = (
            "id",
            "name",
            "provider",
            "pending_outbox",
            "failed_outbox",
            "open_conflicts",
            "last_webhook_at",
            "last_polled_at",
            "webhook_healthy",
            "enabled",
            "last_full_sync_at",
        )
        read_only_fields = fields


class SyncRunSerializer(serializers.ModelSerializer):
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    error = serializers.SerializerMethodField(
        help_text="Why the run failed, in words (the status, never the tracker's answer)."
    )

    @extend_schema_field(OpenApiTypes.STR)
    def get_error(self, run: SyncRun) -> str:
        return public_error(run.error or "")

    class Meta:
        model = SyncRun
        fields = (
            "id",
            "connection",
            "kind",
            "started_at",
            "finished_at",
            "duration_seconds",
            "success",
            "error",
            "seen",
            "total",
            "created",
            "updated",
            "unchanged",
            "deleted",
            "conflicts",
            "failed",
            "drift",
            "requests",
        )
        read_only_fields = fields


class MappingSerializer(serializers.ModelSerializer):
    """Which tracker issue a mirrored issue is (external_id is null until it exists there)."""

    remote_url = WebUrlOutputField(read_only=True)

    class Meta:
        model = Issue
        fields = ("id", "connection", "external_id", "external_number", "remote_url", "sync_status")
        read_only_fields = fields


# --- conflicts -------------------------------------------------------------------------------


class ConflictSerializer(serializers.ModelSerializer):
    """Both sides changed `field` concurrently; the values are JSON (text, list or null)."""

    connection = serializers.IntegerField(source="issue.connection_id", read_only=True)
    resolution = serializers.ChoiceField(
        choices=ConflictResolution.choices,
        allow_blank=True,
        read_only=True,
        help_text="Empty while the conflict is open.",
    )

    class Meta:
        model = Conflict
        fields = (
            "id",
            "issue",
            "connection",
            "field",
            "base_value",
            "local_value",
            "remote_value",
            "detected_at",
            "resolved",
            "resolution",
            "resolved_value",
            "resolved_at",
        )
        read_only_fields = fields


class ConflictResolveInputSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """How to settle a conflict."""

    strategy = serializers.ChoiceField(
        choices=ConflictResolution.choices,
        help_text="local_wins: push the local value; remote_wins: keep the tracker's; "
        "merge: use values[field].",
    )
    values = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        default=dict,
        help_text="For merge: the merged value under the conflict's field name, "
        'e.g. {"title": "…"} or {"labels": ["bug", "ui"]}.',
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if attrs["strategy"] != ConflictResolution.MERGE:
            return attrs
        field = self.context["conflict"].field
        values = attrs.get("values") or {}
        if field not in values:
            raise serializers.ValidationError(
                {"values": {field: ["A merged value for this field is required."]}}
            )
        # Checked as an edit of the issue: also what its tracker cannot hold (a milestone on
        # Trello, a label Redmine does not define).
        check = IssueFieldsInputSerializer(
            data={field: values[field]},
            partial=True,
            context={"connection": self.context["conflict"].issue.connection},
        )
        if not check.is_valid():
            raise serializers.ValidationError({"values": check.errors})
        attrs["merged_value"] = check.validated_data[field]
        return attrs

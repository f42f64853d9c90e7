"""Query filters of the list endpoints. Every value is validated into the range the database
accepts (ids, datetimes), so a strange query string is a 400, not a driver error."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django.db import connections
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from integrations.models import Connection
from issues.api.serializers import MAX_DB_ID
from issues.canonical import FIELDS
from issues.models import Conflict, Issue, IssueState, RunKind, SyncRun, SyncStatus


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_DB_ID)
        super().__init__(*args, **kwargs)


class BoundedIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, handed to the database in UTC: PostgreSQL refuses offsets beyond
    ±16 h that Python accepts, and a time near year 1 or 9999 may not survive conversion."""

    def to_python(self, value: Any) -> datetime | None:
        parsed: datetime | None = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("Enter a date and time within years 1–9999.") from None


class BoundedIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = BoundedIsoDateTimeField


def json_list_contains(queryset: QuerySet[Any], field: str, value: str) -> QuerySet[Any]:
    """Rows whose JSON list `field` has `value` as an element (exact match)."""
    db = connections[queryset.db]
    if db.vendor == "postgresql":
        return queryset.filter(**{f"{field}__contains": [value]})
    # SQLite has no JSON containment lookup; its json_each table function does the same.
    # Only the value comes from the caller, and it is a bound parameter; the identifiers
    # are the model's own, quoted.
    model = queryset.model
    column_name = model._meta.get_field(field).column
    column = f"{db.ops.quote_name(model._meta.db_table)}.{db.ops.quote_name(column_name)}"
    sql = f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = %s)"  # noqa: S608
    return queryset.filter(RawSQL(sql, [value], output_field=BooleanField()))  # noqa: S611


class IssueFilter(django_filters.FilterSet):
    connection = IdFilter(field_name="connection_id", help_text="Connection id.")
    state = django_filters.ChoiceFilter(choices=IssueState.choices)
    sync_status = django_filters.ChoiceFilter(choices=SyncStatus.choices)
    label = django_filters.CharFilter(
        method="filter_label", max_length=255, help_text="Issues carrying this label."
    )
    assignee = django_filters.CharFilter(
        method="filter_assignee", max_length=255, help_text="Issues assigned to this login."
    )
    updated_since = BoundedIsoDateTimeFilter(
        field_name="updated_at",
        lookup_expr="gte",
        help_text="Issues changed in the mirror at or after this ISO 8601 time.",
    )
    search = django_filters.CharFilter(
        method="filter_search",
        max_length=500,
        help_text="Case-insensitive substring of the title or body.",
    )
    external_number = django_filters.CharFilter(
        max_length=100, help_text="The tracker's issue number (with `connection`)."
    )
    ordering = django_filters.OrderingFilter(
        fields=("updated_at", "created_at", "remote_updated_at", "id"),
        help_text="Sort key; prefix with - for descending. Default: -updated_at.",
    )

    class Meta:
        model = Issue
        fields = ("connection", "state", "sync_status", "external_number")

    def filter_label(self, queryset: QuerySet[Issue], name: str, value: str) -> QuerySet[Issue]:
        return json_list_contains(queryset, "labels", value)

    def filter_assignee(self, queryset: QuerySet[Issue], name: str, value: str) -> QuerySet[Issue]:
        return json_list_contains(queryset, "assignees", value)

    def filter_search(self, queryset: QuerySet[Issue], name: str, value: str) -> QuerySet[Issue]:
        return queryset.filter(Q(title__icontains=value) | Q(body__icontains=value))


class ConnectionFilter(django_filters.FilterSet):
    enabled = django_filters.BooleanFilter()

    class Meta:
        model = Connection
        fields = ("provider", "enabled")


class SyncRunFilter(django_filters.FilterSet):
    connection = IdFilter(field_name="connection_id", help_text="Connection id.")
    kind = django_filters.ChoiceFilter(choices=RunKind.choices)
    success = django_filters.BooleanFilter()

    class Meta:
        model = SyncRun
        fields = ("connection", "kind", "success")


class MappingFilter(django_filters.FilterSet):
    connection = IdFilter(field_name="connection_id", help_text="Connection id.")
    sync_status = django_filters.ChoiceFilter(choices=SyncStatus.choices)
    external_id = django_filters.CharFilter(max_length=100)
    linked = django_filters.BooleanFilter(
        field_name="external_id",
        lookup_expr="isnull",
        exclude=True,
        help_text="true: only issues that exist in the tracker; false: only local ones "
        "not created there yet.",
    )

    class Meta:
        model = Issue
        fields = ("connection", "sync_status", "external_id")


class ConflictFilter(django_filters.FilterSet):
    resolved = django_filters.BooleanFilter()
    connection = IdFilter(field_name="issue__connection_id", help_text="Connection id.")
    issue = IdFilter(field_name="issue_id", help_text="Issue id.")
    field = django_filters.ChoiceFilter(choices=[(name, name) for name in FIELDS])

    class Meta:
        model = Conflict
        fields = ("resolved", "connection", "issue", "field")

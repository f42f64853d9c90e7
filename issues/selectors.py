"""Read-side queries shared by the REST API and the MCP server (HackSoft "selectors")."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from integrations.models import Connection
from issues.models import Conflict, OutboxEntry, OutboxStatus


def _count_per_connection(rows: QuerySet[Any], connection_path: str) -> Coalesce:
    """A correlated COUNT subquery per connection: one query for the page, no N+1, and no
    row multiplication as separate JOINs under several Count()s would cause."""
    counted = (
        rows.filter(**{connection_path: OuterRef("pk")})
        .order_by()
        .values(connection_path)
        .annotate(total=Count("pk"))
        .values("total")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def connection_sync_status() -> QuerySet[Connection]:
    """Connections annotated with `pending_outbox`, `failed_outbox` and `open_conflicts`."""
    return Connection.objects.annotate(
        pending_outbox=_count_per_connection(
            OutboxEntry.objects.filter(status__in=[OutboxStatus.PENDING, OutboxStatus.IN_PROGRESS]),
            "connection",
        ),
        failed_outbox=_count_per_connection(
            OutboxEntry.objects.filter(status=OutboxStatus.FAILED), "connection"
        ),
        open_conflicts=_count_per_connection(
            Conflict.objects.filter(resolved=False), "issue__connection"
        ),
    ).order_by("name")

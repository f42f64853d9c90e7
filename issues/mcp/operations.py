"""What each MCP tool and resource does, in plain synchronous Django.

Every operation takes the authenticated `Caller` and the arguments under the REST API's names,
validates them with the API's own serializers and filters, and changes things only through
`issues.services` — so the rules, the error words and the audit trail are the API's. A refusal
is raised as `ToolFailure` carrying the HTTP status and the JSON body the API would answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.db import transaction
from django.db.models import QuerySet
from django.http import QueryDict
from django_filters.utils import translate_validation
from rest_framework.exceptions import APIException, NotFound
from rest_framework.utils.encoders import JSONEncoder
from rest_framework.views import exception_handler

from integrations.models import Connection
from issues.api.filters import ConflictFilter, IssueFilter
from issues.api.pagination import ApiPagination
from issues.api.serializers import (
    MAX_DB_ID,
    ConflictResolveInputSerializer,
    ConflictSerializer,
    ConnectionSerializer,
    IssueCreateInputSerializer,
    IssueSerializer,
    IssueUpdateInputSerializer,
    SyncLogSerializer,
    SyncStatusSerializer,
)
from issues.api.views import StateConflict, _conflict, service_errors
from issues.mcp.auth import Caller, scoped
from issues.models import Conflict, Issue, OutboxEntry, OutboxStatus, SyncLog, Trigger
from issues.selectors import connection_sync_status
from issues.services.issues import (
    conflict_resolve,
    issue_close,
    issue_create,
    issue_reopen,
    issue_update,
)
from issues.tasks import sync_project_issues
from syndarix_sync.queueing import queue_on_commit

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = ApiPagination.max_page_size
# A connection resource lists at most this many issues (newest change first) and says so.
CONNECTION_RESOURCE_ISSUES = 1000


class ToolFailure(Exception):
    """A refusal with the REST API's status and body (400 reasons, 404, the 409 conflict)."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        super().__init__(f"{status}: {json.dumps(body, ensure_ascii=False)}")


@contextmanager
def api_errors() -> Iterator[None]:
    """Turn the API's exceptions into `ToolFailure`, with the body DRF would render."""
    try:
        yield
    except StateConflict as exc:
        raise ToolFailure(exc.status_code, exc.payload) from exc
    except APIException as exc:
        response = exception_handler(exc, {})
        status = response.status_code if response is not None else exc.status_code
        body = response.data if response is not None else {"detail": str(exc.detail)}
        # ErrorDetail and ReturnDict become plain JSON values.
        raise ToolFailure(status, json.loads(json.dumps(body))) from exc


def _get(queryset: QuerySet[Any], pk: int) -> Any:
    """One object by id, or the API's 404 for an id out of range, missing or out of scope."""
    if not 1 <= pk <= MAX_DB_ID:
        raise NotFound()
    found = queryset.filter(pk=pk).first()
    if found is None:
        raise NotFound()
    return found


def _page(
    rows: QuerySet[Any], page: int, page_size: int | None
) -> tuple[list[Any], dict[str, Any]]:
    """The API's page-number pagination: `page` from 1, `page_size` up to 200."""
    size = min(max(page_size or DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE)
    paginator = Paginator(rows, size)
    try:
        current = paginator.page(page)
    except (EmptyPage, PageNotAnInteger):
        raise NotFound("Invalid page.") from None
    meta = {
        "count": paginator.count,
        "page": current.number,
        "page_size": size,
        "next_page": current.next_page_number() if current.has_next() else None,
    }
    return list(current.object_list), meta


def _query(values: Mapping[str, Any]) -> QueryDict:
    """Filter arguments as the query string the API's filters read (None = not given)."""
    data = QueryDict(mutable=True)
    for name, value in values.items():
        if value is None:
            continue
        data[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return data


def _issues(caller: Caller) -> QuerySet[Issue]:
    return scoped(Issue.objects.select_related("connection"), caller.token, "connection_id")


def _conflicts(caller: Caller) -> QuerySet[Conflict]:
    return scoped(Conflict.objects.select_related("issue"), caller.token, "issue__connection_id")


def _connections(caller: Caller) -> QuerySet[Connection]:
    return scoped(Connection.objects.all(), caller.token, "id")


def _issue_with_sync_state(issue: Issue) -> dict[str, Any]:
    data = dict(IssueSerializer(issue).data)
    open_conflicts = issue.conflicts.filter(resolved=False).select_related("issue").order_by("id")
    waiting = OutboxEntry.objects.filter(
        issue=issue, status__in=[OutboxStatus.PENDING, OutboxStatus.IN_PROGRESS]
    )
    data["sync_error"] = issue.sync_error
    data["pending_push_fields"] = sorted(
        {f for row in waiting.values_list("changes", flat=True) for f in row}
    )
    data["open_conflicts"] = ConflictSerializer(open_conflicts, many=True).data
    return _json(data)


def _json(value: Any) -> Any:
    """Serializer output (datetimes as the API renders them) as plain JSON values."""
    return json.loads(json.dumps(value, cls=JSONEncoder))


# --- issues ------------------------------------------------------------------------------------


def search_issues(
    caller: Caller, *, page: int = 1, page_size: int | None = None, **filters: Any
) -> dict[str, Any]:
    with api_errors():
        filterset = IssueFilter(data=_query(filters), queryset=_issues(caller))
        if not filterset.is_valid():
            raise translate_validation(filterset.errors)
        rows, meta = _page(filterset.qs, page, page_size)
        return {**meta, "results": _json(IssueSerializer(rows, many=True).data)}


def get_issue(caller: Caller, *, issue_id: int) -> dict[str, Any]:
    with api_errors():
        return _issue_with_sync_state(_get(_issues(caller), issue_id))


def create_issue(caller: Caller, *, data: Mapping[str, Any]) -> dict[str, Any]:
    with api_errors():
        serializer = IssueCreateInputSerializer(
            data=dict(data), context={"connections": _connections(caller)}
        )
        serializer.is_valid(raise_exception=True)
        with service_errors():
            issue = issue_create(
                **serializer.validated_data,
                trigger=Trigger.API,
                correlation_id=caller.correlation_id,
            )
        return _issue_with_sync_state(issue)


def update_issue(caller: Caller, *, issue_id: int, data: Mapping[str, Any]) -> dict[str, Any]:
    with api_errors():
        issue = _get(_issues(caller), issue_id)
        serializer = IssueUpdateInputSerializer(
            data=dict(data), context={"connection": issue.connection}
        )
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        force = changes.pop("force", False)
        with service_errors(issue):
            issue = issue_update(
                issue=issue,
                changes=changes,
                force=force,
                trigger=Trigger.API,
                correlation_id=caller.correlation_id,
            )
        return _issue_with_sync_state(issue)


def close_issue(caller: Caller, *, issue_id: int) -> dict[str, Any]:
    with api_errors():
        issue = _get(_issues(caller), issue_id)
        with service_errors(issue):
            issue = issue_close(
                issue=issue, trigger=Trigger.API, correlation_id=caller.correlation_id
            )
        return _issue_with_sync_state(issue)


def reopen_issue(caller: Caller, *, issue_id: int) -> dict[str, Any]:
    with api_errors():
        issue = _get(_issues(caller), issue_id)
        with service_errors(issue):
            issue = issue_reopen(
                issue=issue, trigger=Trigger.API, correlation_id=caller.correlation_id
            )
        return _issue_with_sync_state(issue)


def issue_history(
    caller: Caller, *, issue_id: int, page: int = 1, page_size: int | None = None
) -> dict[str, Any]:
    with api_errors():
        issue = _get(_issues(caller), issue_id)
        rows, meta = _page(
            SyncLog.objects.filter(issue=issue).order_by("-created_at", "-id"), page, page_size
        )
        return {**meta, "results": _json(SyncLogSerializer(rows, many=True).data)}


# --- conflicts ---------------------------------------------------------------------------------


def list_conflicts(
    caller: Caller, *, page: int = 1, page_size: int | None = None, **filters: Any
) -> dict[str, Any]:
    with api_errors():
        filterset = ConflictFilter(data=_query(filters), queryset=_conflicts(caller))
        if not filterset.is_valid():
            raise translate_validation(filterset.errors)
        rows, meta = _page(filterset.qs, page, page_size)
        return {**meta, "results": _json(ConflictSerializer(rows, many=True).data)}


def resolve_conflict(
    caller: Caller, *, conflict_id: int, data: Mapping[str, Any]
) -> dict[str, Any]:
    with api_errors():
        conflict = _get(_conflicts(caller), conflict_id)
        if conflict.resolved:
            raise _conflict("The conflict is already resolved.", "already_resolved")
        serializer = ConflictResolveInputSerializer(data=dict(data), context={"conflict": conflict})
        serializer.is_valid(raise_exception=True)
        with service_errors(conflict.issue):
            conflict = conflict_resolve(
                conflict=conflict,
                strategy=serializer.validated_data["strategy"],
                value=serializer.validated_data.get("merged_value"),
                user=caller.token.user,
                correlation_id=caller.correlation_id,
            )
        issue = Issue.objects.get(pk=conflict.issue_id)
        return {
            "conflict": _json(ConflictSerializer(conflict).data),
            "issue": _issue_with_sync_state(issue),
        }


# --- sync --------------------------------------------------------------------------------------


def sync_status(caller: Caller, *, connection: int | None = None) -> dict[str, Any]:
    with api_errors():
        rows = scoped(connection_sync_status(), caller.token, "id")
        if connection is not None:
            rows = rows.filter(pk=_get(rows, connection).pk)
        return {"results": _json(SyncStatusSerializer(rows, many=True).data)}


def sync_now(caller: Caller, *, connection: int, full: bool = False) -> dict[str, Any]:
    with api_errors():
        target: Connection = _get(_connections(caller), connection)
        if not target.enabled:
            raise _conflict("The connection is disabled.", "connection_disabled")
        with transaction.atomic():
            queue_on_commit(sync_project_issues, target.pk, full, Trigger.MANUAL)
        return {"connection": target.pk, "full": full, "status": "queued"}


# --- resources ---------------------------------------------------------------------------------


def connection_overview(caller: Caller, *, connection_id: int) -> dict[str, Any]:
    """What a connection syncs: its settings (no secrets), its health and its issues."""
    with api_errors():
        target: Connection = _get(
            scoped(connection_sync_status(), caller.token, "id"), connection_id
        )
        issues = Issue.objects.filter(connection=target).order_by("-updated_at", "-id")
        listed = issues.values(
            "id", "external_number", "title", "state", "sync_status", "remote_url", "updated_at"
        )[:CONNECTION_RESOURCE_ISSUES]
        return _json(
            {
                "connection": ConnectionSerializer(target).data,
                "status": SyncStatusSerializer(target).data,
                "issue_count": issues.count(),
                "issues": list(listed),
                "issues_listed_at_most": CONNECTION_RESOURCE_ISSUES,
            }
        )


def visible_connection_ids(caller: Caller) -> list[int]:
    return list(_connections(caller).order_by("id").values_list("id", flat=True))

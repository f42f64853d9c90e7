"""The /api/v1/ endpoints. Views authenticate, validate, call a service and serialize;
every change to issues and conflicts goes through issues.services, never a direct save."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiExample, OpenApiParameter
from rest_framework import generics, status
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from integrations.models import Connection
from integrations.providers import UnknownProviderError
from integrations.providers.base import ProviderError
from integrations.providers.registry import client_for
from integrations.services import WebhookRegistrationError, connection_webhook_ensure
from issues.api.errors import public_provider_error
from issues.api.filters import (
    ConflictFilter,
    ConnectionFilter,
    IssueFilter,
    MappingFilter,
    SyncRunFilter,
)
from issues.api.idempotency import idempotent
from issues.api.parsers import JSONParser
from issues.api.permissions import ConnectionWritePermission, scoped
from issues.api.schema import BAD_GATEWAY, FORBIDDEN, api_operation
from issues.api.serializers import (
    MAX_DB_ID,
    ConflictResolveInputSerializer,
    ConflictSerializer,
    ConnectionSerializer,
    IssueCreateInputSerializer,
    IssueSerializer,
    IssueUpdateInputSerializer,
    MappingSerializer,
    RefreshResultSerializer,
    SyncLogSerializer,
    SyncRunSerializer,
    SyncStatusSerializer,
    SyncTriggerQuerySerializer,
    SyncTriggerResultSerializer,
    WebhookEnsureResultSerializer,
)
from issues.models import (
    Conflict,
    Issue,
    SyncLog,
    SyncRun,
    Trigger,
)
from issues.selectors import connection_sync_status
from issues.services.issues import (
    IssueInConflictError,
    IssueServiceError,
    ReadOnlyConnectionError,
    conflict_resolve,
    issue_close,
    issue_create,
    issue_reopen,
    issue_update,
)
from issues.services.sync import remote_issue_apply
from issues.tasks import sync_project_issues
from syndarix_sync.logs import new_correlation_id
from syndarix_sync.queueing import queue_on_commit

ISSUES, SYNC, CONFIGS, CONFLICTS = "issues", "sync", "sync configs", "conflicts"


class StateConflict(APIException):
    """409 with a JSON body kept as given (DRF would turn the conflict ids into strings)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload["detail"], payload["code"])
        self.payload = payload


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than the server accepts."
    default_code = "request_too_large"


class TrackerUnavailable(APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "The tracker could not be reached or refused the request."
    default_code = "tracker_error"


def _conflict(detail: str, code: str, **extra: Any) -> StateConflict:
    return StateConflict({"detail": detail, "code": code, **extra})


def correlation_id(request: Request) -> str:
    """The request's correlation id (the caller's X-Correlation-ID when plain enough, bound by
    CorrelationIdMiddleware for every log line), to follow a change through the audit log."""
    return getattr(request._request, "correlation_id", None) or new_correlation_id()


@contextmanager
def service_errors(issue: Issue | None = None) -> Iterator[None]:
    """Turn the services' refusals into HTTP answers. A read-only (inbound) connection is a
    409: the request is well-formed and the caller is allowed, but the connection's current
    direction forbids local changes."""
    try:
        yield
    except IssueInConflictError as exc:
        conflict_ids = []
        if issue is not None:
            conflict_ids = list(
                issue.conflicts.filter(resolved=False, field__in=exc.fields)
                .order_by("id")
                .values_list("id", flat=True)
            )
        raise _conflict(
            f"{exc}. Resolve it (sync/conflicts/…/resolve/) or PATCH with force: true.",
            "issue_in_conflict",
            conflicting_fields=exc.fields,
            conflicts=conflict_ids,
        ) from exc
    except ReadOnlyConnectionError as exc:
        raise _conflict(str(exc), "read_only_connection") from exc
    except IssueServiceError as exc:
        raise ValidationError({"non_field_errors": [str(exc)]}) from exc


# Querysets are narrowed to the token's scope (`scope_field` leads to the connection id), so
# an object outside it is a 404 just like one that does not exist. (A comment, not a
# docstring: drf-spectacular would show a docstring as every operation's description.)
class ApiView(generics.GenericAPIView):
    scope_field = "connection_id"
    permission_classes = [IsAuthenticated]
    # Refuses JSON nested deeper than any request needs (deep nesting was a 500).
    parser_classes = [JSONParser]

    def get_queryset(self) -> QuerySet[Any]:
        return scoped(super().get_queryset(), self.request, self.scope_field)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, StateConflict):
            return Response(exc.payload, status=exc.status_code)
        if isinstance(exc, RequestDataTooBig):
            # Django raises it when the body over DATA_UPLOAD_MAX_MEMORY_SIZE is first read
            # (before a byte of it is): uncaught, it became an HTML 400 instead of a JSON 413.
            exc = RequestTooLarge(f"The request body is over {settings.API_MAX_BODY_BYTES} bytes.")
        return super().handle_exception(exc)

    def get_object(self) -> Any:
        lookup = self.kwargs.get(self.lookup_url_kwarg or self.lookup_field)
        if lookup is None or not 1 <= int(lookup) <= MAX_DB_ID:
            raise NotFound()
        return super().get_object()


@csrf_exempt  # token-authenticated API: no cookies, so no CSRF; writes must also get the 404
def api_not_found(request: HttpRequest, unmatched: str = "") -> JsonResponse:
    """Any other path under /api/v1/ (a malformed id, a missing slash): a JSON 404 like the
    API's own, not Django's HTML page."""
    detail = "Not found."
    if not request.path.endswith("/"):
        try:
            resolve(request.path + "/")
        except Resolver404:
            pass
        else:
            detail = f"Not found. Paths end with a slash: {request.path}/"
    return JsonResponse({"detail": detail, "code": "not_found"}, status=404)


# --- issues ----------------------------------------------------------------------------------

ISSUE_CREATE_EXAMPLE = OpenApiExample(
    "Create an issue",
    request_only=True,
    value={
        "connection": 1,
        "title": "Crash on save",
        "body": "Steps to reproduce: …",
        "labels": ["bug"],
        "assignees": ["alice"],
        "milestone": "v1.2",
    },
)
ISSUE_UPDATE_EXAMPLE = OpenApiExample(
    "Retitle and relabel",
    request_only=True,
    value={"title": "Crash on save (macOS only)", "labels": ["bug", "macos"]},
)
ISSUE_FORCE_EXAMPLE = OpenApiExample(
    "Overrule an open conflict on the title",
    request_only=True,
    value={"title": "Crash on save", "force": True},
)
ISSUE_EXAMPLE = OpenApiExample(
    "An issue waiting to be pushed",
    response_only=True,
    value={
        "id": 7,
        "connection": 1,
        "title": "Crash on save",
        "body": "",
        "state": "open",
        "labels": ["bug"],
        "assignees": ["alice"],
        "milestone": None,
        "external_id": None,
        "external_number": "",
        "remote_url": "",
        "sync_status": "pending",
        "created_at": "2025-01-01T12:00:00Z",
        "updated_at": "2025-01-01T12:00:00Z",
        "remote_updated_at": None,
    },
)


class IssueListCreateApi(ApiView, generics.ListAPIView):
    queryset = Issue.objects.all()
    serializer_class = IssueSerializer
    filterset_class = IssueFilter

    @api_operation(
        summary="List and filter issues across trackers",
        tag=ISSUES,
        is_list=True,
        responses={200: IssueSerializer(many=True)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def validated(self, request: Request) -> dict[str, Any]:
        """The create's fields, checked — also against the tracker (outside any transaction:
        the `idempotent` decorator runs this before it opens one)."""
        serializer = IssueCreateInputSerializer(
            data=request.data,
            context={"connections": scoped(Connection.objects.all(), request, "id")},
        )
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    @api_operation(
        summary="Create an issue (it is created in the tracker by the outbox)",
        description="Takes `connection` and at least `title`. The issue is `pending` until "
        "the tracker has it; then `external_id`, `external_number` and `remote_url` are set. "
        "409 with code `read_only_connection` when the connection is inbound-only.",
        tag=ISSUES,
        write=True,
        request=IssueCreateInputSerializer,
        responses={201: IssueSerializer},
        examples=[ISSUE_CREATE_EXAMPLE, ISSUE_EXAMPLE],
    )
    @idempotent(prepare="validated")
    def post(self, request: Request, *, prepared: dict[str, Any]) -> Response:
        values = prepared
        with service_errors():
            issue = issue_create(
                **values, trigger=Trigger.API, correlation_id=correlation_id(request)
            )
        return Response(IssueSerializer(issue).data, status=status.HTTP_201_CREATED)


class IssueDetailApi(ApiView):
    queryset = Issue.objects.all()
    serializer_class = IssueSerializer

    @api_operation(
        summary="Read an issue", tag=ISSUES, has_id=True, responses={200: IssueSerializer}
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(IssueSerializer(self.get_object()).data)

    def validated(self, request: Request, pk: int) -> tuple[Issue, dict[str, Any]]:
        """The issue and its checked changes (asked of the tracker outside any transaction)."""
        issue = self.get_object()
        serializer = IssueUpdateInputSerializer(
            data=request.data, context={"connection": issue.connection}
        )
        serializer.is_valid(raise_exception=True)
        return issue, dict(serializer.validated_data)

    @api_operation(
        summary="Change an issue's fields",
        description="Only the fields sent are changed; `labels` and `assignees` replace the "
        "lists. A field with an open conflict answers 409 listing `conflicting_fields`, "
        "unless `force` is true (the new value then settles the conflict); 409 with code "
        "`read_only_connection` when the connection is inbound-only.",
        tag=ISSUES,
        has_id=True,
        write=True,
        request=IssueUpdateInputSerializer,
        responses={200: IssueSerializer},
        examples=[ISSUE_UPDATE_EXAMPLE, ISSUE_FORCE_EXAMPLE],
    )
    @idempotent(prepare="validated")
    def patch(
        self, request: Request, pk: int, *, prepared: tuple[Issue, dict[str, Any]]
    ) -> Response:
        issue, changes = prepared
        force = changes.pop("force", False)
        with service_errors(issue):
            issue = issue_update(
                issue=issue,
                changes=changes,
                force=force,
                trigger=Trigger.API,
                correlation_id=correlation_id(request),
            )
        return Response(IssueSerializer(issue).data)


class _IssueStateChangeApi(ApiView):
    """Close and reopen: one service call each, the same answer."""

    queryset = Issue.objects.all()
    serializer_class = IssueSerializer
    change: Callable[..., Issue]

    def _change(self, request: Request) -> Response:
        issue = self.get_object()
        with service_errors(issue):
            issue = type(self).change(
                issue=issue, trigger=Trigger.API, correlation_id=correlation_id(request)
            )
        return Response(IssueSerializer(issue).data)


class IssueCloseApi(_IssueStateChangeApi):
    change = staticmethod(issue_close)

    @api_operation(
        summary="Close an issue",
        tag=ISSUES,
        has_id=True,
        write=True,
        responses={200: IssueSerializer},
    )
    @idempotent()
    def post(self, request: Request, pk: int) -> Response:
        return self._change(request)


class IssueReopenApi(_IssueStateChangeApi):
    change = staticmethod(issue_reopen)

    @api_operation(
        summary="Reopen an issue",
        tag=ISSUES,
        has_id=True,
        write=True,
        responses={200: IssueSerializer},
    )
    @idempotent()
    def post(self, request: Request, pk: int) -> Response:
        return self._change(request)


class IssueHistoryApi(ApiView, generics.ListAPIView):
    queryset = Issue.objects.all()
    serializer_class = SyncLogSerializer

    def get_history(self) -> QuerySet[SyncLog]:
        issue = self.get_object()
        return SyncLog.objects.filter(issue=issue).order_by("-created_at", "-id")

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_history())
        return self.get_paginated_response(SyncLogSerializer(page, many=True).data)

    @api_operation(
        summary="An issue's sync history (audit log)",
        description="Every change applied to the issue, either way, newest first.",
        tag=ISSUES,
        has_id=True,
        is_list=True,
        responses={200: SyncLogSerializer(many=True)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class IssueRefreshApi(ApiView):
    queryset = Issue.objects.select_related("connection")
    serializer_class = RefreshResultSerializer

    @api_operation(
        summary="Fetch the issue from the tracker now and apply it",
        description="Merges the tracker's current state into the mirror as any sync would "
        "(conflicts included). 409 when the issue is not in the tracker yet; 502 when the "
        "tracker fails.",
        tag=ISSUES,
        has_id=True,
        write=True,
        responses={200: RefreshResultSerializer, 502: BAD_GATEWAY},
    )
    # Not atomic: the tracker call must not hold a database transaction open.
    @idempotent(atomic=False)
    def post(self, request: Request, pk: int) -> Response:
        issue = self.get_object()
        if issue.external_id is None:
            raise _conflict("The issue has not been created in the tracker yet.", "not_in_tracker")
        connection = issue.connection
        try:
            client = client_for(connection)
        except UnknownProviderError as exc:
            raise _conflict(
                f"No client for provider {connection.provider!r} yet.", "provider_unsupported"
            ) from exc
        try:
            remote = client.get_issue(issue.external_number)
        except ProviderError as exc:
            # The status and a reason in words; the tracker's body stays in the logs.
            raise TrackerUnavailable(
                {"detail": public_provider_error(exc), "code": type(exc).__name__}
            ) from exc
        finally:
            client.close()
        result = remote_issue_apply(
            connection=connection,
            remote=remote,
            trigger=Trigger.MANUAL,
            correlation_id=correlation_id(request),
        )
        issue.refresh_from_db()
        return Response({"outcome": result.outcome, "issue": IssueSerializer(issue).data})


# --- connections ----------------------------------------------------------------------------

CONNECTION_EXAMPLE = OpenApiExample(
    "A Gitea repository",
    request_only=True,
    value={
        "name": "acme widgets",
        "provider": "gitea",
        "base_url": "https://git.example.com",
        "repository": "acme/widgets",
        "api_token": "…",
        "webhook_secret": "…",
    },
)


class ConnectionListCreateApi(ApiView, generics.ListAPIView):
    queryset = Connection.objects.all()
    serializer_class = ConnectionSerializer
    filterset_class = ConnectionFilter
    scope_field = "id"
    permission_classes = [IsAuthenticated, ConnectionWritePermission]

    @api_operation(
        summary="List tracker connections",
        tag=CONFIGS,
        is_list=True,
        responses={200: ConnectionSerializer(many=True)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @api_operation(
        summary="Add a tracker connection (needs the model permission)",
        description="`api_token` and `webhook_secret` are write-only. Paste the returned "
        "`webhook_url` into the tracker.",
        tag=CONFIGS,
        write=True,
        request=ConnectionSerializer,
        responses={201: ConnectionSerializer, 403: FORBIDDEN},
        examples=[CONNECTION_EXAMPLE],
    )
    @idempotent()
    def post(self, request: Request) -> Response:
        serializer = ConnectionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        _save_connection(serializer)
        return Response(serializer.data, status=status.HTTP_201_CREATED)


class ConnectionDetailApi(ApiView):
    queryset = Connection.objects.all()
    serializer_class = ConnectionSerializer
    scope_field = "id"
    permission_classes = [IsAuthenticated, ConnectionWritePermission]

    @api_operation(
        summary="Read a tracker connection",
        tag=CONFIGS,
        has_id=True,
        responses={200: ConnectionSerializer},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(ConnectionSerializer(self.get_object()).data)

    @api_operation(
        summary="Replace a tracker connection (needs the model permission)",
        tag=CONFIGS,
        has_id=True,
        write=True,
        request=ConnectionSerializer,
        responses={200: ConnectionSerializer, 403: FORBIDDEN},
    )
    @idempotent()
    def put(self, request: Request, pk: int) -> Response:
        return self._update(request, partial=False)

    @api_operation(
        summary="Change a tracker connection (needs the model permission)",
        tag=CONFIGS,
        has_id=True,
        write=True,
        request=ConnectionSerializer,
        responses={200: ConnectionSerializer, 403: FORBIDDEN},
    )
    @idempotent()
    def patch(self, request: Request, pk: int) -> Response:
        return self._update(request, partial=True)

    @api_operation(
        summary="Delete a tracker connection and its mirror (needs the model permission)",
        description="Deletes the connection's mirrored issues, history and outbox with it.",
        tag=CONFIGS,
        has_id=True,
        write=True,
        responses={204: None, 403: FORBIDDEN},
    )
    @idempotent()
    def delete(self, request: Request, pk: int) -> Response:
        self.get_object().delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _update(self, request: Request, *, partial: bool) -> Response:
        serializer = ConnectionSerializer(self.get_object(), data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        _save_connection(serializer)
        return Response(serializer.data)


def _save_connection(serializer: ConnectionSerializer) -> None:
    # The name check in the serializer can lose a race with a concurrent request; the
    # unique constraint then decides, and the loser gets the same 400.
    try:
        with transaction.atomic():
            serializer.save()
    except IntegrityError:
        raise ValidationError({"name": ["A connection with this name already exists."]}) from None


class ConnectionSyncApi(ApiView):
    queryset = Connection.objects.all()
    serializer_class = SyncTriggerResultSerializer
    scope_field = "id"

    @api_operation(
        summary="Sync a connection now",
        description="Queues an incremental poll, or with `?full=1` a full reconciliation. "
        "The sync runs in a worker after this answer (202).",
        tag=CONFIGS,
        has_id=True,
        write=True,
        parameters=[OpenApiParameter("full", bool, description="Full reconciliation.")],
        responses={202: SyncTriggerResultSerializer},
    )
    @idempotent()
    def post(self, request: Request, pk: int) -> Response:
        connection = self.get_object()
        query = SyncTriggerQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        if not connection.enabled:
            raise _conflict("The connection is disabled.", "connection_disabled")
        full = query.validated_data["full"]
        queue_on_commit(sync_project_issues, connection.pk, full, Trigger.MANUAL)
        return Response(
            {"connection": connection.pk, "full": full, "status": "queued"},
            status=status.HTTP_202_ACCEPTED,
        )


class ConnectionWebhookPermission(ConnectionWritePermission):
    """Registering a connection's webhook changes the connection (its tracker side and, when
    it had none, its secret): the change permission, on a connection in the token's scope
    (a scoped token may: the connection is in its scope, else get_object answers 404)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        needed = "integrations.change_connection"
        if user is None or not user.has_perm(needed):
            self.message = f"This needs the {needed} permission."
            return False
        return True


class ConnectionWebhookApi(ApiView):
    queryset = Connection.objects.all()
    serializer_class = WebhookEnsureResultSerializer
    scope_field = "id"
    permission_classes = [IsAuthenticated, ConnectionWebhookPermission]

    @api_operation(
        summary="Create or repair the connection's webhook on its tracker",
        description="Lists the tracker's hooks, finds ours by its address (PUBLIC_URL-based), "
        "creates it when missing and repairs it when disabled or missing events; answers "
        "`created`, `repaired` or `unchanged`, with the manual steps. When the tracker or "
        "the token cannot (no webhook API, no admin right on the repository) the answer is a "
        "4xx with the steps to set the hook up by hand; a polled-only tracker answers 409.",
        tag=CONFIGS,
        has_id=True,
        write=True,
        responses={200: WebhookEnsureResultSerializer, 403: FORBIDDEN},
    )
    def post(self, request: Request, pk: int) -> Response:
        connection = self.get_object()
        try:
            outcome = connection_webhook_ensure(connection=connection)
        except WebhookRegistrationError as exc:
            return Response(
                {
                    "detail": exc.message,
                    "code": exc.code,
                    "webhook_url": connection.webhook_url,
                    "steps": exc.steps,
                },
                status=exc.status,
            )
        return Response(WebhookEnsureResultSerializer(outcome).data)


# --- sync state ------------------------------------------------------------------------------


class SyncStatusApi(ApiView, generics.ListAPIView):
    serializer_class = SyncStatusSerializer
    scope_field = "id"

    def get_queryset(self) -> QuerySet[Connection]:
        connections = connection_sync_status()
        return scoped(connections, self.request, self.scope_field)

    @api_operation(
        summary="Sync health per connection",
        tag=SYNC,
        is_list=True,
        responses={200: SyncStatusSerializer(many=True)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class SyncHistoryApi(ApiView, generics.ListAPIView):
    queryset = SyncRun.objects.all()
    serializer_class = SyncRunSerializer
    filterset_class = SyncRunFilter

    @api_operation(
        summary="Sync runs with their counts and durations",
        tag=SYNC,
        is_list=True,
        responses={200: SyncRunSerializer(many=True)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class SyncMappingsApi(ApiView, generics.ListAPIView):
    queryset = Issue.objects.order_by("connection_id", "id")
    serializer_class = MappingSerializer
    filterset_class = MappingFilter

    @api_operation(
        summary="Local id ↔ tracker id of every mirrored issue",
        tag=SYNC,
        is_list=True,
        responses={200: MappingSerializer(many=True)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


# --- conflicts -------------------------------------------------------------------------------

RESOLVE_EXAMPLES = [
    OpenApiExample(
        "Keep the tracker's value", request_only=True, value={"strategy": "remote_wins"}
    ),
    OpenApiExample("Push the local value", request_only=True, value={"strategy": "local_wins"}),
    OpenApiExample(
        "A merged title",
        request_only=True,
        value={"strategy": "merge", "values": {"title": "Crash on save (all OSes)"}},
    ),
]


class ConflictListApi(ApiView, generics.ListAPIView):
    queryset = Conflict.objects.select_related("issue")
    serializer_class = ConflictSerializer
    filterset_class = ConflictFilter
    scope_field = "issue__connection_id"

    @api_operation(
        summary="List conflicts (`?resolved=false` for the open ones)",
        tag=CONFLICTS,
        is_list=True,
        responses={200: ConflictSerializer(many=True)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class ConflictDetailApi(ApiView):
    queryset = Conflict.objects.select_related("issue")
    serializer_class = ConflictSerializer
    scope_field = "issue__connection_id"

    @api_operation(
        summary="Read a conflict", tag=CONFLICTS, has_id=True, responses={200: ConflictSerializer}
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(ConflictSerializer(self.get_object()).data)


class ConflictResolveApi(ApiView):
    queryset = Conflict.objects.select_related("issue")
    serializer_class = ConflictSerializer
    scope_field = "issue__connection_id"

    def validated(self, request: Request, pk: int) -> tuple[Conflict, dict[str, Any]]:
        """The conflict and the checked resolution (a merged value is asked of the tracker,
        outside any transaction)."""
        conflict = self.get_object()
        if conflict.resolved:
            raise _conflict("The conflict is already resolved.", "already_resolved")
        serializer = ConflictResolveInputSerializer(
            data=request.data, context={"conflict": conflict}
        )
        serializer.is_valid(raise_exception=True)
        return conflict, dict(serializer.validated_data)

    @api_operation(
        summary="Resolve a conflict",
        description="`local_wins` pushes the local value to the tracker, `remote_wins` keeps "
        "the tracker's, `merge` takes `values[<field>]`. 409 if already resolved.",
        tag=CONFLICTS,
        has_id=True,
        write=True,
        request=ConflictResolveInputSerializer,
        responses={200: ConflictSerializer},
        examples=RESOLVE_EXAMPLES,
    )
    @idempotent(prepare="validated")
    def post(
        self, request: Request, pk: int, *, prepared: tuple[Conflict, dict[str, Any]]
    ) -> Response:
        conflict, resolution = prepared
        with service_errors(conflict.issue):
            conflict = conflict_resolve(
                conflict=conflict,
                strategy=resolution["strategy"],
                value=resolution.get("merged_value"),
                user=request.user,
                correlation_id=correlation_id(request),
            )
        return Response(ConflictSerializer(conflict).data)

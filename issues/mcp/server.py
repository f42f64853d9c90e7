"""The MCP server: the tools and resources of issue 20 on the official SDK's `MCPServer`.

Each tool is an async function (the SDK's event loop) that hands its work to
`operations` through `sync_to_async(thread_sensitive=True)`: all ORM work of the process runs
on one thread, as under Django's own ASGI handler, so no "SynchronousOnlyOperation" and no
connection per pool thread; stale connections are closed around each call, as after a request.

The caller is the API token: fixed for a stdio server (`mcp_server --token`), read from the
`Authorization` header of each HTTP request otherwise. The agent id is the tool's `agent_id`
argument, else the `X-Agent-ID` header / `--agent-id` option.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from issues.api.serializers import IssueFieldsInputSerializer, IssueUpdateInputSerializer
from issues.mcp import operations
from issues.mcp.auth import NotAuthenticated, caller_for, parse_authorization
from issues.mcp.operations import ToolFailure
from syndarix_sync.logs import correlation, get_logger

logger = get_logger("syndarix.mcp")

AGENT_HEADER = "x-agent-id"
INSTRUCTIONS = (
    "Syndarix Sync mirrors issues of Gitea, GitHub and GitLab and syncs changes both ways. "
    "Find issues with search_issues, read one with get_issue (sync state and open conflicts "
    "included), change them with update_issue/close_issue/reopen_issue: a change is pushed to "
    "the tracker by the outbox (sync_status `pending` until the tracker has it). A field with "
    "an open conflict refuses a change (status 409, code issue_in_conflict) until you "
    "resolve_conflict or repeat the update with force=true. Errors carry the REST API's status "
    "and body. Pass agent_id on every call: it is written to the audit log."
)

# The API's own help texts, so the words agents read are the ones the REST docs show.
_FIELDS = IssueFieldsInputSerializer().fields
_FORCE_HELP = str(IssueUpdateInputSerializer().fields["force"].help_text)


def _help(name: str, default: str) -> str:
    return str(_FIELDS[name].help_text or default)


AgentId = Annotated[
    str | None,
    Field(
        description="Who you are (e.g. 'claude-desktop/alice'): recorded with every call in the "
        "audit log and the correlation id of the changes you make."
    ),
]
IssueId = Annotated[int, Field(description="The issue's id in the mirror (`id` of search_issues).")]
ConnectionId = Annotated[int, Field(description="Id of the connection (see sync_status).")]
OptConnection = Annotated[
    int | None, Field(description="Only this connection (id, see sync_status).")
]
State = Literal["open", "closed"]
SyncState = Literal["synced", "pending", "conflict", "error"]
Page = Annotated[int, Field(description="Page number, from 1.")]
PageSize = Annotated[int | None, Field(description="Rows per page (default 50, at most 200).")]
Title = Annotated[str | None, Field(description="The issue's title (not empty).")]
Body = Annotated[str | None, Field(description="The issue's body (Markdown).")]
Labels = Annotated[list[str] | None, Field(description=_help("labels", "Label names."))]
Assignees = Annotated[list[str] | None, Field(description=_help("assignees", "Logins."))]
ToolResult = Annotated[CallToolResult, dict[str, Any]]

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)


def _given(**values: Any) -> dict[str, Any]:
    """The arguments the caller set (None = not given), as the API's request body."""
    return {name: value for name, value in values.items() if value is not None}


class SyndarixMCP:
    """Builds the `MCPServer`. `key`: the API token of a stdio server (None: per HTTP request)."""

    def __init__(self, *, key: str | None = None, agent_id: str | None = None) -> None:
        self.key = key
        self.agent_id = agent_id
        self.server = MCPServer(
            name="syndarix-sync",
            title="Syndarix Sync",
            instructions=INSTRUCTIONS,
            version="1.0.0",
            log_level="WARNING",
        )
        self._register_tools()
        self._register_resources()

    # --- plumbing ------------------------------------------------------------------------------

    def _identity(self, ctx: Context | None, agent_id: str | None) -> tuple[str | None, str | None]:
        headers: Mapping[str, str] = (ctx.headers if ctx is not None else None) or {}
        lowered = {k.lower(): v for k, v in headers.items()}
        key = (
            self.key if self.key is not None else parse_authorization(lowered.get("authorization"))
        )
        return key, agent_id or lowered.get(AGENT_HEADER) or self.agent_id

    def _run_sync(
        self,
        action: str,
        key: str | None,
        agent_id: str | None,
        operation: Callable[..., Any],
        kwargs: dict[str, Any],
    ) -> tuple[int, Any]:
        """Authenticate, run, audit: (200, result) or (status, the API's error body)."""
        close_old_connections()
        started = time.perf_counter()
        try:
            try:
                caller = caller_for(key, agent_id)
            except NotAuthenticated as exc:
                logger.warning("mcp_call", action=action, status=401, agent=agent_id or "-")
                return 401, {"detail": str(exc)}
            with correlation(caller.correlation_id):
                status, result = 200, None
                try:
                    result = operation(caller, **kwargs)
                except ToolFailure as exc:
                    status, result = exc.status, exc.body
                except Exception:
                    # A crash (the SDK answers "Error executing tool …"): audited all the same.
                    logger.exception("mcp_call", action=action, status=500, agent=caller.agent_id)
                    raise
                # The audit line of every call, reads included; the changes themselves are in
                # the sync log under the same correlation id.
                logger.info(
                    "mcp_call",
                    action=action,
                    status=status,
                    token_id=caller.token.pk,
                    token_prefix=caller.token.prefix,
                    user=caller.token.user.get_username(),
                    agent=caller.agent_id,
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                )
                return status, result
        finally:
            close_old_connections()

    async def _call(
        self,
        ctx: Context,
        action: str,
        agent_id: str | None,
        operation: Callable[..., dict[str, Any]],
        **kwargs: Any,
    ) -> CallToolResult:
        key, agent = self._identity(ctx, agent_id)
        status, result = await sync_to_async(self._run_sync, thread_sensitive=True)(
            action, key, agent, operation, kwargs
        )
        if status == 200:
            return CallToolResult(
                content=[TextContent(type="text", text=json.dumps(result, ensure_ascii=False))],
                structured_content=result,
            )
        error = {"status": status, "error": result}
        return CallToolResult(
            content=[TextContent(type="text", text=json.dumps(error, ensure_ascii=False))],
            structured_content=error,
            is_error=True,
        )

    async def _read(
        self, ctx: Context, action: str, operation: Callable[..., Any], **kwargs: Any
    ) -> str:
        key, agent = self._identity(ctx, None)
        status, result = await sync_to_async(self._run_sync, thread_sensitive=True)(
            action, key, agent, operation, kwargs
        )
        if status == 404:
            raise ResourceNotFoundError(json.dumps({"status": status, "error": result}))
        if status != 200:
            raise ResourceError(json.dumps({"status": status, "error": result}))
        return json.dumps(result, ensure_ascii=False)

    # --- tools ---------------------------------------------------------------------------------

    def _register_tools(self) -> None:
        server = self.server

        @server.tool(annotations=READ)
        async def search_issues(
            ctx: Context,
            *,
            connection: OptConnection = None,
            state: State | None = None,
            label: Annotated[str | None, Field(description="Issues carrying this label.")] = None,
            assignee: Annotated[
                str | None, Field(description="Issues assigned to this login.")
            ] = None,
            sync_status: Annotated[
                SyncState | None,
                Field(
                    description="pending: a local change not yet in the tracker; conflict: "
                    "an open conflict; error: the last push failed."
                ),
            ] = None,
            updated_since: Annotated[
                str | None,
                Field(description="Issues changed in the mirror at or after this ISO 8601 time."),
            ] = None,
            text: Annotated[
                str | None,
                Field(description="Case-insensitive substring of the title or body."),
            ] = None,
            ordering: Annotated[
                str | None,
                Field(
                    description="updated_at, created_at, remote_updated_at or id; prefix - "
                    "for descending. Default: -updated_at."
                ),
            ] = None,
            page: Page = 1,
            page_size: PageSize = None,
            agent_id: AgentId = None,
        ) -> ToolResult:
            """Find mirrored issues across trackers (the REST API's issue filters)."""
            return await self._call(
                ctx,
                "search_issues",
                agent_id,
                operations.search_issues,
                connection=connection,
                state=state,
                label=label,
                assignee=assignee,
                sync_status=sync_status,
                updated_since=updated_since,
                search=text,
                ordering=ordering,
                page=page,
                page_size=page_size,
            )

        @server.tool(annotations=READ)
        async def get_issue(
            ctx: Context, issue_id: IssueId, agent_id: AgentId = None
        ) -> ToolResult:
            """Read one issue with its sync state: sync_status, sync_error, the fields still
            waiting to be pushed (pending_push_fields) and its open conflicts."""
            return await self._call(
                ctx, "get_issue", agent_id, operations.get_issue, issue_id=issue_id
            )

        @server.tool(annotations=WRITE)
        async def create_issue(
            ctx: Context,
            *,
            connection: ConnectionId,
            title: Annotated[str, Field(description="The issue's title (not empty).")],
            body: Body = None,
            state: State | None = None,
            labels: Labels = None,
            assignees: Assignees = None,
            milestone: Annotated[str | None, Field(description="Milestone name.")] = None,
            agent_id: AgentId = None,
        ) -> ToolResult:
            """Create an issue; the outbox creates it in the tracker (sync_status `pending`
            until then, then external_number and remote_url are set)."""
            data = _given(
                connection=connection,
                title=title,
                body=body,
                state=state,
                labels=labels,
                assignees=assignees,
                milestone=milestone,
            )
            return await self._call(
                ctx, "create_issue", agent_id, operations.create_issue, data=data
            )

        @server.tool(annotations=WRITE)
        async def update_issue(
            ctx: Context,
            *,
            issue_id: IssueId,
            title: Title = None,
            body: Body = None,
            state: State | None = None,
            labels: Labels = None,
            assignees: Assignees = None,
            milestone: Annotated[
                str | None,
                Field(description="Milestone name; an empty string removes the milestone."),
            ] = None,
            force: Annotated[bool, Field(description=_FORCE_HELP)] = False,
            agent_id: AgentId = None,
        ) -> ToolResult:
            """Change an issue's fields (only those given; labels and assignees replace the
            lists). The change is pushed to the tracker by the outbox. A field with an open
            conflict answers status 409 (code issue_in_conflict, with conflicting_fields and
            conflicts) unless force is true."""
            data = _given(
                title=title,
                body=body,
                state=state,
                labels=labels,
                assignees=assignees,
                milestone=milestone,
            )
            if force:
                data["force"] = True
            return await self._call(
                ctx, "update_issue", agent_id, operations.update_issue, issue_id=issue_id, data=data
            )

        @server.tool(annotations=WRITE)
        async def close_issue(
            ctx: Context, issue_id: IssueId, agent_id: AgentId = None
        ) -> ToolResult:
            """Close an issue (pushed to the tracker by the outbox)."""
            return await self._call(
                ctx, "close_issue", agent_id, operations.close_issue, issue_id=issue_id
            )

        @server.tool(annotations=WRITE)
        async def reopen_issue(
            ctx: Context, issue_id: IssueId, agent_id: AgentId = None
        ) -> ToolResult:
            """Reopen a closed issue (pushed to the tracker by the outbox)."""
            return await self._call(
                ctx, "reopen_issue", agent_id, operations.reopen_issue, issue_id=issue_id
            )

        @server.tool(annotations=READ)
        async def issue_history(
            ctx: Context,
            issue_id: IssueId,
            page: Page = 1,
            page_size: PageSize = None,
            agent_id: AgentId = None,
        ) -> ToolResult:
            """An issue's audit log, newest first: every change either way, with its trigger and
            correlation id (calls through MCP carry `mcp:t<token>:<agent>:…`)."""
            return await self._call(
                ctx,
                "issue_history",
                agent_id,
                operations.issue_history,
                issue_id=issue_id,
                page=page,
                page_size=page_size,
            )

        @server.tool(annotations=READ)
        async def list_conflicts(
            ctx: Context,
            *,
            resolved: Annotated[
                bool | None,
                Field(
                    description="false (default): open conflicts; true: resolved ones; null: all."
                ),
            ] = False,
            connection: OptConnection = None,
            issue_id: Annotated[int | None, Field(description="Only this issue's.")] = None,
            field: Annotated[
                Literal["title", "body", "state", "labels", "assignees", "milestone"] | None,
                Field(description="Only conflicts on this field."),
            ] = None,
            page: Page = 1,
            page_size: PageSize = None,
            agent_id: AgentId = None,
        ) -> ToolResult:
            """Conflicts: both sides changed a field concurrently. Each has base_value,
            local_value and remote_value; settle one with resolve_conflict."""
            return await self._call(
                ctx,
                "list_conflicts",
                agent_id,
                operations.list_conflicts,
                resolved=resolved,
                connection=connection,
                issue=issue_id,
                field=field,
                page=page,
                page_size=page_size,
            )

        @server.tool(annotations=WRITE)
        async def resolve_conflict(
            ctx: Context,
            conflict_id: Annotated[int, Field(description="The conflict's id (list_conflicts).")],
            strategy: Annotated[
                Literal["local_wins", "remote_wins", "merge"],
                Field(
                    description="local_wins: push the local value; remote_wins: keep the "
                    "tracker's; merge: use values[field]."
                ),
            ],
            values: Annotated[
                dict[str, Any] | None,
                Field(
                    description="For merge: the merged value under the conflict's field "
                    'name, e.g. {"title": "…"} or {"labels": ["bug", "ui"]}.'
                ),
            ] = None,
            agent_id: AgentId = None,
        ) -> ToolResult:
            """Settle a conflict; a local or merged value is pushed to the tracker. Answers the
            resolved conflict and the issue."""
            return await self._call(
                ctx,
                "resolve_conflict",
                agent_id,
                operations.resolve_conflict,
                conflict_id=conflict_id,
                data=_given(strategy=strategy, values=values),
            )

        @server.tool(annotations=READ)
        async def sync_status(
            ctx: Context, connection: OptConnection = None, agent_id: AgentId = None
        ) -> ToolResult:
            """Sync health per connection you may see: pending_outbox, failed_outbox,
            open_conflicts, last_webhook_at, last_polled_at, webhook_healthy."""
            return await self._call(
                ctx, "sync_status", agent_id, operations.sync_status, connection=connection
            )

        @server.tool(annotations=WRITE)
        async def sync_now(
            ctx: Context,
            connection: ConnectionId,
            full: Annotated[
                bool, Field(description="A full reconciliation instead of an incremental poll.")
            ] = False,
            agent_id: AgentId = None,
        ) -> ToolResult:
            """Queue a sync of a connection now; a worker runs it after this answer."""
            return await self._call(
                ctx, "sync_now", agent_id, operations.sync_now, connection=connection, full=full
            )

    # --- resources -----------------------------------------------------------------------------

    def _register_resources(self) -> None:
        server = self.server

        @server.resource(
            "issue://{issue_id}",
            name="issue",
            description="One mirrored issue as JSON, with its sync state and open conflicts.",
            mime_type="application/json",
        )
        async def issue_resource(issue_id: str, ctx: Context) -> str:
            return await self._read(
                ctx, "read issue", operations.get_issue, issue_id=_int(issue_id)
            )

        @server.resource(
            "connection://{connection_id}",
            name="connection",
            description="What a connection syncs: its settings (no secrets), sync health and "
            "its mirrored issues (newest change first).",
            mime_type="application/json",
        )
        async def connection_resource(connection_id: str, ctx: Context) -> str:
            return await self._read(
                ctx,
                "read connection",
                operations.connection_overview,
                connection_id=_int(connection_id),
            )


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ResourceNotFoundError(
            json.dumps({"status": 404, "error": {"detail": "Not found."}})
        ) from None

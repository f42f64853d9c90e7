"""Every tool and resource over both transports, with the API's scope, words and audit."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
import requests
from mcp import MCPError

from issues.models import ApiToken, Issue, OutboxEntry, SyncLog
from tests.api.conftest import World
from tests.mcp.conftest import TOOLS, http_client, in_thread, stdio_client

pytestmark = pytest.mark.postgres


@pytest.fixture
def world(transactional_db: Any) -> World:
    return World()


def client_for(transport: str, world: World, key: str, request: Any, agent: str | None = None):
    if transport == "stdio":
        return stdio_client(key, *(["--agent-id", agent] if agent else []))
    return http_client(request.getfixturevalue("mcp_http"), key, agent)


def data(result: Any) -> Any:
    """The structured content, checked against the text content the model reads."""
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_tools_over_the_protocol(transport, world, request):
    """List the tools, then call each one as an agent would; the changes are audited."""
    alpha, issue = world.alpha, world.alpha_issue
    token = ApiToken.objects.get(name="agent")

    async def session() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with client_for(transport, world, world.agent_key, request, agent="tester") as mcp:
            listed = await mcp.list_tools()
            seen["tools"] = {tool.name: tool for tool in listed.tools}
            templates = await mcp.list_resource_templates()
            seen["templates"] = {t.uri_template for t in templates.resource_templates}

            async def call(name: str, **arguments: Any) -> Any:
                result = await mcp.call_tool(name, arguments)
                assert not result.is_error, (name, result.content)
                return data(result)

            seen["search"] = await call("search_issues", connection=alpha.pk, label="bug")
            seen["text"] = await call("search_issues", text="issue 2")
            seen["get"] = await call("get_issue", issue_id=issue.pk)
            seen["create"] = await call(
                "create_issue", connection=alpha.pk, title="From MCP", labels=["bug"]
            )
            seen["update"] = await call(
                "update_issue", issue_id=issue.pk, title="Retitled", assignees=["carol"]
            )
            seen["close"] = await call("close_issue", issue_id=issue.pk)
            seen["reopen"] = await call("reopen_issue", issue_id=issue.pk)
            seen["history"] = await call("issue_history", issue_id=issue.pk)
            seen["conflicts"] = await call("list_conflicts", connection=alpha.pk)
            seen["resolve"] = await call(
                "resolve_conflict",
                conflict_id=world.alpha_conflict.pk,
                strategy="merge",
                values={"body": "merged"},
            )
            seen["own_agent"] = await call(
                "create_issue", connection=alpha.pk, title="Named", agent_id="other agent!"
            )
            seen["status"] = await call("sync_status")
            seen["sync"] = await call("sync_now", connection=alpha.pk)
            seen["issue_resource"] = json.loads(
                (await mcp.read_resource(f"issue://{issue.pk}")).contents[0].text
            )
            seen["connection_resource"] = json.loads(
                (await mcp.read_resource(f"connection://{alpha.pk}")).contents[0].text
            )
        return seen

    seen = anyio.run(session)

    assert set(seen["tools"]) == TOOLS
    update = seen["tools"]["update_issue"].input_schema
    assert update["required"] == ["issue_id"]
    assert "force" in update["properties"] and update["properties"]["force"]["description"]
    assert update["properties"]["state"]["anyOf"][0]["enum"] == ["open", "closed"]
    assert seen["tools"]["create_issue"].input_schema["required"] == ["connection", "title"]
    assert seen["templates"] == {"issue://{issue_id}", "connection://{connection_id}"}

    assert [row["id"] for row in seen["search"]["results"]] == [issue.pk]
    assert seen["search"]["count"] == 1
    assert [row["id"] for row in seen["text"]["results"]] == [world.beta_issue.pk]
    got = seen["get"]
    assert (got["id"], got["title"], got["sync_status"]) == (issue.pk, "Issue 1", "synced")
    assert [c["id"] for c in got["open_conflicts"]] == [world.alpha_conflict.pk]
    created = seen["create"]
    assert (created["title"], created["labels"], created["sync_status"]) == (
        "From MCP",
        ["bug"],
        "pending",
    )
    assert (seen["update"]["title"], seen["update"]["assignees"]) == ("Retitled", ["carol"])
    assert seen["update"]["pending_push_fields"] == ["assignees", "title"]
    assert (seen["close"]["state"], seen["reopen"]["state"]) == ("closed", "open")
    assert [row["action"] for row in seen["history"]["results"]][:3] == [
        "reopen",
        "close",
        "update",
    ]
    assert [c["id"] for c in seen["conflicts"]["results"]] == [world.alpha_conflict.pk]
    assert seen["resolve"]["conflict"]["resolution"] == "merge"
    assert seen["resolve"]["issue"]["body"] == "merged"
    assert {row["name"] for row in seen["status"]["results"]} == {"alpha", "beta"}
    assert seen["sync"] == {"connection": alpha.pk, "full": False, "status": "queued"}
    assert seen["issue_resource"]["title"] == "Retitled"
    overview = seen["connection_resource"]
    assert overview["connection"]["name"] == "alpha" and "api_token" not in overview["connection"]
    assert {row["id"] for row in overview["issues"]} == {
        issue.pk,
        created["id"],
        seen["own_agent"]["id"],
    }
    assert overview["issue_count"] == 3

    # Audit: every change is in the sync log under a correlation id naming token and agent,
    # and queued for the tracker under the same id.
    prefix = f"mcp:t{token.pk}:tester:"
    logs = SyncLog.objects.filter(issue_id__in=[issue.pk, created["id"]])
    assert logs.count() == 5  # create, update, close, reopen, resolve
    assert all(log.correlation_id.startswith(prefix) for log in logs)
    assert len({log.correlation_id for log in logs}) == 5
    # An agent_id argument names the agent of that call (cleaned to the id's alphabet).
    named = SyncLog.objects.get(issue_id=seen["own_agent"]["id"])
    assert named.correlation_id.startswith(f"mcp:t{token.pk}:other_agent:")
    queued = OutboxEntry.objects.filter(issue=issue)
    assert queued.exists() and all(e.correlation_id.startswith(prefix) for e in queued)


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_errors_are_tool_errors_with_the_api_words(transport, world, request):
    issue = world.alpha_issue  # open conflict on "body"

    async def session() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with client_for(transport, world, world.agent_key, request) as mcp:

            async def fail(name: str, **arguments: Any) -> Any:
                result = await mcp.call_tool(name, arguments)
                assert result.is_error, (name, result.content)
                return data(result)

            out["blank"] = await fail("create_issue", connection=world.alpha.pk, title=" ")
            out["too_long"] = await fail("update_issue", issue_id=issue.pk, title="x" * 1001)
            out["missing"] = await fail("get_issue", issue_id=10**9)
            out["since"] = await fail("search_issues", updated_since="yesterday")
            out["conflict"] = await fail("update_issue", issue_id=issue.pk, body="mine")
            forced = await mcp.call_tool(
                "update_issue", {"issue_id": issue.pk, "body": "mine", "force": True}
            )
            out["forced"] = data(forced)
            out["again"] = await fail(
                "resolve_conflict", conflict_id=world.alpha_conflict.pk, strategy="remote_wins"
            )
            out["merge"] = await fail(
                "resolve_conflict", conflict_id=world.beta_conflict.pk, strategy="merge"
            )
        return out

    out = anyio.run(session)
    assert out["blank"] == {"status": 400, "error": {"title": ["This field may not be blank."]}}
    assert out["too_long"]["status"] == 400
    assert out["too_long"]["error"]["title"] == [
        "Ensure this field has no more than 1000 characters."
    ]
    assert out["missing"] == {"status": 404, "error": {"detail": "Not found."}}
    assert out["since"]["status"] == 400 and "updated_since" in out["since"]["error"]
    conflict = out["conflict"]
    assert conflict["status"] == 409
    assert conflict["error"]["code"] == "issue_in_conflict"
    assert conflict["error"]["conflicting_fields"] == ["body"]
    assert conflict["error"]["conflicts"] == [world.alpha_conflict.pk]
    assert "force: true" in conflict["error"]["detail"]
    assert out["forced"]["body"] == "mine" and out["forced"]["open_conflicts"] == []
    assert out["again"]["error"] == {
        "detail": "The conflict is already resolved.",
        "code": "already_resolved",
    }
    assert out["merge"]["error"] == {
        "values": {"body": ["A merged value for this field is required."]}
    }


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_a_scoped_token_sees_its_connections_only(transport, world, request):
    beta_issue = world.beta_issue

    async def session() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with client_for(transport, world, world.scoped_key, request) as mcp:
            out["search"] = data(await mcp.call_tool("search_issues", {}))
            out["status"] = data(await mcp.call_tool("sync_status", {}))
            out["conflicts"] = data(await mcp.call_tool("list_conflicts", {}))
            for name, args in {
                "get": ("get_issue", {"issue_id": beta_issue.pk}),
                "update": ("update_issue", {"issue_id": beta_issue.pk, "title": "x"}),
                "create": ("create_issue", {"connection": world.beta.pk, "title": "x"}),
                "resolve": (
                    "resolve_conflict",
                    {"conflict_id": world.beta_conflict.pk, "strategy": "remote_wins"},
                ),
                "sync": ("sync_now", {"connection": world.beta.pk}),
            }.items():
                result = await mcp.call_tool(*args)
                assert result.is_error, name
                out[name] = data(result)
            for uri in (f"issue://{beta_issue.pk}", f"connection://{world.beta.pk}"):
                with pytest.raises(MCPError, match="Not found"):
                    await mcp.read_resource(uri)
        return out

    out = anyio.run(session)
    assert [row["id"] for row in out["search"]["results"]] == [world.alpha_issue.pk]
    assert [row["name"] for row in out["status"]["results"]] == ["alpha"]
    assert [row["id"] for row in out["conflicts"]["results"]] == [world.alpha_conflict.pk]
    for name in ("get", "update", "resolve", "sync"):
        assert out[name] == {"status": 404, "error": {"detail": "Not found."}}, name
    assert out["create"] == {
        "status": 400,
        "error": {"connection": ["No connection with this id."]},
    }
    assert Issue.objects.get(pk=beta_issue.pk).title == "Issue 2"


def test_a_token_revoked_during_a_stdio_session_sees_nothing(world):
    async def session() -> tuple[Any, Any]:
        async with stdio_client(world.agent_key) as mcp:
            before = await mcp.call_tool("search_issues", {})
            await in_thread(lambda: ApiToken.objects.filter(name="agent").update(revoked=True))
            after = await mcp.call_tool("search_issues", {})
        return before, after

    before, after = anyio.run(session)
    assert not before.is_error and data(before)["count"] == 2
    assert after.is_error and data(after) == {"status": 401, "error": {"detail": "Invalid token."}}


def test_the_stdio_server_refuses_to_start_without_a_valid_token(world):
    import subprocess

    from tests.mcp.conftest import child_env, manage

    for key in ("", "sx_nope"):
        done = subprocess.run(
            manage("--token", key),
            check=False,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode != 0
        assert ("required" if not key else "Invalid token.") in done.stderr


def test_http_refuses_a_missing_or_revoked_token_with_401(world, mcp_http):
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Accept": "application/json, text/event-stream"}
    missing = requests.post(mcp_http, json=ping, headers=headers)
    assert missing.status_code == 401
    assert missing.json() == {"detail": "Authentication credentials were not provided."}
    ApiToken.objects.filter(name="agent").update(revoked=True)
    revoked = requests.post(
        mcp_http, json=ping, headers={**headers, "Authorization": f"Bearer {world.agent_key}"}
    )
    assert revoked.status_code == 401 and revoked.json() == {"detail": "Invalid token."}
    assert revoked.headers["www-authenticate"].startswith("Bearer")

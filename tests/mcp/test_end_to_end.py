"""MCP against a real fake Gitea on loopback: an agent's update reaches the tracker through the
outbox, and a conflict made by both sides is found and resolved through MCP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from django.contrib.auth import get_user_model

from integrations.fake_trackers.gitea import FakeGitea
from integrations.models import Connection
from issues.models import Issue, SyncLog
from issues.outbox import drain
from issues.polling import sync_connection
from issues.services.tokens import api_token_create
from tests.mcp.conftest import http_client, in_thread, stdio_client

pytestmark = pytest.mark.postgres


class Tracker:
    def __init__(self, fake: FakeGitea, connection: Connection, key: str, token_id: int) -> None:
        self.fake = fake
        self.token_id = token_id
        self.connection = connection
        self.key = key
        fake.webhook_sink = lambda hook: None  # webhooks are not delivered: polls decide

    def mirrored(self, number: int) -> Issue:
        return Issue.objects.get(connection=self.connection, external_number=str(number))


@pytest.fixture
def tracker(transactional_db: Any) -> Iterator[Tracker]:
    fake = FakeGitea(repository="acme/widgets", token="gitea-token", webhook_secret="s")
    fake.start()
    connection = Connection.objects.create(
        name="acme",
        provider="gitea",
        base_url=fake.url,
        repository="acme/widgets",
        api_token="gitea-token",
        webhook_secret="s",
    )
    token, key = api_token_create(
        user=get_user_model().objects.create_user("agent"), all_connections=True
    )
    try:
        yield Tracker(fake, connection, key, token.pk)
    finally:
        fake.stop()


def test_an_update_through_mcp_reaches_the_tracker(tracker, mcp_http):
    remote = tracker.fake.seed_issue(title="Crash on save", labels=["bug"])
    tracker.fake.seed_issue(title="Other", labels=["ui"])  # makes the label known
    sync_connection(connection_id=tracker.connection.pk, full=True)
    issue = tracker.mirrored(remote.number)

    async def update() -> Any:
        async with http_client(mcp_http, tracker.key, agent="e2e-agent") as mcp:
            result = await mcp.call_tool(
                "update_issue",
                {"issue_id": issue.pk, "title": "Crash on save (macOS)", "labels": ["ui"]},
            )
            assert not result.is_error, result.content
            return result.structured_content

    updated = anyio.run(update)
    assert updated["sync_status"] == "pending"

    assert drain().pushed == 1
    pushed = tracker.fake.issues[remote.number]
    assert (pushed.title, pushed.labels) == ("Crash on save (macOS)", ["ui"])
    issue.refresh_from_db()
    assert issue.sync_status == "synced"
    # The change and the push that acknowledged it carry the MCP call's correlation id.
    logs = SyncLog.objects.filter(issue=issue, direction="outbound")
    assert logs.count() == 2
    ids = {log.correlation_id for log in logs}
    assert len(ids) == 1 and ids.pop().startswith(f"mcp:t{tracker.token_id}:e2e-agent:")


def test_a_conflict_made_by_both_sides_is_resolved_through_mcp(tracker):
    remote = tracker.fake.seed_issue(title="Crash on save")
    sync_connection(connection_id=tracker.connection.pk, full=True)
    issue = tracker.mirrored(remote.number)

    def tracker_edits_concurrently() -> None:
        tracker.fake.advance_clock(5)
        tracker.fake.edit_issue(remote.number, notify=False, title="remote title")
        sync_connection(connection_id=tracker.connection.pk, full=True)

    async def session() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with stdio_client(tracker.key, "--agent-id", "desk") as mcp:
            local = await mcp.call_tool(
                "update_issue", {"issue_id": issue.pk, "title": "local title"}
            )
            assert not local.is_error, local.content
            # The tracker changed the same field before the push: the poll finds the clash.
            await in_thread(tracker_edits_concurrently)
            got = await mcp.call_tool("get_issue", {"issue_id": issue.pk})
            out["get"] = got.structured_content
            blocked = await mcp.call_tool("update_issue", {"issue_id": issue.pk, "title": "third"})
            out["blocked"] = (blocked.is_error, blocked.structured_content)
            listed = await mcp.call_tool("list_conflicts", {})
            out["conflicts"] = listed.structured_content["results"]
            resolved = await mcp.call_tool(
                "resolve_conflict",
                {"conflict_id": out["conflicts"][0]["id"], "strategy": "local_wins"},
            )
            assert not resolved.is_error, resolved.content
            out["resolved"] = resolved.structured_content
            status = await mcp.call_tool("sync_status", {"connection": tracker.connection.pk})
            out["status"] = status.structured_content["results"][0]
            resource = await mcp.read_resource(f"issue://{issue.pk}")
            out["resource"] = json.loads(resource.contents[0].text)
        return out

    out = anyio.run(session)
    assert (out["get"]["sync_status"], out["get"]["title"]) == ("conflict", "remote title")
    assert [
        (c["field"], c["local_value"], c["remote_value"]) for c in out["get"]["open_conflicts"]
    ] == [("title", "local title", "remote title")]
    is_error, body = out["blocked"]
    assert is_error and body["status"] == 409 and body["error"]["conflicting_fields"] == ["title"]
    assert [c["field"] for c in out["conflicts"]] == ["title"]
    assert out["resolved"]["conflict"]["resolution"] == "local_wins"
    assert out["resolved"]["issue"]["title"] == "local title"
    assert out["status"]["open_conflicts"] == 0
    assert out["resource"]["open_conflicts"] == []

    drain()
    assert tracker.fake.issues[remote.number].title == "local title"
    issue.refresh_from_db()
    assert (issue.title, issue.sync_status) == ("local title", "synced")
    resolve_log = SyncLog.objects.get(issue=issue, action="resolve")
    assert ":desk:" in resolve_log.correlation_id

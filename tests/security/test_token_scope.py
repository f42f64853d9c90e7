"""SPEC §8: a token scoped to connections sees and changes those only — also after they are
deleted (then it sees nothing). An unscoped token is an explicit choice, never an empty list.

Issue 11 finding 1 (repro): once all of a scoped token's connections were deleted (or removed
from it in the admin), `ids or None` made it all-access: it PATCHed another connection's issue
(200), triggered its sync (202), and a staff token could then create connections.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from integrations.models import Connection
from issues.models import ApiToken, hash_token
from issues.services.tokens import api_token_create
from tests.api.conftest import World, client_with, connection_write_permissions


def _orphan(world: World) -> str:
    """A staff token (holding the connection permissions) scoped to alpha, whose connection
    is then deleted."""
    world.staff.user_permissions.add(*connection_write_permissions())
    _, key = api_token_create(user=world.staff, name="alpha", connection_ids=[world.alpha.pk])
    world.alpha.delete()
    return key


def test_a_token_whose_connections_were_deleted_sees_nothing(world: World) -> None:
    client = client_with(_orphan(world))
    for path in (
        "/api/v1/issues/",
        "/api/v1/sync/configs/",
        "/api/v1/sync/status/",
        "/api/v1/sync/history/",
        "/api/v1/sync/mappings/",
        "/api/v1/sync/conflicts/",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        body = response.json()
        rows = body["results"] if isinstance(body, dict) else body
        assert rows == [], path
    assert client.get(f"/api/v1/issues/{world.beta_issue.pk}/").status_code == 404


def test_a_token_whose_connections_were_deleted_changes_nothing(world: World) -> None:
    client = client_with(_orphan(world))
    beta_title = world.beta_issue.title
    patched = client.patch(
        f"/api/v1/issues/{world.beta_issue.pk}/", {"title": "hijacked"}, format="json"
    )
    assert patched.status_code == 404
    assert client.post(f"/api/v1/sync/configs/{world.beta.pk}/sync/").status_code == 404
    assert client.delete(f"/api/v1/sync/configs/{world.beta.pk}/").status_code == 404
    created = client.post(
        "/api/v1/sync/configs/",
        {
            "name": "new",
            "provider": "gitea",
            "base_url": "http://127.0.0.1:9",
            "repository": "a/b",
            "api_token": "t",
        },
        format="json",
    )
    assert created.status_code == 403
    issue = client.post(
        "/api/v1/issues/", {"connection": world.beta.pk, "title": "x"}, format="json"
    )
    assert issue.status_code == 400
    world.beta_issue.refresh_from_db()
    assert world.beta_issue.title == beta_title


def test_a_token_whose_connections_were_removed_in_the_admin_sees_nothing(world: World) -> None:
    token, key = api_token_create(user=world.agent, connection_ids=[world.alpha.pk])
    token.connections.clear()  # what the admin's filter_horizontal does
    client = client_with(key)
    assert client.get("/api/v1/issues/").json()["results"] == []
    assert client.get(f"/api/v1/issues/{world.alpha_issue.pk}/").status_code == 404


def test_an_unscoped_token_is_an_explicit_flag(world: World) -> None:
    token, key = api_token_create(user=world.agent, all_connections=True)
    assert token.all_connections and not token.connections.exists()
    assert len(client_with(key).get("/api/v1/issues/").json()["results"]) == 2
    # Without the flag, no connections means no access: never all of them.
    _, empty = api_token_create(user=world.agent)
    assert client_with(empty).get("/api/v1/issues/").json()["results"] == []
    with pytest.raises(ValueError):
        api_token_create(user=world.agent, connection_ids=[world.alpha.pk], all_connections=True)


@pytest.mark.django_db
def test_create_api_token_records_the_choice() -> None:
    out = StringIO()
    call_command("create_api_token", "agent-x", "--all-connections", stdout=out)
    token = ApiToken.objects.get(key_hash=hash_token(out.getvalue().strip().splitlines()[-1]))
    assert token.all_connections
    assert "every connection" in out.getvalue()


def test_create_api_token_scoped_is_not_unscoped(world: World) -> None:
    out = StringIO()
    call_command("create_api_token", "agent-y", "--connection", str(world.alpha.pk), stdout=out)
    token = ApiToken.objects.get(key_hash=hash_token(out.getvalue().strip().splitlines()[-1]))
    assert not token.all_connections
    world.alpha.delete()
    assert (
        client_with(out.getvalue().strip().splitlines()[-1])
        .get("/api/v1/issues/")
        .json()["results"]
        == []
    )


def test_the_admin_shows_whether_a_token_is_unscoped(world: World, admin_client: Any) -> None:
    scoped, _ = api_token_create(user=world.agent, connection_ids=[world.alpha.pk])
    api_token_create(user=world.agent, all_connections=True)
    page = admin_client.get("/admin/issues/apitoken/").content.decode()
    assert "every connection (unscoped)" in page
    assert "alpha" in page
    change = admin_client.get(f"/admin/issues/apitoken/{scoped.pk}/change/").content.decode()
    assert "All connections" in change  # the flag, read-only


@pytest.mark.django_db(transaction=True)
def test_the_migration_fails_closed_for_existing_empty_scope_tokens() -> None:
    """Before the flag, a token without connections was all-access, including one whose
    connections had been deleted. The upgrade cannot tell the two apart, so it widens nothing:
    an empty-scope token sees nothing until an admin makes it unscoped explicitly."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    # Only the issues app goes back; the other apps stay where they are (so the connection row
    # is made with today's columns).
    latest = executor.loader.graph.leaf_nodes()
    before = [("issues", "0004_remotetombstone")]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    user = old.get_model("auth", "User").objects.create(username="old-agent")
    conn = Connection.objects.create(
        name="old", provider="gitea", base_url="http://127.0.0.1:9", repository="a/b"
    )
    Token = old.get_model("issues", "ApiToken")
    empty = Token.objects.create(user=user, key_hash="a" * 64, prefix="sx_a")
    scoped = Token.objects.create(user=user, key_hash="b" * 64, prefix="sx_b")
    scoped.connections.add(conn.pk)
    executor = MigrationExecutor(connection)
    executor.migrate(latest)
    assert ApiToken.objects.get(pk=empty.pk).all_connections is False
    assert ApiToken.objects.get(pk=scoped.pk).all_connections is False
    # Back to every app's latest state: migrating issues back also unapplied the apps that
    # depend on it (notifications), which the tests after this one need.
    MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())

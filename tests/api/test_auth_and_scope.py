"""Every endpoint refuses missing and wrong tokens, and a scoped token sees and changes only
its own connections: anything else is a 404, exactly like an id that does not exist."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.providers.base import TransientError
from issues.models import ApiToken, Conflict, Issue, hash_token
from tests.api.conftest import World, client_with, ids

# (method, path template, body): {issue}, {connection}, {conflict} are filled per test.
ENDPOINTS = [
    ("get", "/api/v1/issues/", None),
    ("post", "/api/v1/issues/", {"connection": "{connection}", "title": "New"}),
    ("get", "/api/v1/issues/{issue}/", None),
    ("patch", "/api/v1/issues/{issue}/", {"title": "Changed"}),
    ("post", "/api/v1/issues/{issue}/close/", None),
    ("post", "/api/v1/issues/{issue}/reopen/", None),
    ("get", "/api/v1/issues/{issue}/history/", None),
    ("post", "/api/v1/issues/{issue}/refresh/", None),
    ("get", "/api/v1/sync/configs/", None),
    (
        "post",
        "/api/v1/sync/configs/",
        {
            "name": "n",
            "provider": "gitea",
            "base_url": "https://git.example.com",
            "repository": "a/b",
        },
    ),
    ("get", "/api/v1/sync/configs/{connection}/", None),
    (
        "put",
        "/api/v1/sync/configs/{connection}/",
        {
            "name": "n",
            "provider": "gitea",
            "base_url": "https://git.example.com",
            "repository": "a/b",
            "api_token": "a-new-token",
        },
    ),
    ("patch", "/api/v1/sync/configs/{connection}/", {"enabled": False}),
    ("delete", "/api/v1/sync/configs/{connection}/", None),
    ("post", "/api/v1/sync/configs/{connection}/sync/", None),
    ("get", "/api/v1/sync/status/", None),
    ("get", "/api/v1/sync/history/", None),
    ("get", "/api/v1/sync/mappings/", None),
    ("get", "/api/v1/sync/conflicts/", None),
    ("get", "/api/v1/sync/conflicts/{conflict}/", None),
    ("post", "/api/v1/sync/conflicts/{conflict}/resolve/", {"strategy": "remote_wins"}),
]
OBJECT_ENDPOINTS = [e for e in ENDPOINTS if "{" in e[1]]
LIST_ENDPOINTS = [e for e in ENDPOINTS if e[0] == "get" and "{" not in e[1]]


def _fill(template, *, issue, connection, conflict):
    return template.format(issue=issue, connection=connection, conflict=conflict)


def _body(body, connection):
    if body is None:
        return None
    return {k: (connection if v == "{connection}" else v) for k, v in body.items()}


def _call(client, method, path, body):
    return getattr(client, method)(path, body, format="json")


def _target(world: World, which: str):
    if which == "alpha":
        return world.alpha_issue.pk, world.alpha.pk, world.alpha_conflict.pk
    return world.beta_issue.pk, world.beta.pk, world.beta_conflict.pk


def _name(endpoint):
    return f"{endpoint[0].upper()} {endpoint[1]}"


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_name)
def test_every_endpoint_answers_401_without_credentials(world, endpoint):
    method, template, body = endpoint
    issue, connection, conflict = _target(world, "alpha")
    path = _fill(template, issue=issue, connection=connection, conflict=conflict)
    response = _call(client_with(None), method, path, _body(body, connection))
    assert response.status_code == 401, response.content
    assert response.json()["detail"] == "Authentication credentials were not provided."
    assert response.headers["WWW-Authenticate"].startswith("Token")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_name)
def test_every_endpoint_answers_401_for_a_wrong_token(world, endpoint):
    method, template, body = endpoint
    issue, connection, conflict = _target(world, "alpha")
    path = _fill(template, issue=issue, connection=connection, conflict=conflict)
    response = _call(client_with("sx_not-a-real-key"), method, path, _body(body, connection))
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."
    assert Issue.objects.count() == 2 and not Conflict.objects.filter(resolved=True).exists()


@pytest.mark.parametrize("endpoint", OBJECT_ENDPOINTS, ids=_name)
def test_a_scoped_token_gets_404_for_objects_of_other_connections(world, endpoint):
    method, template, body = endpoint
    issue, connection, conflict = _target(world, "beta")
    path = _fill(template, issue=issue, connection=connection, conflict=conflict)
    before = (world.beta_issue.snapshot(), Conflict.objects.get(pk=conflict).resolved)
    response = _call(world.client(world.scoped_key), method, path, _body(body, connection))
    assert response.status_code == 404, response.content
    world.beta_issue.refresh_from_db()
    world.beta.refresh_from_db()
    assert (world.beta_issue.snapshot(), Conflict.objects.get(pk=conflict).resolved) == before
    assert world.beta.enabled


class _DownTracker:
    def get_issue(self, number):
        raise TransientError("tracker down")

    def close(self):
        pass


@pytest.mark.parametrize("endpoint", OBJECT_ENDPOINTS, ids=_name)
def test_a_scoped_token_reaches_objects_of_its_own_connection(world, endpoint, monkeypatch):
    monkeypatch.setattr("issues.api.views.client_for", lambda connection: _DownTracker())
    method, template, body = endpoint
    issue, connection, conflict = _target(world, "alpha")
    path = _fill(template, issue=issue, connection=connection, conflict=conflict)
    response = _call(world.client(world.scoped_key), method, path, _body(body, connection))
    # Refresh reaches the (down) tracker: its 502 proves the scope let it through.
    assert response.status_code in (200, 202, 204, 502), response.content


def test_a_scoped_token_lists_only_its_connections(world):
    client = world.client(world.scoped_key)
    issue_rows = client.get("/api/v1/issues/").json()["results"]
    assert ids(issue_rows) == [world.alpha_issue.pk]
    assert ids(client.get("/api/v1/sync/configs/").json()["results"]) == [world.alpha.pk]
    assert ids(client.get("/api/v1/sync/status/").json()["results"]) == [world.alpha.pk]
    assert ids(client.get("/api/v1/sync/mappings/").json()["results"]) == [world.alpha_issue.pk]
    assert ids(client.get("/api/v1/sync/conflicts/").json()["results"]) == [world.alpha_conflict.pk]
    # Even when asked for the other connection by filter, nothing of it shows.
    other = client.get(f"/api/v1/issues/?connection={world.beta.pk}").json()
    assert other["count"] == 0


def test_a_scoped_token_sees_only_its_sync_runs(world):
    from issues.models import SyncRun

    own = SyncRun.objects.create(connection=world.alpha, kind="poll")
    SyncRun.objects.create(connection=world.beta, kind="poll")
    rows = world.client(world.scoped_key).get("/api/v1/sync/history/").json()["results"]
    assert ids(rows) == [own.pk]


@pytest.mark.parametrize("endpoint", LIST_ENDPOINTS, ids=_name)
def test_an_unscoped_token_lists_every_connection(world, endpoint):
    from issues.models import SyncRun

    SyncRun.objects.create(connection=world.alpha, kind="poll")
    SyncRun.objects.create(connection=world.beta, kind="poll")
    response = world.client().get(endpoint[1])
    assert response.status_code == 200
    assert response.json()["count"] == 2


def test_a_scoped_token_cannot_create_an_issue_in_another_connection(world):
    response = world.client(world.scoped_key).post(
        "/api/v1/issues/", {"connection": world.beta.pk, "title": "sneaky"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"connection": ["No connection with this id."]}
    assert not Issue.objects.filter(title="sneaky").exists()


def test_a_scoped_staff_token_cannot_create_connections(world):
    response = world.client(world.scoped_key).post(
        "/api/v1/sync/configs/",
        {
            "name": "new",
            "provider": "gitea",
            "base_url": "https://git.example.com",
            "repository": "a/b",
        },
        format="json",
    )
    assert response.status_code == 403
    assert "scoped" in response.json()["detail"]


def test_token_and_bearer_schemes_both_authenticate(world):
    for scheme in ("Token", "Bearer", "bearer"):
        response = client_with(world.agent_key, scheme).get("/api/v1/issues/")
        assert response.status_code == 200, scheme


def test_a_malformed_authorization_header_is_401(world):
    client = client_with(None)
    client.credentials(HTTP_AUTHORIZATION="Bearer")
    assert client.get("/api/v1/issues/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.agent_key} extra")
    assert client.get("/api/v1/issues/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Bearer " + "x" * 500)
    assert client.get("/api/v1/issues/").status_code == 401


def test_a_revoked_token_is_refused(world):
    ApiToken.objects.filter(key_hash=hash_token(world.agent_key)).update(revoked=True)
    response = world.client().get("/api/v1/issues/")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."


def test_an_inactive_users_token_is_refused(world):
    world.agent.is_active = False
    world.agent.save()
    assert world.client().get("/api/v1/issues/").status_code == 401


def test_last_used_at_is_written_at_most_once_a_minute(world, django_assert_num_queries):
    token = ApiToken.objects.get(key_hash=hash_token(world.agent_key))
    assert token.last_used_at is None
    client = world.client()
    client.get("/api/v1/sync/status/")
    token.refresh_from_db()
    first_use = token.last_used_at
    assert first_use is not None
    client.get("/api/v1/sync/status/")
    token.refresh_from_db()
    assert token.last_used_at == first_use  # within the minute: not rewritten
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first_use - timedelta(minutes=2))
    client.get("/api/v1/sync/status/")
    token.refresh_from_db()
    assert token.last_used_at > first_use - timedelta(minutes=1)
    assert token.last_used_at <= timezone.now()


def test_only_holders_of_the_model_permissions_write_connections_but_any_token_reads_them(world):
    agent = world.client()
    assert agent.get(f"/api/v1/sync/configs/{world.alpha.pk}/").status_code == 200
    for method, body in (
        ("patch", {"enabled": False}),
        ("delete", None),
        (
            "put",
            {
                "name": "x",
                "provider": "gitea",
                "base_url": "https://x.example.com",
                "repository": "a/b",
            },
        ),
    ):
        response = getattr(agent, method)(
            f"/api/v1/sync/configs/{world.alpha.pk}/", body, format="json"
        )
        assert response.status_code == 403, method
        assert "permission" in response.json()["detail"]
    response = agent.post(
        "/api/v1/sync/configs/",
        {
            "name": "x",
            "provider": "gitea",
            "base_url": "https://x.example.com",
            "repository": "a/b",
        },
        format="json",
    )
    assert response.status_code == 403
    world.alpha.refresh_from_db()
    assert world.alpha.enabled and world.alpha.name == "alpha"

"""SPEC §6/§8: connection writes need the model permissions (add/change/delete connection),
in the API as in the admin; changing base_url, provider or repository needs the api_token in
the same request, so a stored token is never sent to a new address.

Issue 11 finding 2 (repro): a staff user without permissions (403 on the admin's connection
pages) PATCHed base_url through the API, and the admin form kept the stored token when
base_url changed.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from integrations.models import Connection
from issues.services.tokens import api_token_create
from tests.api.conftest import World, client_with, connection_write_permissions

NEW_URL = "http://127.0.0.1:8"


def _staff_without_permissions(world: World) -> str:
    _, key = api_token_create(user=world.staff, all_connections=True)
    world.staff.user_permissions.clear()
    return key


def test_staff_without_the_model_permissions_cannot_write_connections(world: World) -> None:
    client = client_with(_staff_without_permissions(world))
    url = f"/api/v1/sync/configs/{world.alpha.pk}/"
    moved = client.patch(url, {"base_url": NEW_URL, "api_token": "x"}, format="json")
    assert moved.status_code == 403
    assert client.delete(url).status_code == 403
    created = client.post(
        "/api/v1/sync/configs/",
        {"name": "n", "provider": "gitea", "base_url": NEW_URL, "repository": "a/b"},
        format="json",
    )
    assert created.status_code == 403
    world.alpha.refresh_from_db()
    assert world.alpha.base_url != NEW_URL
    assert client.get(url).status_code == 200  # reading stays open to the token's scope


@pytest.mark.parametrize(
    ("permission", "method", "body"),
    [
        ("change_connection", "patch", {"enabled": False}),
        ("delete_connection", "delete", None),
    ],
)
def test_each_write_needs_its_own_permission(
    world: World, permission: str, method: str, body: Any
) -> None:
    key = _staff_without_permissions(world)
    url = f"/api/v1/sync/configs/{world.alpha.pk}/"
    assert getattr(client_with(key), method)(url, body, format="json").status_code == 403
    perm = next(p for p in connection_write_permissions() if p.codename == permission)
    world.staff.user_permissions.add(perm)  # each request loads its user afresh
    assert getattr(client_with(key), method)(url, body, format="json").status_code in (200, 204)


@pytest.mark.parametrize(
    "change",
    [{"base_url": NEW_URL}, {"provider": "github"}, {"repository": "evil/repo"}],
    ids=["base_url", "provider", "repository"],
)
def test_moving_a_connection_needs_the_token_again(world: World, change: dict[str, str]) -> None:
    client = client_with(world.staff_key)
    url = f"/api/v1/sync/configs/{world.alpha.pk}/"
    refused = client.patch(url, change, format="json")
    assert refused.status_code == 400
    assert "api_token" in refused.json()
    world.alpha.refresh_from_db()
    assert world.alpha.api_token == "alpha-token"
    assert all(getattr(world.alpha, k) != v for k, v in change.items())
    accepted = client.patch(url, {**change, "api_token": "new-token"}, format="json")
    assert accepted.status_code == 200, accepted.content
    world.alpha.refresh_from_db()
    assert world.alpha.api_token == "new-token"


def test_unchanged_address_fields_need_no_token(world: World) -> None:
    client = client_with(world.staff_key)
    url = f"/api/v1/sync/configs/{world.alpha.pk}/"
    same = {"base_url": world.alpha.base_url, "repository": world.alpha.repository}
    assert client.patch(url, {**same, "enabled": False}, format="json").status_code == 200
    world.alpha.refresh_from_db()
    assert world.alpha.api_token == "alpha-token"


def _admin_form(connection: Connection, **changes: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": connection.name,
        "provider": connection.provider,
        "base_url": connection.base_url,
        "repository": connection.repository,
        "enabled": "on",
        "api_token": "",
        "webhook_secret": "",
        "direction": connection.direction,
        "conflict_policy": connection.conflict_policy,
        "delete_policy": connection.delete_policy,
        "label_filter": "[]",
        "milestone_filter": "[]",
        "state_filter": connection.state_filter,
        "poll_interval_seconds": connection.poll_interval_seconds,
        "full_sync_interval_seconds": connection.full_sync_interval_seconds,
    }
    data.update(changes)
    return data


def test_the_admin_form_does_not_keep_the_token_when_base_url_changes(
    world: World, admin_client: Client
) -> None:
    url = f"/admin/integrations/connection/{world.alpha.pk}/change/"
    response = admin_client.post(url, _admin_form(world.alpha, base_url=NEW_URL))
    assert response.status_code == 200  # the form again, with the error
    assert "Enter the token again" in response.content.decode()
    world.alpha.refresh_from_db()
    assert world.alpha.base_url != NEW_URL and world.alpha.api_token == "alpha-token"
    response = admin_client.post(
        url, _admin_form(world.alpha, base_url=NEW_URL, api_token="new-token")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    world.alpha.refresh_from_db()
    assert (world.alpha.base_url, world.alpha.api_token) == (NEW_URL, "new-token")


def test_the_admin_form_keeps_the_token_when_nothing_moves(
    world: World, admin_client: Client
) -> None:
    url = f"/admin/integrations/connection/{world.alpha.pk}/change/"
    response = admin_client.post(url, _admin_form(world.alpha, name="renamed"))
    assert response.status_code == 302, response.content.decode()[:2000]
    world.alpha.refresh_from_db()
    assert (world.alpha.name, world.alpha.api_token) == ("renamed", "alpha-token")

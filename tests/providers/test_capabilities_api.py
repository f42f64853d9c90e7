"""Capabilities, provider options and registry choices as the API and the admin see them."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from integrations import providers
from integrations.models import Connection
from integrations.providers.base import ConfigOption
from integrations.providers.gitea import GiteaClient
from integrations.providers.github import GitHubClient
from tests.api.conftest import World
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db

NEW = {
    "name": "widgets",
    "provider": "gitea",
    "base_url": "http://127.0.0.1:3000",
    "repository": "acme/widgets",
    "api_token": "tracker-token-123",
    "webhook_secret": "hook-secret-456",
}


@pytest.fixture
def world() -> World:
    return World()


def _post(world: World, url: str, data: dict[str, Any]) -> Any:
    return world.client(world.staff_key).post(url, data, format="json")


def test_an_issue_write_the_tracker_cannot_hold_is_a_400_naming_the_field(world, monkeypatch):
    """SPEC §3: refused by the API, never accepted and then failed in the outbox."""
    github = ConnectionFactory(provider="github")
    too_many = [f"user{n}" for n in range(11)]  # GitHub holds at most 10

    response = _post(
        world, "/api/v1/issues/", {"connection": github.pk, "title": "t", "assignees": too_many}
    )

    assert response.status_code == 400, response.content
    assert "assignees" in str(response.json())


def test_a_tracker_without_milestones_refuses_one_on_update(world, monkeypatch):
    caps = dataclasses.replace(GiteaClient.capabilities, milestones=False)
    monkeypatch.setattr(GiteaClient, "capabilities", caps)
    issue = world.alpha_issue

    response = world.client(world.staff_key).patch(
        f"/api/v1/issues/{issue.pk}/", {"milestone": "v1"}, format="json"
    )

    assert response.status_code == 400, response.content
    assert "milestone" in str(response.json())
    ok = world.client(world.staff_key).patch(
        f"/api/v1/issues/{issue.pk}/", {"title": "fine"}, format="json"
    )
    assert ok.status_code == 200, ok.content


def test_an_issue_shows_tracker_status_and_sync_error(world):
    body = world.client(world.staff_key).get(f"/api/v1/issues/{world.alpha_issue.pk}/").json()
    assert "tracker_status" in body and "sync_error" in body


def test_a_connection_of_a_provider_without_a_client_is_refused(world):
    response = _post(world, "/api/v1/sync/configs/", {**NEW, "provider": "bugzilla"})

    assert response.status_code == 400, response.content
    assert "provider" in str(response.json())
    assert not Connection.objects.filter(name="widgets").exists()


def test_unknown_config_json_keys_are_a_400(world):
    response = _post(world, "/api/v1/sync/configs/", {**NEW, "config_json": {"nope": 1}})

    assert response.status_code == 400, response.content
    assert "nope" in str(response.json())


def test_config_json_is_validated_against_the_providers_options(world, monkeypatch):
    options = (
        ConfigOption("email", "Account e-mail", required=True),
        ConfigOption("close_on_merge", "Close on merge", kind=bool),
    )
    monkeypatch.setattr(GitHubClient, "config_options", options)
    base = {**NEW, "provider": "github", "base_url": "https://api.github.com"}

    missing = _post(world, "/api/v1/sync/configs/", {**base, "config_json": {}})
    wrong = _post(
        world,
        "/api/v1/sync/configs/",
        {**base, "config_json": {"email": "a@b.c", "close_on_merge": "yes"}},
    )
    good = _post(
        world,
        "/api/v1/sync/configs/",
        {**base, "config_json": {"email": "a@b.c", "close_on_merge": True}},
    )

    assert missing.status_code == 400 and "email" in str(missing.json())
    assert wrong.status_code == 400 and "close_on_merge" in str(wrong.json())
    assert good.status_code == 201, good.content
    assert good.json()["config_json"] == {"email": "a@b.c", "close_on_merge": True}
    assert Connection.objects.get(pk=good.json()["id"]).config_json["email"] == "a@b.c"


def _admin_client() -> Any:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_the_admin_offers_only_providers_with_a_client_and_shows_their_options(monkeypatch):
    monkeypatch.setattr(
        GitHubClient, "config_options", (ConfigOption("email", "Account e-mail", required=True),)
    )
    # Every named provider has a client today: take one out of the registry to see the rule.
    discover = providers._discover
    monkeypatch.setattr(
        providers, "_discover", lambda name: None if name == "openproject" else discover(name)
    )
    client = _admin_client()

    page = client.get("/admin/integrations/connection/add/").content.decode()

    assert 'value="gitea"' in page and 'value="github"' in page and 'value="trello"' in page
    assert 'value="openproject"' not in page
    assert "config__github__email" in page and "Account e-mail" in page

    form = {
        "name": "gh",
        "provider": "github",
        "base_url": "https://api.github.com",
        "repository": "acme/widgets",
        "enabled": "on",
        "api_token": "t",
        "webhook_secret": "s",
        "direction": "bidirectional",
        "conflict_policy": "manual",
        "delete_policy": "delete_wins",
        "create_remote": "on",
        "label_filter": "[]",
        "milestone_filter": "[]",
        "state_filter": "all",
        "poll_interval_seconds": "300",
        "full_sync_interval_seconds": "86400",
    }
    refused = client.post("/admin/integrations/connection/add/", form)
    assert refused.status_code == 200 and "email: required" in refused.content.decode()
    saved = client.post(
        "/admin/integrations/connection/add/", {**form, "config__github__email": "a@b.c"}
    )
    assert saved.status_code == 302, saved.content.decode()[:2000]
    connection = Connection.objects.get(name="gh")
    assert connection.config_json == {"email": "a@b.c"}
    change = client.get(f"/admin/integrations/connection/{connection.pk}/change/")
    page = change.content.decode()
    # The capabilities, read from the provider's client, not from `if provider == …`.
    assert "at most 10 assignee(s)" in page and "labels created on use" in page
    assert 'value="a@b.c"' in page

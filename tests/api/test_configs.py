"""sync/configs/: connection CRUD for staff, write-only secrets, and the sync trigger."""

from __future__ import annotations

import pytest

from integrations.models import Connection
from issues.models import Trigger
from issues.tasks import sync_project_issues

NEW_CONNECTION = {
    "name": "widgets",
    "provider": "gitea",
    "base_url": "http://127.0.0.1:3000",
    "repository": "acme/widgets",
    "api_token": "tracker-token-123",
    "webhook_secret": "hook-secret-456",
}
SPEC_CONNECTION_FIELDS = {
    "name",
    "provider",
    "base_url",
    "repository",
    "direction",
    "conflict_policy",
    "delete_policy",
    "create_remote",
    "label_filter",
    "milestone_filter",
    "poll_interval_seconds",
    "full_sync_interval_seconds",
    "enabled",
    "webhook_url",
    "webhook_healthy",
    "last_polled_at",
}


def _assert_no_secrets(payload):
    text = str(payload)
    assert "api_token" not in payload and "webhook_secret" not in payload
    assert "tracker-token-123" not in text and "hook-secret-456" not in text


def test_staff_creates_a_connection_and_secrets_are_never_returned(world):
    client = world.client(world.staff_key)
    response = client.post(
        "/api/v1/sync/configs/",
        {
            **NEW_CONNECTION,
            "label_filter": ["sync-me"],
            "poll_interval_seconds": 60,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) >= SPEC_CONNECTION_FIELDS
    _assert_no_secrets(body)
    connection = Connection.objects.get(pk=body["id"])
    assert connection.api_token == "tracker-token-123"
    assert connection.webhook_secret == "hook-secret-456"
    assert body["webhook_url"].endswith(f"/webhooks/gitea/{connection.pk}/")
    assert body["has_api_token"] is True and body["webhook_healthy"] is True
    assert body["last_polled_at"] is None and body["label_filter"] == ["sync-me"]
    assert body["direction"] == "bidirectional" and body["conflict_policy"] == "manual"
    listed = client.get("/api/v1/sync/configs/").json()["results"]
    detail = client.get(f"/api/v1/sync/configs/{connection.pk}/").json()
    for payload in [*listed, detail]:
        _assert_no_secrets(payload)


def test_patch_without_secrets_keeps_them_and_with_secrets_replaces_them(world):
    client = world.client(world.staff_key)
    url = f"/api/v1/sync/configs/{world.alpha.pk}/"
    response = client.patch(
        url, {"enabled": False, "conflict_policy": "remote_wins"}, format="json"
    )
    assert response.status_code == 200, response.content
    world.alpha.refresh_from_db()
    assert not world.alpha.enabled and world.alpha.conflict_policy == "remote_wins"
    assert world.alpha.api_token == "alpha-token"
    client.patch(url, {"api_token": "rotated"}, format="json")
    world.alpha.refresh_from_db()
    assert world.alpha.api_token == "rotated" and world.alpha.webhook_secret == "alpha-secret"


def test_put_replaces_the_connection(world):
    response = world.client(world.staff_key).put(
        f"/api/v1/sync/configs/{world.alpha.pk}/",
        {**NEW_CONNECTION, "name": "alpha-renamed", "direction": "inbound"},
        format="json",
    )
    assert response.status_code == 200, response.content
    world.alpha.refresh_from_db()
    assert (world.alpha.name, world.alpha.direction) == ("alpha-renamed", "inbound")


def test_put_without_required_fields_is_400(world):
    response = world.client(world.staff_key).put(
        f"/api/v1/sync/configs/{world.alpha.pk}/", {"name": "x"}, format="json"
    )
    assert response.status_code == 400
    assert {"provider", "base_url", "repository"} <= set(response.json())


def test_delete_removes_the_connection_and_its_mirror(world):
    response = world.client(world.staff_key).delete(f"/api/v1/sync/configs/{world.beta.pk}/")
    assert response.status_code == 204
    assert not Connection.objects.filter(pk=world.beta.pk).exists()
    assert not world.beta.issues.exists()


@pytest.mark.parametrize(
    ("change", "bad_field"),
    [
        ({"provider": "bitbucket"}, "provider"),
        ({"base_url": "not a url"}, "base_url"),
        ({"base_url": "file:///etc/passwd"}, "base_url"),
        ({"base_url": "ftp://git.example.com"}, "base_url"),
        ({"repository": ""}, "repository"),
        ({"name": "alpha"}, "name"),  # taken
        ({"direction": "sideways"}, "direction"),
        ({"label_filter": "bug"}, "label_filter"),
        ({"label_filter": [""]}, "label_filter"),
        ({"poll_interval_seconds": 0}, "poll_interval_seconds"),
        ({"poll_interval_seconds": 2**70}, "poll_interval_seconds"),
        ({"full_sync_interval_seconds": "daily"}, "full_sync_interval_seconds"),
        ({"api_token": 42}, "api_token"),
        ({"webhook_url": "https://evil.example.com", "colour": "red"}, "colour"),
    ],
)
def test_bad_connection_input_is_400_naming_the_field(world, change, bad_field):
    response = world.client(world.staff_key).post(
        "/api/v1/sync/configs/", {**NEW_CONNECTION, **change}, format="json"
    )
    assert response.status_code == 400, response.content
    assert bad_field in response.json()
    assert not Connection.objects.filter(name="widgets").exists()


def test_unknown_connection_is_404(world):
    client = world.client(world.staff_key)
    assert client.get("/api/v1/sync/configs/987654/").status_code == 404
    assert client.delete("/api/v1/sync/configs/987654/").status_code == 404


def test_configs_filter_by_provider_and_enabled(world):
    Connection.objects.filter(pk=world.beta.pk).update(enabled=False)
    client = world.client()
    rows = client.get("/api/v1/sync/configs/?enabled=false").json()["results"]
    assert [row["name"] for row in rows] == ["beta"]
    assert client.get("/api/v1/sync/configs/?provider=github").json()["count"] == 0
    assert client.get("/api/v1/sync/configs/?provider=nope").status_code == 400


# --- sync trigger -----------------------------------------------------------------------------


@pytest.fixture
def published(monkeypatch):
    calls = []
    monkeypatch.setattr(
        "syndarix_sync.queueing.publish",
        lambda task, *args, **kwargs: calls.append((task, args)) or True,
    )
    return calls


@pytest.mark.parametrize(
    ("query", "full"), [("", False), ("?full=1", True), ("?full=true", True), ("?full=0", False)]
)
def test_sync_trigger_queues_the_task_after_commit(
    world, published, django_capture_on_commit_callbacks, query, full
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = world.client().post(f"/api/v1/sync/configs/{world.alpha.pk}/sync/{query}")
        assert published == []  # nothing leaves before the commit
    assert response.status_code == 202, response.content
    assert response.json() == {"connection": world.alpha.pk, "full": full, "status": "queued"}
    for callback in callbacks:
        callback()
    assert published == [(sync_project_issues, (world.alpha.pk, full, Trigger.MANUAL))]


def test_sync_trigger_with_a_bad_full_value_is_400(world, published):
    response = world.client().post(f"/api/v1/sync/configs/{world.alpha.pk}/sync/?full=maybe")
    assert response.status_code == 400
    assert "full" in response.json()


def test_sync_trigger_on_a_disabled_connection_is_409(world, published):
    Connection.objects.filter(pk=world.alpha.pk).update(enabled=False)
    response = world.client().post(f"/api/v1/sync/configs/{world.alpha.pk}/sync/")
    assert response.status_code == 409
    assert response.json()["code"] == "connection_disabled"

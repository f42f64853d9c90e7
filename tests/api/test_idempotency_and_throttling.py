"""Idempotency-Key on writes (replay, reuse with another body, expiry, release after an
error) and the per-user rate limits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone
from rest_framework.parsers import JSONParser
from rest_framework.request import Request

from issues.api.idempotency import request_fingerprint
from issues.models import Conflict, IdempotencyRecord, Issue, OutboxEntry, SyncLog


def _create(client, connection, key, title="Idempotent"):
    return client.post(
        "/api/v1/issues/",
        {"connection": connection.pk, "title": title},
        format="json",
        headers={"Idempotency-Key": key},
    )


def test_a_retried_create_is_replayed_without_a_second_issue(world):
    client = world.client()
    first = _create(client, world.alpha, "key-1")
    second = _create(client, world.alpha, "key-1")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert Issue.objects.filter(title="Idempotent").count() == 1
    assert OutboxEntry.objects.count() == 1


def test_the_same_key_with_a_different_body_is_409(world):
    client = world.client()
    assert _create(client, world.alpha, "key-2").status_code == 201
    response = _create(client, world.alpha, "key-2", title="Something else")
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"
    assert not Issue.objects.filter(title="Something else").exists()


def test_the_same_key_on_another_endpoint_is_409(world):
    client = world.client()
    assert _create(client, world.alpha, "key-3").status_code == 201
    response = client.post(
        f"/api/v1/issues/{world.alpha_issue.pk}/close/", headers={"Idempotency-Key": "key-3"}
    )
    assert response.status_code == 409
    world.alpha_issue.refresh_from_db()
    assert world.alpha_issue.state == "open"


def test_keys_belong_to_one_user(world):
    assert _create(world.client(), world.alpha, "shared").status_code == 201
    other_user = _create(world.client(world.staff_key), world.alpha, "shared")
    assert other_user.status_code == 201
    assert "Idempotent-Replayed" not in other_user.headers
    assert Issue.objects.filter(title="Idempotent").count() == 2


def test_keys_expire_after_24_hours(world):
    client = world.client()
    assert _create(client, world.alpha, "old-key").status_code == 201
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=24, seconds=1))
    response = _create(client, world.alpha, "old-key", title="Fresh")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers
    assert IdempotencyRecord.objects.get().request_fingerprint != ""
    assert Issue.objects.filter(title="Fresh").exists()


def test_a_failed_request_releases_its_key(world):
    client = world.client()
    bad = client.post(
        "/api/v1/issues/",
        {"connection": world.alpha.pk, "title": ""},
        format="json",
        headers={"Idempotency-Key": "retry-me"},
    )
    assert bad.status_code == 400
    assert not IdempotencyRecord.objects.exists()
    good = _create(client, world.alpha, "retry-me")
    assert good.status_code == 201


def test_a_409_from_the_service_is_not_stored(world):
    client = world.client()
    url = f"/api/v1/issues/{world.alpha_issue.pk}/"
    headers = {"Idempotency-Key": "patch-1"}
    refused = client.patch(url, {"body": "mine"}, format="json", headers=headers)
    assert refused.status_code == 409
    Conflict.objects.filter(pk=world.alpha_conflict.pk).update(resolved=True)
    accepted = client.patch(url, {"body": "mine"}, format="json", headers=headers)
    assert accepted.status_code == 200 and accepted.json()["body"] == "mine"


def test_a_replayed_patch_changes_nothing_twice(world):
    client = world.client()
    url = f"/api/v1/issues/{world.beta_issue.pk}/"
    for _ in range(3):
        response = client.patch(
            url, {"title": "Once"}, format="json", headers={"Idempotency-Key": "patch-2"}
        )
        assert response.status_code == 200
    assert SyncLog.objects.filter(issue=world.beta_issue).count() == 1


def test_a_key_still_in_progress_is_409_until_its_claim_is_abandoned(world, rf):
    url = f"/api/v1/issues/{world.alpha_issue.pk}/close/"
    same_request = Request(
        rf.post(url, data=b"", content_type="application/json"), parsers=[JSONParser()]
    )
    IdempotencyRecord.objects.create(
        user=world.agent,
        token=world.agent_token,
        key="busy",
        request_fingerprint=request_fingerprint(same_request),
        method="POST",
        path=url,
    )
    client = world.client()
    response = client.post(url, headers={"Idempotency-Key": "busy"})
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_in_progress"
    # A claim abandoned long ago (its request died and rolled back) is taken over.
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(minutes=10))
    response = client.post(url, headers={"Idempotency-Key": "busy"})
    assert response.status_code == 200 and response.json()["state"] == "closed"
    replay = client.post(url, headers={"Idempotency-Key": "busy"})
    assert replay.headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("key", ["", "   ", "x" * 256, "tab\tkey"])
def test_a_malformed_key_is_400(world, key):
    response = _create(world.client(), world.alpha, key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert not Issue.objects.filter(title="Idempotent").exists()


def test_sync_trigger_with_a_key_queues_once(world, django_capture_on_commit_callbacks):
    client = world.client()
    url = f"/api/v1/sync/configs/{world.alpha.pk}/sync/?full=1"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        for _ in range(2):
            assert client.post(url, headers={"Idempotency-Key": "sync-1"}).status_code == 202
    assert len(callbacks) == 1


def test_connection_create_replay_returns_no_secrets(world):
    client = world.client(world.staff_key)
    payload = {
        "name": "gamma",
        "provider": "gitea",
        "base_url": "https://g.example.com",
        "repository": "a/b",
        "api_token": "very-secret-token",
    }
    for _ in range(2):
        response = client.post(
            "/api/v1/sync/configs/", payload, format="json", headers={"Idempotency-Key": "conn-1"}
        )
        assert response.status_code == 201
        assert "very-secret-token" not in response.content.decode()
    assert "very-secret-token" not in str(IdempotencyRecord.objects.get().response_body)


# --- throttling -----------------------------------------------------------------------------


def test_writes_and_reads_are_throttled_per_user(world):
    rates = {"api_read": "3/min", "api_write": "2/min"}
    with override_settings(
        REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    ):
        client = world.client()
        url = f"/api/v1/issues/{world.alpha_issue.pk}/close/"
        assert [client.post(url).status_code for _ in range(3)] == [200, 200, 429]
        reads = [client.get("/api/v1/sync/status/").status_code for _ in range(4)]
        assert reads == [200, 200, 200, 429]
        throttled = client.get("/api/v1/sync/status/")
        assert int(throttled.headers["Retry-After"]) > 0
        # Another user has a budget of their own.
        assert world.client(world.staff_key).get("/api/v1/sync/status/").status_code == 200

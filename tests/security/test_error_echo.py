"""SPEC §8: what a tracker answers in an error is not echoed to API callers; they get the
status and a short reason in words. The admin may show more.

Issue 11 finding 4 (repro): the first 200 characters of a tracker's error body reached any
token in scope through `sync/history/` (`error`) and the 502 of `issues/<id>/refresh/`.
"""

from __future__ import annotations

import pytest
from django.test import Client

from issues.models import SyncRun
from issues.polling import sync_connection
from tests.api.conftest import World, client_with
from tests.security.listeners import listening

LEAK = "INTERNAL-SECRET-PAGE root:x:0:0 redis_version:7.2"


def _leaky(status: int) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "text/plain"}, LEAK.encode()


@pytest.mark.parametrize("status", [400, 401, 404, 500])
def test_refresh_answers_the_status_not_the_body(world: World, status: int) -> None:
    with listening() as tracker:
        tracker.answer = lambda seen: _leaky(status)
        world.alpha.base_url = tracker.url
        world.alpha.save()
        response = client_with(world.agent_key).post(
            f"/api/v1/issues/{world.alpha_issue.pk}/refresh/"
        )
    assert response.status_code == 502
    text = response.content.decode()
    assert "INTERNAL-SECRET" not in text and "redis_version" not in text
    assert f"HTTP {status}" in response.json()["detail"]


def test_sync_history_shows_the_status_not_the_body(world: World, admin_client: Client) -> None:
    with listening() as tracker:
        tracker.answer = lambda seen: _leaky(403)
        world.alpha.base_url = tracker.url
        world.alpha.save()
        sync_connection(connection_id=world.alpha.pk, full=True)
    run = SyncRun.objects.get(connection=world.alpha)
    assert not run.success and LEAK in run.error  # kept for the admin and the logs
    response = client_with(world.agent_key).get("/api/v1/sync/history/")
    text = response.content.decode()
    assert "INTERNAL-SECRET" not in text
    (row,) = response.json()["results"]
    assert row["error"] == "permanent: the tracker answered HTTP 403 (Forbidden)"
    page = admin_client.get(f"/admin/issues/syncrun/{run.pk}/change/").content.decode()
    assert "INTERNAL-SECRET" in page  # the admin may show more

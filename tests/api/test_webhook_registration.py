"""POST /api/v1/sync/configs/<id>/webhook/: create or repair the tracker's hook, with the
connection write permission and the token's scope; the manual steps where it cannot."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from integrations.fake_trackers.base import Fault
from integrations.models import Connection
from tests.api.conftest import World, client_with, make_connection
from tests.providers.kits import KITS, Kit

REGISTERING = [k for k in KITS if k.provider in ("gitea", "github", "gitlab")]


@pytest.fixture(params=REGISTERING, ids=[k.provider for k in REGISTERING])
def tracked(request: pytest.FixtureRequest, world: World) -> Iterator[tuple[Any, Connection]]:
    kit: Kit = request.param
    fake = kit.make_fake()
    fake.start()
    connection = make_connection(
        "hooked",
        provider=kit.provider,
        base_url=kit.base_url(fake),
        repository=fake.repository,
        api_token=fake.token,
        webhook_secret="",
    )
    try:
        yield fake, connection
    finally:
        fake.stop()


def _post(world: World, connection: Connection, key: str | None = None) -> Any:
    key = world.staff_key if key is None else key
    return client_with(key).post(f"/api/v1/sync/configs/{connection.pk}/webhook/")


def test_created_then_unchanged_then_repaired(world, tracked):
    fake, connection = tracked
    first = _post(world, connection)
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["result"] == "created"
    assert body["webhook_url"] == connection.webhook_url
    assert any(connection.webhook_url in step for step in body["steps"])
    [hook] = fake.hooks.values()
    connection.refresh_from_db()
    assert connection.webhook_secret and hook.secret == connection.webhook_secret  # generated
    assert hook.url == connection.webhook_url

    assert _post(world, connection).json()["result"] == "unchanged"
    fake.set_hook_active(hook.id, False)
    assert _post(world, connection).json()["result"] == "repaired"
    assert fake.hooks[hook.id].active


def test_a_token_without_rights_on_the_hooks_gets_the_manual_steps(world, tracked):
    fake, connection = tracked
    fake.inject(Fault(status=403, path_contains="/hooks", count=5))
    answer = _post(world, connection)
    assert answer.status_code == 409
    body = answer.json()
    assert body["code"] == "token_cannot_register"
    assert body["webhook_url"] == connection.webhook_url
    assert body["steps"] and any("Payload URL" in step for step in body["steps"])
    assert not fake.hooks


@pytest.mark.django_db
def test_the_change_permission_is_needed(world):
    answer = _post(world, world.alpha, key=world.agent_key)
    assert answer.status_code == 403
    assert "change_connection" in answer.json()["detail"]


@pytest.mark.django_db
def test_a_connection_outside_the_tokens_scope_is_404(world):
    assert _post(world, world.beta, key=world.scoped_key).status_code == 404


@pytest.mark.django_db
def test_a_scoped_token_registers_its_own_connection(world):
    # The scoped token reaches the tracker (closed port here): a 503, not a 403/404.
    answer = _post(world, world.alpha, key=world.scoped_key)
    assert answer.status_code == 503
    assert answer.json()["steps"]


@pytest.mark.django_db
def test_redmine_is_polled_only(world):
    redmine = make_connection("rm", provider="redmine", repository="widgets")
    answer = _post(world, redmine)
    assert answer.status_code == 409
    assert answer.json()["code"] == "polled_only"


@pytest.mark.django_db
def test_openproject_answers_the_manual_steps(world):
    op = make_connection("op", provider="openproject", repository="widgets")
    answer = _post(world, op)
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "manual_registration"
    assert any("Administration" in step for step in body["steps"])
    assert body["webhook_url"] == op.webhook_url


@pytest.mark.django_db
def test_an_unauthenticated_call_is_401(world):
    assert client_with(None).post(
        f"/api/v1/sync/configs/{world.alpha.pk}/webhook/"
    ).status_code in (401, 403)


@pytest.mark.django_db
def test_trello_needs_the_power_ups_secret_saved_first(world):
    board = make_connection(
        "tr",
        provider="trello",
        repository="5f1b2c3d4e5f60718293a4b5",
        config_json={"api_key": "k"},
        webhook_secret="",
    )
    answer = _post(world, board)
    assert answer.status_code == 400
    assert answer.json()["code"] == "secret_required"
    board.refresh_from_db()
    assert board.webhook_secret == ""  # never a generated one: Trello signs with its own

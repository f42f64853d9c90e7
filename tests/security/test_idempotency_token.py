"""SPEC §8: idempotency keys belong to one token.

Issue 11 finding 7 (repro): token B of the same user replayed token A's cached answer
(`Idempotent-Replayed: true`) and so read an issue outside B's scope.
"""

from __future__ import annotations

from issues.models import IdempotencyRecord
from issues.services.tokens import api_token_create
from tests.api.conftest import World, client_with


def test_another_token_of_the_same_user_is_not_answered_from_a_key(world: World) -> None:
    _, beta_only = api_token_create(user=world.agent, connection_ids=[world.beta.pk])
    url = f"/api/v1/issues/{world.alpha_issue.pk}/close/"
    first = client_with(world.agent_key).post(url, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 200
    replay = client_with(beta_only).post(url, headers={"Idempotency-Key": "k-1"})
    assert replay.status_code == 404  # alpha is outside its scope, key or no key
    assert "Idempotent-Replayed" not in replay
    assert world.alpha_issue.title not in replay.content.decode()


def test_the_same_key_is_independent_per_token(world: World) -> None:
    _, other = api_token_create(user=world.agent, all_connections=True)
    url = f"/api/v1/issues/{world.beta_issue.pk}/"
    a = client_with(world.agent_key).patch(
        url, {"title": "A"}, format="json", headers={"Idempotency-Key": "shared"}
    )
    b = client_with(other).patch(
        url, {"title": "B"}, format="json", headers={"Idempotency-Key": "shared"}
    )
    assert (a.status_code, b.status_code) == (200, 200)
    assert "Idempotent-Replayed" not in b and b.json()["title"] == "B"
    assert IdempotencyRecord.objects.filter(key="shared").count() == 2
    again = client_with(world.agent_key).patch(
        url, {"title": "A"}, format="json", headers={"Idempotency-Key": "shared"}
    )
    assert again["Idempotent-Replayed"] == "true" and again.json()["title"] == "A"

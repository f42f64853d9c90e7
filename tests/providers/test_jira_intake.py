"""`POST /webhooks/jira/` end to end through the intake (SPEC §6 answers), with the real
captures: signed issue and comment events are stored (202), redeliveries answer 200, other
events 204, a wrong or missing signature 401, a body that is no Jira delivery 400, a project
no connection holds 404, an oversized body 413. Nothing is stored unless 202."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from integrations.models import Connection, WebhookDelivery
from tests.api.conftest import World
from tests.factories import ConnectionFactory
from tests.shared_data import SHARED_DIR, github_signature, shared_available

SECRET = "jira-intake-secret"
FIXTURES = SHARED_DIR / "fixtures" / "jira"
pytestmark = pytest.mark.skipif(not shared_available(), reason=f"no {SHARED_DIR}")


def post(body: bytes, *, secret: str | None = SECRET, **headers: str) -> Any:
    signed = dict(headers)
    if secret is not None:
        signed["X-Hub-Signature"] = github_signature(secret, body)
    return Client().post(
        "/webhooks/jira/", data=body, content_type="application/json", headers=signed
    )


@pytest.fixture
def connections(db: Any) -> list[Connection]:
    # One connection per project named by the captures used below.
    return [
        ConnectionFactory(provider="jira", repository=key, webhook_secret=SECRET)
        for key in ("BUG", "TEST", "SP")
    ]


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("issue_created.json", 202),
        ("issue_updated__priority.json", 202),
        ("issue_deleted.json", 202),
        ("reassigned_v2.json", 202),
        # Comments are stored like the other providers' (the worker finishes them as ignored
        # until comments are applied).
        ("comment_updated.json", 202),
        ("commented_markup_v2.json", 202),
        ("example_anomalous_payload.json", 400),
        ("issue_created_with_custom_fields.json", 404),  # project KAN: no connection
    ],
)
def test_a_signed_capture_gets_the_answer_spec_section_6_names(
    connections: list[Connection], name: str, status: int
):
    body = (FIXTURES / name).read_bytes()
    response = post(body)
    assert response.status_code == status, response.content[:300]
    stored = WebhookDelivery.objects.count()
    assert stored == (1 if status == 202 else 0)
    if status == 202:
        delivery = WebhookDelivery.objects.get()
        key = json.loads(body)["issue"]["fields"]["project"]["key"]
        assert delivery.connection is not None and delivery.connection.repository == key
        assert bytes(delivery.body) == body


def test_a_redelivery_with_jiras_identifier_is_a_duplicate(connections: list[Connection]):
    body = (FIXTURES / "issue_created.json").read_bytes()
    first = post(body, **{"X-Atlassian-Webhook-Identifier": "hook-1"})
    again = post(
        body, **{"X-Atlassian-Webhook-Identifier": "hook-1", "X-Atlassian-Webhook-Retry": "1"}
    )
    assert (first.status_code, again.status_code) == (202, 200)
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.parametrize("secret", [None, "wrong-secret"], ids=["unsigned", "wrong-secret"])
def test_a_missing_or_wrong_signature_is_401_and_stores_nothing(
    connections: list[Connection], secret: str | None
):
    response = post((FIXTURES / "issue_created.json").read_bytes(), secret=secret)
    assert response.status_code == 401
    assert WebhookDelivery.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"[]", 400),
        (b'{"webhookEvent": "jira:issue_created", "issue": {"id": "1", "key": "x"}}', 400),
        (b'{"webhookEvent": "sprint_started", "sprint": {}}', 204),
        (b'{"webhookEvent": "moon:landed"}', 204),
    ],
    ids=["garbage", "list", "bad-key", "sprint", "unknown-event"],
)
def test_bodies_that_are_no_issue_event(connections: list[Connection], body: bytes, status: int):
    assert post(body).status_code == status
    assert WebhookDelivery.objects.count() == 0


def test_a_body_over_the_limit_is_413(connections: list[Connection], settings: Any):
    settings.WEBHOOK_MAX_BODY_BYTES = 1000
    body = json.dumps({"webhookEvent": "jira:issue_created", "pad": "x" * 2000}).encode()
    assert post(body).status_code == 413


# --- the API: a Jira connection and what Jira cannot hold (SPEC §3, §6) --------------------------

JIRA = {
    "name": "jira-proj",
    "provider": "jira",
    "base_url": "https://acme.atlassian.net",
    "repository": "PROJ",
    "api_token": "atlassian-api-token",
    "webhook_secret": "hook-secret-456",
}


def _api_post(url: str, data: dict[str, Any]) -> Any:
    world = World()
    return world.client(world.staff_key).post(url, data, format="json")


@pytest.mark.parametrize(
    ("config", "status"),
    [
        ({"email": "bot@acme.example"}, 201),
        ({"email": "bot@acme.example", "close_transition": "Resolve"}, 201),
        ({}, 400),  # the e-mail of basic auth is required
        ({"email": "bot@acme.example", "done_list": "Done"}, 400),  # Trello's key: unknown
    ],
    ids=["email", "transition", "no-email", "unknown-key"],
)
def test_a_jira_connection_takes_its_email_in_config_json(db: Any, config: Any, status: int):
    response = _api_post("/api/v1/sync/configs/", {**JIRA, "config_json": config})
    assert response.status_code == status, response.content
    assert Connection.objects.filter(provider="jira").exists() is (status == 201)


def test_two_assignees_on_a_jira_issue_are_refused_by_the_api(db: Any):
    jira = ConnectionFactory(provider="jira", repository="PROJ", config_json={"email": "b@a.c"})
    response = _api_post(
        "/api/v1/issues/", {"connection": jira.pk, "title": "t", "assignees": ["a", "b"]}
    )
    assert response.status_code == 400, response.content
    assert "assignees" in str(response.json())

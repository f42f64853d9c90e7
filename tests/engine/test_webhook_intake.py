"""`POST /webhooks/<provider>/`: the SPEC §6 answers, and nothing stored unless accepted."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from integrations.models import Connection, DeliveryStatus, WebhookDelivery
from issues.inbound import stuck_deliveries
from issues.models import Issue
from tests.shared_data import gitea_signature, github_signature

SECRET = "s3cret"


def gitea_payload(repository: str = "acme/widgets", number: int = 7) -> bytes:
    return json.dumps(
        {
            "action": "opened",
            "number": number,
            "issue": {
                "id": 900 + number,
                "number": number,
                "title": "Ünïcode title ✓",
                "body": "b",
                "state": "open",
                "labels": [{"id": 1, "name": "bug"}],
                "assignees": None,
                "milestone": None,
                "created_at": "2026-11-20T10:00:00Z",
                "updated_at": "2026-11-20T10:00:00Z",
                "pull_request": None,
                "html_url": f"http://tracker.test/{repository}/issues/{number}",
            },
            "repository": {"id": 1, "full_name": repository, "name": repository.split("/")[1]},
            "sender": {"login": "alice"},
        }
    ).encode()


def post(
    body: bytes,
    *,
    provider: str = "gitea",
    event: str = "issues",
    delivery: str = "d-1",
    secret: str = SECRET,
    path: str | None = None,
    **headers: str,
):
    signed = {"X-Gitea-Event": event, "X-Gitea-Delivery": delivery}
    if secret:
        signed["X-Gitea-Signature"] = gitea_signature(secret, body)
    signed.update(headers)
    return Client().post(
        path or f"/webhooks/{provider}/", data=body, content_type="application/json", headers=signed
    )


@pytest.fixture
def connection(db) -> Connection:
    return Connection.objects.create(
        name="acme",
        provider="gitea",
        base_url="http://tracker.test",
        repository="acme/widgets",
        api_token="t",
        webhook_secret=SECRET,
    )


def test_accepted_delivery_is_stored_then_queued_after_commit(
    connection, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(gitea_payload())
    assert response.status_code == 202
    delivery = WebhookDelivery.objects.get()
    assert (delivery.provider, delivery.delivery_id, delivery.event) == ("gitea", "d-1", "issues")
    assert bytes(delivery.body) == gitea_payload()
    assert delivery.connection == connection and delivery.status == DeliveryStatus.RECEIVED
    assert len(callbacks) == 1  # process_webhook_event, queued only once committed


def test_redelivery_answers_200_and_stores_nothing_new(connection):
    assert post(gitea_payload()).status_code == 202
    again = post(gitea_payload())
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert WebhookDelivery.objects.count() == 1


def test_connection_can_be_addressed_by_id(connection):
    response = post(gitea_payload(), path=f"/webhooks/gitea/{connection.pk}/")
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("unknown provider", 404),
        ("no connection for the repository", 404),
        ("unknown connection id", 404),
        ("missing signature", 401),
        ("wrong signature", 401),
        ("signature of another body", 401),
        ("empty body", 400),
        ("not json", 400),
        ("json of the wrong shape", 400),
        ("json nested 10,000 deep", 400),
        ("unknown event", 204),
        ("ping", 204),
        ("pull request event", 204),
    ],
)
def test_refusals_store_nothing(connection, case, status):
    body = gitea_payload()
    kwargs: dict = {}
    if case == "unknown provider":
        kwargs["provider"] = "bitbucket"
    elif case == "no connection for the repository":
        body = gitea_payload(repository="someone/else")
    elif case == "unknown connection id":
        kwargs["path"] = "/webhooks/gitea/99999/"
    elif case == "missing signature":
        kwargs["secret"] = ""
    elif case == "wrong signature":
        kwargs["X-Gitea-Signature"] = gitea_signature("not the secret", body)
    elif case == "signature of another body":
        kwargs["X-Gitea-Signature"] = gitea_signature(SECRET, b"{}")
    elif case == "empty body":
        body = b""
    elif case == "not json":
        body = b"\xff\xfe not json"
    elif case == "json of the wrong shape":
        body = b"[1, 2, 3]"
    elif case == "json nested 10,000 deep":
        body = b"[" * 10_000 + b"]" * 10_000
    elif case == "unknown event":
        kwargs["event"] = "wiki_page_edited"
    elif case == "ping":
        kwargs["event"] = "ping"
        body = json.dumps({"hook_id": 1, "repository": {"full_name": "acme/widgets"}}).encode()
    elif case == "pull request event":
        kwargs["event"] = "pull_request"
    response = post(body, **kwargs)
    assert response.status_code == status, response.content
    assert WebhookDelivery.objects.count() == 0


def test_connection_without_a_secret_refuses_everything(connection):
    Connection.objects.filter(pk=connection.pk).update(webhook_secret="")
    assert post(gitea_payload()).status_code == 401
    assert post(gitea_payload(), secret="").status_code == 401
    assert WebhookDelivery.objects.count() == 0


def test_body_over_the_limit_is_refused_with_413(connection, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1024
    response = post(b"{" + b" " * 4096 + b"}")
    assert response.status_code == 413
    assert WebhookDelivery.objects.count() == 0


def test_30_mb_body_is_refused_before_it_is_read(connection):
    body = b"x" * (30 * 1024 * 1024)
    response = post(body)
    assert response.status_code == 413


def test_github_signature_scheme_is_checked_for_github(db):
    Connection.objects.create(
        name="gh",
        provider="github",
        base_url="https://api.github.com",
        repository="octo/repo",
        api_token="t",
        webhook_secret=SECRET,
    )
    payload = Path(__file__).parent.parent / "fixtures" / "github" / "issues__deleted.json"
    body = payload.read_bytes()
    repository = json.loads(body)["repository"]["full_name"]
    Connection.objects.filter(name="gh").update(repository=repository)
    headers = {
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": "g-1",
        "X-Hub-Signature-256": github_signature(SECRET, body),
    }
    ok = Client().post(
        "/webhooks/github/", data=body, content_type="application/json", headers=headers
    )
    assert ok.status_code == 202
    headers["X-Hub-Signature-256"] = github_signature("wrong", body)
    headers["X-GitHub-Delivery"] = "g-2"
    bad = Client().post(
        "/webhooks/github/", data=body, content_type="application/json", headers=headers
    )
    assert bad.status_code == 401


def test_processing_applies_the_payload_and_is_idempotent(connection):
    from issues.inbound import process_delivery

    response = post(gitea_payload())
    delivery_id = response.json()["delivery"]
    assert process_delivery(delivery_id) == "created"
    assert process_delivery(delivery_id) == "not-claimable"  # already processed
    issue = Issue.objects.get()
    assert (issue.title, issue.labels) == ("Ünïcode title ✓", ["bug"])
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PROCESSED


def test_sweep_finds_deliveries_stored_but_never_processed(connection):
    post(gitea_payload(number=1), delivery="old")
    post(gitea_payload(number=2), delivery="fresh")
    WebhookDelivery.objects.filter(delivery_id="old").update(
        received_at=timezone.now() - timedelta(minutes=5)
    )
    old = WebhookDelivery.objects.get(delivery_id="old")
    assert stuck_deliveries() == [old.pk]


def test_sweep_task_requeues_and_the_delivery_gets_applied(connection, settings):
    from issues.tasks import sweep_webhook_deliveries
    from syndarix_sync.celery import app

    post(gitea_payload(), delivery="lost-in-queue")
    WebhookDelivery.objects.update(received_at=timezone.now() - timedelta(minutes=5))
    app.conf.task_always_eager = True
    try:
        assert sweep_webhook_deliveries() == 1
    finally:
        app.conf.task_always_eager = False
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PROCESSED
    assert Issue.objects.count() == 1

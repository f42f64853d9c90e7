from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from integrations.models import Connection, WebhookDelivery
from issues.models import ApiToken, Conflict, Issue, OutboxEntry, SyncLog, SyncRun
from issues.services.tokens import api_token_create

TOKEN = "glpat-VERYSECRETTOKEN-1234567890"
SECRET = "webhook-SECRET-value-0987654321"


@pytest.fixture
def admin_client_logged_in(db) -> Client:
    user = get_user_model().objects.create_superuser("root", "", "pw-for-tests-only")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def connection(db) -> Connection:
    return Connection.objects.create(
        name="acme",
        provider="gitlab",
        base_url="http://127.0.0.1:9",
        repository="g/p",
        api_token=TOKEN,
        webhook_secret=SECRET,
    )


def test_every_model_is_browsable_in_the_admin(admin_client_logged_in, connection) -> None:
    issue = Issue.objects.create(connection=connection, external_id="1", title="Hello ünïcode")
    WebhookDelivery.objects.create(
        provider="gitlab",
        delivery_id="x",
        event="Issue Hook",
        body=b'{"a": 1}',
        connection=connection,
    )
    SyncLog.objects.create(
        connection=connection,
        issue=issue,
        provider="gitlab",
        direction="inbound",
        action="create",
        trigger="webhook",
    )
    SyncRun.objects.create(connection=connection, kind="poll")
    from django.utils import timezone

    OutboxEntry.objects.create(
        connection=connection,
        issue=issue,
        operation="update",
        changes={"title": "x"},
        next_attempt_at=timezone.now(),
    )
    Conflict.objects.create(issue=issue, field="title", local_value="a", remote_value="b")
    api_token_create(user=get_user_model().objects.get(username="root"), name="agent")
    for model in (
        Connection,
        WebhookDelivery,
        Issue,
        SyncLog,
        SyncRun,
        OutboxEntry,
        Conflict,
        ApiToken,
    ):
        meta = model._meta
        listing = admin_client_logged_in.get(f"/admin/{meta.app_label}/{meta.model_name}/")
        assert listing.status_code == 200, meta.model_name
        obj = model.objects.first()
        detail = admin_client_logged_in.get(
            f"/admin/{meta.app_label}/{meta.model_name}/{obj.pk}/change/"
        )
        assert detail.status_code == 200, meta.model_name


def test_admin_never_renders_the_token_or_secret(admin_client_logged_in, connection) -> None:
    pages = [
        admin_client_logged_in.get("/admin/integrations/connection/"),
        admin_client_logged_in.get(f"/admin/integrations/connection/{connection.pk}/change/"),
    ]
    for page in pages:
        html = page.content.decode()
        assert TOKEN not in html
        assert SECRET not in html
    assert "glpa…90" in pages[1].content.decode()  # the masked form is shown


def test_saving_the_form_with_blank_secrets_keeps_them(admin_client_logged_in, connection):
    url = f"/admin/integrations/connection/{connection.pk}/change/"
    data = {
        "name": "acme renamed",
        "provider": "gitlab",
        "base_url": "http://127.0.0.1:9",
        "repository": "g/p",
        "api_token": "",
        "webhook_secret": "",
        "direction": "bidirectional",
        "conflict_policy": "manual",
        "delete_policy": "delete_wins",
        "create_remote": "on",
        "label_filter": "[]",
        "milestone_filter": "[]",
        "state_filter": "all",
        "poll_interval_seconds": "300",
        "full_sync_interval_seconds": "86400",
        "enabled": "on",
    }
    response = admin_client_logged_in.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    fresh = Connection.objects.get(pk=connection.pk)
    assert fresh.name == "acme renamed"
    assert (fresh.api_token, fresh.webhook_secret) == (TOKEN, SECRET)


def test_admin_requires_login(db) -> None:
    response = Client().get("/admin/integrations/connection/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]

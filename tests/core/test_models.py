from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from integrations.models import Connection, WebhookDelivery
from issues.models import Conflict, Issue


def make_connection(**overrides: object) -> Connection:
    values: dict[str, object] = {
        "name": "acme",
        "provider": "gitea",
        "base_url": "http://127.0.0.1:3000",
        "repository": "acme/widgets",
        "api_token": "tok-plaintext-123456",
        "webhook_secret": "hook-secret-abcdef",
    }
    values.update(overrides)
    return Connection.objects.create(**values)


@pytest.mark.django_db
def test_second_delivery_with_same_id_is_refused_by_the_database() -> None:
    WebhookDelivery.objects.create(provider="gitea", delivery_id="d-1", event="issues", body=b"{}")
    with pytest.raises(IntegrityError), transaction.atomic():
        WebhookDelivery.objects.create(
            provider="gitea", delivery_id="d-1", event="issues", body=b"{}"
        )
    # The same id from another provider is a different delivery.
    WebhookDelivery.objects.create(provider="github", delivery_id="d-1", event="issues", body=b"{}")


@pytest.mark.django_db
def test_second_issue_with_same_external_id_on_one_connection_is_refused() -> None:
    conn = make_connection()
    other = make_connection(name="other", repository="acme/other")
    Issue.objects.create(connection=conn, external_id="42", title="a")
    Issue.objects.create(connection=other, external_id="42", title="same id, other connection")
    # Local issues not yet created remotely have no external id: many may coexist.
    Issue.objects.create(connection=conn, external_id=None, title="local 1")
    Issue.objects.create(connection=conn, external_id=None, title="local 2")
    with pytest.raises(IntegrityError), transaction.atomic():
        Issue.objects.create(connection=conn, external_id="42", title="b")


@pytest.mark.django_db
def test_only_one_open_conflict_per_issue_and_field() -> None:
    issue = Issue.objects.create(connection=make_connection(), external_id="1", title="t")
    Conflict.objects.create(issue=issue, field="title", local_value="a", remote_value="b")
    Conflict.objects.create(issue=issue, field="title", resolved=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        Conflict.objects.create(issue=issue, field="title", local_value="c", remote_value="d")


@pytest.mark.django_db
def test_api_token_and_webhook_secret_are_not_stored_as_plaintext() -> None:
    conn = make_connection()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT api_token, webhook_secret FROM integrations_connection WHERE id = %s",
            [conn.pk],
        )
        stored_token, stored_secret = cursor.fetchone()
    assert "tok-plaintext-123456" not in stored_token
    assert "hook-secret-abcdef" not in stored_secret
    assert stored_token.startswith("enc1:")
    fresh = Connection.objects.get(pk=conn.pk)
    assert fresh.api_token == "tok-plaintext-123456"
    assert fresh.webhook_secret == "hook-secret-abcdef"


@pytest.mark.django_db
def test_webhook_url_names_provider_and_connection() -> None:
    conn = make_connection()
    assert conn.webhook_url.endswith(f"/webhooks/gitea/{conn.pk}/")


@pytest.mark.django_db
def test_issue_snapshot_is_canonical() -> None:
    issue = Issue.objects.create(
        connection=make_connection(),
        external_id="1",
        title="t",
        labels=["b", "a"],
        assignees=["zed", "amy"],
    )
    assert issue.snapshot() == {
        "title": "t",
        "body": "",
        "state": "open",
        "labels": ["a", "b"],
        "assignees": ["amy", "zed"],
        "milestone": None,
    }

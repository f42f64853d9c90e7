"""Redmine has no webhooks: its connections are polled, and the intake, the API and the admin
say so instead of offering a webhook URL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from integrations.fake_trackers.redmine import FakeRedmine
from integrations.models import Connection
from issues.api.serializers import IssueUpdateInputSerializer
from issues.polling import UNHEALTHY_POLL_SECONDS, due_connections, sync_connection
from issues.services.tokens import api_token_create
from tests.api.conftest import client_with

pytestmark = pytest.mark.django_db


def redmine_connection(**overrides: Any) -> Connection:
    values: dict[str, Any] = {
        "name": "redmine",
        "provider": "redmine",
        "base_url": "http://127.0.0.1:9",
        "repository": "widgets",
        "api_token": "redmine-key",
    }
    values.update(overrides)
    return Connection.objects.create(**values)


def test_the_webhook_intake_has_no_route_for_redmine(client: Client):
    connection = redmine_connection()

    for path in ("/webhooks/redmine/", f"/webhooks/redmine/{connection.pk}/"):
        response = client.post(path, data=b"{}", content_type="application/json")
        assert response.status_code == 404
        assert "polled" in response.json()["detail"]


def test_the_api_says_a_redmine_connection_is_polled_instead_of_giving_a_webhook_url():
    connection = redmine_connection()
    staff = get_user_model().objects.create_user("ops", is_staff=True)
    _, key = api_token_create(user=staff, connection_ids=[connection.pk])

    shown = client_with(key).get(f"/api/v1/sync/configs/{connection.pk}/").json()

    assert (shown["sync_mode"], shown["webhook_url"]) == ("polling", "")


def test_the_admin_says_a_redmine_connection_is_polled(admin_client: Client):
    connection = redmine_connection()

    page = admin_client.get(f"/admin/integrations/connection/{connection.pk}/change/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "Redmine has no webhooks. This connection is polled" in text
    assert f"/webhooks/redmine/{connection.pk}/" not in text


def test_polling_a_redmine_connection_never_marks_its_webhooks_unhealthy():
    fake = FakeRedmine(token="redmine-key")
    fake.start()
    try:
        connection = redmine_connection(base_url=fake.url, repository=fake.repository)
        sync_connection(connection_id=connection.pk, full=True)
        fake.seed_issue(title="changed in Redmine")
        run = sync_connection(connection_id=connection.pk, full=False)
    finally:
        fake.stop()

    assert run.success and run.created == 1
    assert Connection.objects.get(pk=connection.pk).webhook_healthy is True


def test_a_change_no_webhook_brought_never_marks_a_connection_without_webhooks_unhealthy():
    # Redmine (Capabilities.webhooks False) has no webhooks to miss: an old change found by the
    # poll is the normal way changes arrive, not a sign that deliveries stopped.
    fake = FakeRedmine(token="redmine-key")
    fake.start()
    try:
        connection = redmine_connection(base_url=fake.url, repository=fake.repository)
        sync_connection(connection_id=connection.pk, full=True)
        fake.seed_issue(title="old change", updated_at=timezone.now() - timedelta(hours=1))
        run = sync_connection(connection_id=connection.pk, full=False)
    finally:
        fake.stop()

    assert run.success and run.created == 1
    assert Connection.objects.get(pk=connection.pk).webhook_healthy is True


def test_a_connection_without_webhooks_is_never_polled_more_often_for_unhealthy_webhooks():
    # Even a row marked unhealthy by older code keeps its own interval: it has no webhooks
    # that could come back.
    connection = redmine_connection(
        poll_interval_seconds=3600,
        last_polled_at=timezone.now() - timedelta(seconds=UNHEALTHY_POLL_SECONDS + 30),
        webhook_healthy=False,
    )

    assert connection.pk not in due_connections()


def test_the_issue_input_serializers_refuse_a_label_redmine_does_not_define():
    """The API's and the MCP server's one validation: before, only the API's view asked the
    tracker, so an MCP update with an undefined label was accepted and failed in the outbox."""
    fake = FakeRedmine(token="redmine-key")
    fake.start()
    try:
        connection = redmine_connection(base_url=fake.url, repository=fake.repository)
        known = sorted(fake.known_labels)[0]
        refused = IssueUpdateInputSerializer(
            data={"labels": ["no-such-label"]}, context={"connection": connection}
        )
        accepted = IssueUpdateInputSerializer(
            data={"labels": [known]}, context={"connection": connection}
        )

        assert not refused.is_valid() and "labels" in refused.errors
        assert accepted.is_valid(), accepted.errors
    finally:
        fake.stop()

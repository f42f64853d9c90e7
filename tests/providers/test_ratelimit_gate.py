"""The DB-backed rate-limit gate every tracker call of a connection passes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.fake_trackers.base import Fault
from integrations.fake_trackers.gitea import FakeGitea
from integrations.models import Connection
from integrations.providers.base import RateLimitedError
from integrations.providers.registry import capabilities, client_for
from integrations.ratelimit import ConnectionGate
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db


def test_a_429_pauses_the_connection_and_every_client_of_it_waits_without_sending():
    with FakeGitea() as fake:
        issue = fake.seed_issue(title="t")
        connection = ConnectionFactory(
            base_url=fake.url, repository=fake.repository, api_token=fake.token
        )
        fake.inject(Fault(status=429, retry_after=300))
        first = client_for(connection)
        with pytest.raises(RateLimitedError):
            first.get_issue(str(issue.number))
        first.close()
        connection.refresh_from_db()
        assert connection.rate_limited_until is not None
        assert connection.rate_limited_until > timezone.now() + timedelta(seconds=290)
        fake.reset_requests()

        second = client_for(connection)  # another worker, another client: the same pause
        with pytest.raises(RateLimitedError) as caught:
            second.list_issues()
        second.close()

        assert fake.requests == []
        assert 0 < caught.value.retry_after <= 300


def test_a_shorter_hold_does_not_shorten_a_longer_pause():
    connection = ConnectionFactory()
    gate = ConnectionGate(connection.pk)
    gate.hold(600)
    gate.hold(5)
    until = Connection.objects.get(pk=connection.pk).rate_limited_until
    assert until is not None and until > timezone.now() + timedelta(seconds=590)


def test_an_expired_pause_lets_calls_through():
    connection = ConnectionFactory(rate_limited_until=timezone.now() - timedelta(seconds=1))
    ConnectionGate(connection.pk).check()  # no exception


def test_capabilities_are_found_by_provider_name():
    assert capabilities("github").label_case_insensitive is True
    assert capabilities("gitlab").assignee_case_insensitive is True
    assert capabilities("gitea").set_delta_writes is True

"""The DB-backed rate-limit gate every tracker call of a connection passes."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connection as db_connection
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


def _backends() -> int:
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def _backends_settle_at(expected: int) -> int:
    """The backend count once it reaches `expected` (a closed connection's server process
    leaves pg_stat_activity a moment after the client closed it), or the last count seen."""
    deadline = time.monotonic() + 5
    while (count := _backends()) != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return count


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_prefetched_listing_passes_the_gate_in_its_thread_and_closes_that_threads_connection():
    """The listing runs a page ahead in a thread (issue 18): its calls pass the same gate, and
    the database connection the gate opened in that thread is closed when the thread ends."""
    with FakeGitea() as fake:
        for n in range(3):
            fake.seed_issue(title=f"t{n}")
        connection = ConnectionFactory(
            base_url=fake.url, repository=fake.repository, api_token=fake.token
        )
        client = client_for(connection)
        client.max_page_size = 1  # type: ignore[misc]
        before = _backends()
        assert [len(page) for page in client.iter_issue_pages()] == [1, 1, 1]
        assert _backends_settle_at(before) == before

        Connection.objects.filter(pk=connection.pk).update(
            rate_limited_until=timezone.now() + timedelta(seconds=300)
        )
        fake.reset_requests()
        with pytest.raises(RateLimitedError):
            list(client.iter_issue_pages())
        client.close()
        assert fake.requests == []
        assert _backends_settle_at(before) == before

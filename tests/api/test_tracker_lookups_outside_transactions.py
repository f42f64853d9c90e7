"""A write that asks the tracker whether it defines a value (Redmine's labels, versions and
members) asks before any transaction is open — also with an Idempotency-Key, whose response
is stored in the same transaction as the write. A tracker that answers slowly must not hold a
PostgreSQL transaction (and its snapshot) open for as long as it takes."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connections

from integrations.fake_trackers.base import Fault
from integrations.fake_trackers.redmine import FakeRedmine
from integrations.models import Connection
from issues.models import IdempotencyRecord, Issue
from issues.services.tokens import api_token_create
from tests.api.conftest import client_with

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redmine() -> Any:
    fake = FakeRedmine(token="redmine-key")
    fake.start()
    yield fake
    fake.stop()


def _watch_lookups(fake: FakeRedmine) -> list[bool]:
    """Whether the request thread's database connection was inside a transaction at each
    moment the tracker was asked something."""
    database = connections["default"]  # the test's (and the view's) thread's connection
    seen: list[bool] = []
    fake.faults.append(
        Fault(
            status=0, count=100, method="GET", before=lambda: seen.append(database.in_atomic_block)
        )
    )
    return seen


@pytest.mark.parametrize("with_key", [False, True])
def test_create_asks_the_tracker_outside_any_transaction(redmine: FakeRedmine, with_key: bool):
    connection = Connection.objects.create(
        name="redmine",
        provider="redmine",
        base_url=redmine.url,
        repository=redmine.repository,
        api_token="redmine-key",
    )
    user = get_user_model().objects.create_user("agent")
    _, key = api_token_create(user=user, name="agent", all_connections=True)
    seen = _watch_lookups(redmine)
    headers = {"Idempotency-Key": "create-1"} if with_key else {}

    refused = client_with(key).post(
        "/api/v1/issues/",
        {"connection": connection.pk, "title": "x", "labels": ["no-such-label"]},
        format="json",
        headers=headers,
    )
    label = sorted(redmine.known_labels)[0]
    accepted = client_with(key).post(
        "/api/v1/issues/",
        {"connection": connection.pk, "title": "y", "labels": [label]},
        format="json",
        headers={"Idempotency-Key": "create-2"} if with_key else {},
    )

    assert refused.status_code == 400, refused.json()
    assert "labels" in refused.json(), refused.json()
    assert accepted.status_code == 201, accepted.json()
    assert seen and not any(seen), seen
    assert list(Issue.objects.values_list("title", flat=True)) == ["y"]
    if with_key:
        assert IdempotencyRecord.objects.filter(response_status=201).count() == 1


def test_an_update_with_a_key_asks_the_tracker_outside_any_transaction(redmine: FakeRedmine):
    connection = Connection.objects.create(
        name="redmine",
        provider="redmine",
        base_url=redmine.url,
        repository=redmine.repository,
        api_token="redmine-key",
    )
    issue = Issue.objects.create(
        connection=connection, title="t", external_id="1", external_number="1"
    )
    user = get_user_model().objects.create_user("agent")
    _, key = api_token_create(user=user, name="agent", all_connections=True)
    seen = _watch_lookups(redmine)

    refused = client_with(key).patch(
        f"/api/v1/issues/{issue.pk}/",
        {"labels": ["no-such-label"]},
        format="json",
        headers={"Idempotency-Key": "patch-1"},
    )

    assert refused.status_code == 400, refused.json()
    assert seen and not any(seen), seen


# --- the same refusals on every write path ---------------------------------------------


def test_an_mcp_update_refuses_what_the_tracker_cannot_hold(db: Any):
    """The MCP server's update validated without the issue's connection, so two assignees
    for Jira (which holds one) were accepted there and failed later in the outbox."""
    from issues.mcp.auth import Caller
    from issues.mcp.operations import ToolFailure, update_issue
    from tests.api.conftest import make_connection, make_issue

    jira = make_connection("jira", provider="jira", repository="PROJ")
    issue = make_issue(jira, 1, assignees=["alice"])
    user = get_user_model().objects.create_user("agent")
    token, _ = api_token_create(user=user, name="agent", all_connections=True)
    caller = Caller(token=token, agent_id="test", correlation_id="c1")

    with pytest.raises(ToolFailure) as refused:
        update_issue(caller, issue_id=issue.pk, data={"assignees": ["alice", "bob"]})

    assert refused.value.status == 400 and "assignees" in refused.value.body, refused.value.body
    issue.refresh_from_db()
    assert issue.assignees == ["alice"]


def test_a_merged_conflict_value_is_refused_when_the_tracker_cannot_hold_it(db: Any):
    """A merge resolution's value went through the field checks but not the tracker's: a
    milestone on a Trello card (Trello has none) was accepted and failed in the outbox."""
    from tests.api.conftest import make_conflict, make_connection, make_issue

    trello = make_connection("trello", provider="trello", repository="5f1b2c3d4e5f60718293a4b5")
    issue = make_issue(trello, 1)
    conflict = make_conflict(
        issue, "milestone", base_value=None, local_value=None, remote_value=None
    )
    user = get_user_model().objects.create_user("agent")
    _, key = api_token_create(user=user, name="agent", all_connections=True)

    answer = client_with(key).post(
        f"/api/v1/sync/conflicts/{conflict.pk}/resolve/",
        {"strategy": "merge", "values": {"milestone": "v1"}},
        format="json",
    )

    assert answer.status_code == 400, answer.json()
    assert "milestone" in answer.json()["values"], answer.json()
    conflict.refresh_from_db()
    assert conflict.resolved_at is None

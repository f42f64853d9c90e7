"""Fixtures for the API tests: users, tokens (scoped and not), connections and issues.

Issues and conflicts are seeded with the ORM here, as the mirror would hold them; every
change the tests make goes through the API under test.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache
from rest_framework.test import APIClient

from integrations.models import Connection
from issues.models import Conflict, Issue
from issues.services.tokens import api_token_create

# A loopback port nothing listens on: a test that wrongly reaches a tracker fails fast.
CLOSED_TRACKER_URL = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def _fresh_throttle_budget() -> None:
    # Throttle counters live in the process-wide cache; one test's requests must not
    # count against the next test's user (ids are reused after each rollback).
    cache.clear()


def connection_write_permissions() -> list[Permission]:
    return list(
        Permission.objects.filter(
            content_type__app_label="integrations",
            codename__in=["add_connection", "change_connection", "delete_connection"],
        )
    )


def make_connection(name: str, **overrides: Any) -> Connection:
    values: dict[str, Any] = {
        "name": name,
        "provider": "gitea",
        "base_url": CLOSED_TRACKER_URL,
        "repository": f"acme/{name}",
        "api_token": f"{name}-token",
        "webhook_secret": f"{name}-secret",
    }
    values.update(overrides)
    return Connection.objects.create(**values)


def make_issue(connection: Connection, number: int, **overrides: Any) -> Issue:
    values: dict[str, Any] = {
        "connection": connection,
        "external_id": str(1000 + number),
        "external_number": str(number),
        "title": f"Issue {number}",
        "remote_url": f"{connection.base_url}/{connection.repository}/issues/{number}",
    }
    values.update(overrides)
    issue = Issue(**values)
    issue.base = issue.snapshot()
    issue.save()
    return issue


def make_conflict(issue: Issue, field: str = "title", **overrides: Any) -> Conflict:
    values: dict[str, Any] = {
        "issue": issue,
        "field": field,
        "base_value": "base",
        "local_value": "local",
        "remote_value": "remote",
    }
    values.update(overrides)
    return Conflict.objects.create(**values)


def client_with(key: str | None, scheme: str = "Bearer") -> APIClient:
    client = APIClient()
    if key is not None:
        client.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
    return client


class World:
    """Two connections with an issue and an open conflict each, and tokens to see them."""

    def __init__(self) -> None:
        users = get_user_model().objects
        self.staff = users.create_user("admin-agent", is_staff=True)
        # Connection writes need the model permissions (SPEC §6), as in the admin.
        self.staff.user_permissions.add(*connection_write_permissions())
        self.agent = users.create_user("agent")
        self.alpha = make_connection("alpha")
        self.beta = make_connection("beta")
        self.alpha_issue = make_issue(self.alpha, 1, labels=["bug"], assignees=["alice"])
        self.beta_issue = make_issue(self.beta, 2, labels=["docs"], assignees=["bob"])
        self.alpha_conflict = make_conflict(self.alpha_issue, "body")
        self.beta_conflict = make_conflict(self.beta_issue, "body")
        _, self.staff_key = api_token_create(user=self.staff, name="staff", all_connections=True)
        self.agent_token, self.agent_key = api_token_create(
            user=self.agent, name="agent", all_connections=True
        )
        _, self.scoped_key = api_token_create(
            user=self.staff, name="alpha only", connection_ids=[self.alpha.pk]
        )

    def client(self, key: str | None = None) -> APIClient:
        return client_with(self.agent_key if key is None else key)


@pytest.fixture
def world(db: Any) -> World:
    return World()


def ids(rows: Iterable[dict[str, Any]]) -> list[int]:
    return sorted(row["id"] for row in rows)

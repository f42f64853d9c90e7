"""SPEC §8: only http/https URLs that come from a tracker are stored or rendered as links.

Issue 11 finding 5 (repro): GitHub `html_url` and GitLab `web_url` were stored unchecked and
rendered as `<a href>` on the conflict page; a forged `javascript:` URL ran in the admin.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection as db
from django.test import Client

from integrations.providers import github, gitlab
from integrations.providers.base import IssueState, RemoteIssue
from issues.engine import apply_remote_issue
from issues.models import Issue
from tests.api.conftest import World, client_with, make_conflict
from tests.shared_data import REPO_ROOT

HOSTILE_URLS = [
    "javascript:alert(document.cookie)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "//evil.example/x",
    "http:alert(1)",
]


def _github_issue(url: str) -> dict[str, Any]:
    payload = json.loads((REPO_ROOT / "tests/fixtures/github/issues__reopened.json").read_text())
    issue: dict[str, Any] = payload["issue"]
    issue["html_url"] = url
    return issue


def _gitlab_issue(url: str) -> dict[str, Any]:
    return {
        "id": 7,
        "iid": 3,
        "title": "t",
        "description": "",
        "state": "opened",
        "labels": [],
        "assignees": [],
        "milestone": None,
        "web_url": url,
    }


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_parsers_drop_links_that_are_not_http(url: str) -> None:
    assert github.issue_from_json(_github_issue(url)).remote_url == ""
    assert gitlab.issue_from_api(_gitlab_issue(url)).remote_url == ""


def test_parsers_keep_http_links() -> None:
    url = "https://github.com/acme/widgets/issues/1"
    assert github.issue_from_json(_github_issue(url)).remote_url == url
    assert gitlab.issue_from_api(_gitlab_issue(url)).remote_url == url


def _remote(url: str) -> RemoteIssue:
    return RemoteIssue(
        external_id="555",
        number="55",
        title="from the tracker",
        body="",
        state=IssueState.OPEN,
        labels=frozenset(),
        assignees=frozenset(),
        milestone=None,
        remote_url=url,
        created_at=None,
        updated_at=None,
    )


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_the_mirror_never_stores_a_link_that_is_not_http(world: World, url: str) -> None:
    """Whatever a provider hands the engine (the parsers are one guard, the column another)."""
    apply_remote_issue(connection=world.alpha, remote=_remote(url), trigger="poll")
    issue = Issue.objects.get(connection=world.alpha, external_id="555")
    assert issue.remote_url == ""
    with db.cursor() as cursor:
        cursor.execute("SELECT remote_url FROM issues_issue WHERE id = %s", [issue.pk])
        assert cursor.fetchone()[0] == ""
    Issue.objects.filter(pk=issue.pk).update(remote_url=url)  # a bulk write, too
    with db.cursor() as cursor:
        cursor.execute("SELECT remote_url FROM issues_issue WHERE id = %s", [issue.pk])
        assert cursor.fetchone()[0] == ""


def _stored_before_the_rule(issue: Issue, url: str) -> None:
    with db.cursor() as cursor:
        cursor.execute("UPDATE issues_issue SET remote_url = %s WHERE id = %s", [url, issue.pk])


def test_a_link_stored_before_the_rule_is_never_rendered(
    world: World, admin_client: Client
) -> None:
    url = "javascript:alert(document.cookie)"
    _stored_before_the_rule(world.alpha_issue, url)
    conflict = make_conflict(world.alpha_issue, "title")
    page = admin_client.get(f"/admin/issues/conflict/{conflict.pk}/resolve/").content.decode()
    assert "javascript:" not in page
    page = admin_client.get(f"/admin/issues/issue/{world.alpha_issue.pk}/change/")
    assert "javascript:" not in page.content.decode()
    api = client_with(world.agent_key).get(f"/api/v1/issues/{world.alpha_issue.pk}/").json()
    assert api["remote_url"] == ""


def test_an_http_link_is_rendered(world: World, admin_client: Client) -> None:
    conflict = make_conflict(world.alpha_issue, "title")
    page = admin_client.get(f"/admin/issues/conflict/{conflict.pk}/resolve/").content.decode()
    assert f'href="{world.alpha_issue.remote_url}"' in page

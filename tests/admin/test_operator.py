"""Issue 19: what an operator meets in the admin — edits through the one write path, the
connection form that says how to connect a tracker, tokens made in the admin, the landing
page, and errors in words."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from integrations.models import Connection
from issues.dashboard import error_in_words
from issues.models import ApiToken, Issue, OutboxEntry, SyncLog, hash_token
from issues.outbox import drain
from issues.services.tokens import api_token_create
from tests.admin.conftest import (
    PASSWORD,
    SECRET,
    TOKEN,
    Tracker,
    make_conflicts,
    messages_of,
    staff_with,
)

pytestmark = pytest.mark.django_db


def _form_data(issue: Issue, **changes: Any) -> dict[str, Any]:
    data = {
        "title": issue.title,
        "body": issue.body,
        "state": issue.state,
        "labels": ", ".join(issue.labels),
        "assignees": ", ".join(issue.assignees),
        "milestone": issue.milestone or "",
    }
    data.update(changes)
    return data


def test_an_issue_edited_in_the_admin_goes_through_the_outbox_to_the_tracker(
    tracker: Tracker, staff_client: Client, published: Any
) -> None:
    """Before: every field was read-only (a Save button that saved nothing)."""
    remote = tracker.fake.seed_issue(title="Typo in docs", labels=["docs"], notify=True)
    tracker.deliver_all()
    issue = tracker.issue(remote.number)
    url = f"/admin/issues/issue/{issue.pk}/change/"
    page = staff_client.get(url).content.decode()
    assert 'name="title"' in page and 'name="labels"' in page
    response = staff_client.post(
        url, _form_data(issue, title="Typo in the docs", labels="docs, feature")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    issue.refresh_from_db()
    assert issue.title == "Typo in the docs" and issue.labels == ["docs", "feature"]
    assert issue.sync_status == "pending"
    assert OutboxEntry.objects.filter(issue=issue).count() == 1
    log = SyncLog.objects.filter(issue=issue, trigger="manual").get()
    assert log.direction == "outbound"
    assert drain().pushed == 1
    assert tracker.fake.issues[remote.number].title == "Typo in the docs"
    assert sorted(tracker.fake.issues[remote.number].labels) == ["docs", "feature"]


def test_a_field_in_conflict_sends_the_editor_to_the_conflict_page(
    tracker: Tracker, staff_client: Client, published: Any
) -> None:
    issue = make_conflicts(tracker)
    conflict = issue.conflicts.get(field="title")
    url = f"/admin/issues/issue/{issue.pk}/change/"
    response = staff_client.post(url, _form_data(issue, title="Yet another title"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "in conflict with the tracker" in html
    assert f"/admin/issues/conflict/{conflict.pk}/resolve/" in html
    issue.refresh_from_db()
    assert issue.title != "Yet another title"
    # A field that is not in conflict can still be edited.
    response = staff_client.post(url, _form_data(issue, labels="bug, urgent"))
    assert response.status_code == 302
    issue.refresh_from_db()
    assert issue.labels == ["bug", "urgent"]


def test_merge_internals_are_for_superusers_only(tracker: Tracker, published: Any) -> None:
    remote = tracker.fake.seed_issue(title="Internals", notify=True)
    tracker.deliver_all()
    issue = tracker.issue(remote.number)
    viewer = Client()
    viewer.force_login(staff_with("issues.view_issue"))
    html = viewer.get(f"/admin/issues/issue/{issue.pk}/change/").content.decode()
    assert "Merge internals" not in html and "Versions" not in html
    root = Client()
    root.force_login(User.objects.create_superuser("boss", "", PASSWORD))
    html = root.get(f"/admin/issues/issue/{issue.pk}/change/").content.decode()
    assert "Merge internals" in html and "collapse" in html


def test_the_add_form_does_not_offer_to_keep_a_token_there_is_not(staff_client: Client) -> None:
    html = staff_client.get("/admin/integrations/connection/add/").content.decode()
    assert "Leave blank to keep" not in html
    assert 'id="sx-generate-secret"' not in html  # added by the page's script, not the server
    assert "Generate" in html  # …whose code is on the page


def _add(staff_client: Client, base_url: str, **extra: Any) -> Any:
    data = {
        "name": "acme",
        "provider": "gitea",
        "base_url": base_url,
        "repository": "acme/widgets",
        "enabled": "on",
        "api_token": TOKEN,
        "webhook_secret": SECRET,
        "direction": "bidirectional",
        "conflict_policy": "manual",
        "delete_policy": "delete_wins",
        "create_remote": "on",
        "label_filter": "bug,  docs",
        "milestone_filter": "",
        "state_filter": "all",
        "poll_interval_seconds": "5m",
        "full_sync_interval_seconds": "1d",
        "notify_emails": "ops@example.com\nlead@example.com",
        **extra,
    }
    return staff_client.post("/admin/integrations/connection/add/", data)


def test_a_connection_added_in_the_admin_is_tested_and_explained(
    db: Any, staff_client: Client, settings: Any
) -> None:
    from integrations.fake_trackers.gitea import FakeGitea

    settings.PUBLIC_URL = "http://127.0.0.1:8000"
    fake = FakeGitea(repository="acme/widgets", token=TOKEN, webhook_secret=SECRET).start()
    try:
        response = _add(staff_client, fake.url, api_token="wrong")
        assert response.status_code == 302, response.content.decode()[:3000]
        assert any("connection test failed" in m for m in messages_of(response))
        connection = Connection.objects.get(name="acme")
        assert connection.label_filter == ["bug", "docs"] and connection.milestone_filter == []
        assert connection.poll_interval_seconds == 300
        assert connection.full_sync_interval_seconds == 86_400
        assert connection.notify_emails == "ops@example.com, lead@example.com"
        page = staff_client.get(f"/admin/integrations/connection/{connection.pk}/change/")
        html = page.content.decode()
        assert 'value="5m"' in html and 'value="1d"' in html and 'value="bug, docs"' in html
        assert "Leave blank to keep the current token" in html
        assert 'data-copy="sx-webhook-url"' in html
        assert 'id="sx-webhook-unreachable"' in html and "PUBLIC_URL" in html
        assert "Issues, Issue Assigned, Issue Labeled" in html and "application/json" in html
        settings.PUBLIC_URL = "https://sync.example.com"
        html = staff_client.get(
            f"/admin/integrations/connection/{connection.pk}/change/"
        ).content.decode()
        assert "https://sync.example.com/webhooks/gitea/" in html
        assert 'id="sx-webhook-unreachable"' not in html
    finally:
        fake.stop()


def test_bad_intervals_and_addresses_are_refused_in_words(staff_client: Client) -> None:
    response = _add(
        staff_client,
        "http://127.0.0.1:9",
        poll_interval_seconds="often",
        full_sync_interval_seconds="5s",
        notify_emails="not-an-address",
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Write a number with a unit" in html and "At least 1 minute" in html
    assert "Not an e-mail address: not-an-address" in html


def test_tokens_are_made_in_the_admin_and_the_key_is_shown_once(
    tracker: Tracker, superuser: User, staff_client: Client
) -> None:
    response = staff_client.post(
        "/admin/issues/apitoken/add/",
        {"user": superuser.pk, "name": "ci bot", "connections": [tracker.connection.pk]},
    )
    assert response.status_code == 200
    key = re.search(r'id="sx-token-key"[^>]*>([^<]+)<', response.content.decode())
    assert key is not None
    token = ApiToken.objects.get(name="ci bot")
    assert token.key_hash == hash_token(key.group(1))
    assert list(token.connections.all()) == [tracker.connection] and not token.all_connections
    assert "no-store" in response["Cache-Control"]
    assert (
        key.group(1)
        not in staff_client.get(f"/admin/issues/apitoken/{token.pk}/change/").content.decode()
    )
    # Neither scope nor both: refused.
    for data in ({}, {"connections": [tracker.connection.pk], "all_connections": "on"}):
        refused = staff_client.post(
            "/admin/issues/apitoken/add/", {"user": superuser.pk, "name": "x", **data}
        )
        assert refused.status_code == 200 and ApiToken.objects.filter(name="x").count() == 0
    staff_client.post(
        "/admin/issues/apitoken/add/",
        {"user": superuser.pk, "name": "all", "all_connections": "on"},
    )
    assert ApiToken.objects.get(name="all").all_connections


def test_the_token_list_shows_active_tokens_as_active(
    superuser: User, staff_client: Client
) -> None:
    """Before: a red ✗ (the `revoked` boolean) for every token that is NOT revoked."""
    api_token_create(user=superuser, name="live", all_connections=True)
    revoked, _ = api_token_create(user=superuser, name="dead", all_connections=True)
    revoked.revoked = True
    revoked.save()
    html = staff_client.get("/admin/issues/apitoken/").content.decode()
    rows = {name: html[html.index(f">{name}<") :][:600] for name in ("live", "dead")}
    assert "icon-yes" in rows["live"].split("</tr>")[0]
    assert "icon-no" in rows["dead"].split("</tr>")[0]
    assert "Active" in html


def test_the_root_is_a_landing_page_and_the_admin_says_whose_it_is(staff_client: Client) -> None:
    """Before: `/` was Django's debug 404 listing every URL pattern."""
    root = Client().get("/")
    assert root.status_code == 200
    html = root.content.decode()
    assert "Syndarix Sync" in html and 'href="/admin/"' in html and "api/v1/" in html
    index = staff_client.get("/admin/").content.decode()
    assert "Syndarix Sync administration" in index and "Django administration" not in index
    assert 'href="/"' in index  # "View site"
    # Connections before the periodic tasks beat manages for us.
    assert index.index("Connections") < index.index("Periodic tasks")


def test_tracker_errors_are_said_in_words() -> None:
    dump = (
        "transient: HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: "
        "/api/v1/repos/acme/widgets (Caused by NewConnectionError('<urllib3.connection."
        "HTTPConnection object at 0x7f>: Failed to establish a new connection: [Errno 111] "
        "Connection refused'))"
    )
    assert error_in_words(dump) == "transient: the tracker refused the connection (127.0.0.1:9)"
    assert error_in_words("HTTP 422: assignee unknown") == "HTTP 422: assignee unknown"
    timeout = "HTTPSConnectionPool(host='git.example.com', port=443): Read timed out."
    assert error_in_words(timeout) == "the tracker did not answer in time (git.example.com:443)"


def test_the_api_says_why_an_issue_is_in_error(tracker: Tracker, published: Any) -> None:
    from integrations.fake_trackers.base import Fault
    from issues.services.issues import issue_update
    from tests.api.conftest import client_with

    remote = tracker.fake.seed_issue(title="Refused", notify=True)
    tracker.deliver_all()
    issue = tracker.issue(remote.number)
    issue_update(issue=issue, changes={"title": "Refused edit"})
    tracker.fake.inject(Fault(status=422, count=100, method="PATCH"))
    drain()
    user = User.objects.create_user("agent")
    _, key = api_token_create(user=user, all_connections=True)
    data = client_with(key).get(f"/api/v1/issues/{issue.pk}/").json()
    assert data["sync_status"] == "error" and "422" in data["sync_error"]


def test_demo_conflict_names_the_port_the_demo_really_runs_on(
    settings: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: `demo_conflict` from another terminal printed port 8000 whatever PORT was."""
    from issues.demo import default_service_url, service_url_record

    settings.VAR_DIR = tmp_path
    monkeypatch.delenv("SYNDARIX_PORT", raising=False)
    settings.PORT = 8000
    assert default_service_url() == "http://127.0.0.1:8000"
    service_url_record("http://127.0.0.1:8740/")
    assert default_service_url() == "http://127.0.0.1:8740"

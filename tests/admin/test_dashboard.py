"""The admin index's sync dashboard, the progress endpoint and the connection page's progress."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.models import Connection
from issues.dashboard import webhook_state
from issues.models import Conflict, Issue, OutboxEntry, OutboxStatus, SyncRun
from issues.tasks import sync_project_issues


def _row(html: str, connection_id: int) -> dict[str, str]:
    start = html.index(f'data-connection-row="{connection_id}"')
    row = html[start : html.index("</tr>", start)]
    cells = dict(re.findall(r'data-col="(\w+)">(.*?)</td>', row, re.S))
    return {k: re.sub(r"<[^>]+>", "", v).strip() for k, v in cells.items()}


def _connection(name: str, **fields) -> Connection:
    return Connection.objects.create(
        name=name,
        provider="gitea",
        base_url=f"http://{name}.test",
        repository=f"{name}/repo",
        **fields,
    )


def _outbox(connection, status, n):
    issue = Issue.objects.create(connection=connection, external_id=f"{status}{n}", title="t")
    return OutboxEntry.objects.create(
        connection=connection,
        issue=issue,
        operation="update",
        status=status,
        next_attempt_at=timezone.now(),
    )


@pytest.fixture
def two_connections(db):
    alpha = _connection(
        "alpha",
        webhook_secret="s3cret",
        last_webhook_at=timezone.now() - timedelta(minutes=3),
        last_polled_at=timezone.now(),
    )
    beta = _connection("beta", webhook_secret="s3cret", webhook_healthy=False)
    for n, status in enumerate(
        [OutboxStatus.PENDING, OutboxStatus.IN_PROGRESS, OutboxStatus.FAILED, OutboxStatus.DONE]
    ):
        _outbox(alpha, status, n)
    _outbox(beta, OutboxStatus.FAILED, 9)
    _outbox(beta, OutboxStatus.FAILED, 10)
    issue = Issue.objects.create(connection=alpha, external_id="c", title="conflicted")
    Conflict.objects.create(issue=issue, field="title", local_value="a", remote_value="b")
    Conflict.objects.create(issue=issue, field="body", local_value="a", remote_value="b")
    Conflict.objects.create(
        issue=issue, field="state", local_value="open", remote_value="closed", resolved=True
    )
    finished = SyncRun.objects.create(
        connection=alpha, kind="reconcile", success=True, seen=50, total=50, created=50
    )
    SyncRun.objects.filter(pk=finished.pk).update(
        started_at=timezone.now() - timedelta(minutes=10),
        finished_at=timezone.now() - timedelta(minutes=9),
    )
    SyncRun.objects.create(connection=alpha, kind="manual", seen=20, total=50)  # running
    failed = SyncRun.objects.create(
        connection=beta,
        kind="poll",
        success=False,
        seen=0,
        error="transient: Gitea at http://beta.test is unreachable",
    )
    SyncRun.objects.filter(pk=failed.pk).update(finished_at=timezone.now())
    return alpha, beta


def test_the_index_shows_one_row_per_connection(two_connections, staff_client):
    alpha, beta = two_connections
    html = staff_client.get("/admin/").content.decode()
    assert 'id="sync-dashboard"' in html
    a, b = _row(html, alpha.pk), _row(html, beta.pk)
    assert (a["pending_outbox"], a["failed_outbox"], a["open_conflicts"]) == ("2", "1", "2")
    assert (b["pending_outbox"], b["failed_outbox"], b["open_conflicts"]) == ("0", "2", "0")
    assert (a["webhook_healthy"], b["webhook_healthy"]) == ("yes", "no")
    assert "Manual sync running: 20 of 50 issues (40%)" in a["last_run"]
    assert "Incremental poll failed" in b["last_run"] and "unreachable" in b["last_run"]
    assert 'value="40"' in html  # the progress bar
    assert f"?issue__connection__id__exact={alpha.pk}" in html
    alpha_row = html[html.index(f'data-connection-row="{alpha.pk}"') :]
    assert "3\xa0minutes ago" in alpha_row[: alpha_row.index("</tr>")]


def test_the_dashboard_costs_the_same_queries_for_any_number_of_connections(
    two_connections, staff_client
):
    staff_client.get("/admin/")  # warm the session and content-type caches

    def count() -> int:
        with CaptureQueriesContext(db_connection) as queries:
            assert staff_client.get("/admin/").status_code == 200
        return len(queries)

    before = count()
    for n in range(5):
        extra = _connection(f"more{n}")
        _outbox(extra, OutboxStatus.FAILED, n)
        SyncRun.objects.create(connection=extra, kind="poll", success=True)
    assert count() == before


def test_the_dashboard_is_hidden_from_staff_who_may_not_see_connections(two_connections):
    from django.test import Client

    from tests.admin.conftest import staff_with

    client = Client()
    client.force_login(staff_with("issues.view_conflict"))
    html = client.get("/admin/").content.decode()
    assert 'id="sync-dashboard"' not in html


def test_the_progress_endpoint_reports_the_latest_runs(two_connections, staff_client):
    alpha, beta = two_connections
    data = staff_client.get(
        f"/admin/integrations/connection/progress/?ids={alpha.pk},{beta.pk},x"
    ).json()
    a, b = data["connections"][str(alpha.pk)], data["connections"][str(beta.pk)]
    assert (a["status"], a["running"], a["seen"], a["total"], a["percent"]) == (
        "running",
        True,
        20,
        50,
        40,
    )
    assert (b["status"], b["running"], b["success"]) == ("failed", False, False)
    from django.test import Client

    assert Client().get("/admin/integrations/connection/progress/").status_code == 302


def test_an_unfinished_run_past_its_lease_is_not_shown_as_running(db, staff_client):
    gone = _connection("gone")
    run = SyncRun.objects.create(connection=gone, kind="reconcile", seen=7, total=90)
    SyncRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(hours=2))
    data = staff_client.get(f"/admin/integrations/connection/progress/?ids={gone.pk}").json()
    run_json = data["connections"][str(gone.pk)]
    assert (run_json["status"], run_json["running"]) == ("abandoned", False)
    assert "did not finish" in run_json["text"]


def test_a_real_full_resync_records_progress_and_the_page_shows_it(tracker, staff_client):
    tracker.fake.seed(60)  # two pages at Gitea's 50
    result = sync_project_issues(tracker.connection.pk, True, "manual")
    assert result["status"] == "ok"
    run = SyncRun.objects.get(pk=result["run"])
    assert (run.seen, run.total, run.created) == (60, 60, 60)
    page = staff_client.get(f"/admin/integrations/connection/{tracker.connection.pk}/change/")
    html = page.content.decode()
    assert "Manual sync succeeded in" in html and "60 seen, 60 new" in html
    assert "data-sync-progress" in html and "No webhook seen yet" in html
    index = staff_client.get("/admin/").content.decode()
    assert "60 seen, 60 new" in _row(index, tracker.connection.pk)["last_run"]


def test_webhooks_healthy_is_yes_only_with_a_secret_and_a_webhook_seen(db, staff_client):
    """Before: "yes" in green for a connection without a secret that never got a webhook."""
    bare = _connection("bare")
    waiting = _connection("waiting", webhook_secret="s3cret")
    html = staff_client.get("/admin/").content.decode()
    assert _row(html, bare.pk)["webhook_healthy"] == "no secret"
    assert _row(html, waiting.pk)["webhook_healthy"] == "no webhook seen yet"
    listing = staff_client.get("/admin/integrations/connection/").content.decode()
    assert "no secret" in listing and "no webhook seen yet" in listing


def test_a_failed_outbox_count_is_highlighted(two_connections, staff_client):
    _alpha, beta = two_connections
    html = staff_client.get("/admin/").content.decode()
    row = html[html.index(f'data-connection-row="{beta.pk}"') :]
    assert 'class="sx-alert" data-col="failed_outbox"' in row[: row.index("</tr>")]


@pytest.mark.django_db
def test_a_polled_only_connection_is_not_shown_as_missing_its_webhooks() -> None:
    redmine = Connection(
        name="rm", provider="redmine", base_url="http://127.0.0.1:9", repository="p"
    )
    gitea = Connection(name="g", provider="gitea", base_url="http://127.0.0.1:9", repository="a/b")

    assert (webhook_state(redmine).text, webhook_state(redmine).ok) == (
        "polled (no webhooks)",
        True,
    )
    assert (webhook_state(gitea).text, webhook_state(gitea).ok) == ("no secret", False)

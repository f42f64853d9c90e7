"""`make demo`'s pieces: the `demo` command and `demo_conflict`, against in-test fakes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from integrations.models import Connection
from issues import demo
from issues.models import Conflict, Issue, SyncRun
from tests.admin.conftest import Tracker

ROOT = Path(__file__).resolve().parents[2]


def test_demo_seeds_connects_and_mirrors_fifty_issues(db):
    out = io.StringIO()
    call_command(
        "demo", "--once", "--fake-port", "0", "--service-url", "http://127.0.0.1:8123", stdout=out
    )
    text = out.getvalue()
    connection = Connection.objects.get(name=demo.DEMO_CONNECTION_NAME)
    issues = Issue.objects.filter(connection=connection)
    assert issues.count() == 50
    assert issues.exclude(labels=[]).exists() and issues.exclude(assignees=[]).exists()
    assert issues.exclude(milestone=None).exists() and issues.filter(state="closed").exists()
    assert connection.webhook_secret and connection.api_token == demo.DEMO_TOKEN
    assert connection.repository == demo.DEMO_REPOSITORY
    run = SyncRun.objects.get(connection=connection)
    assert run.success and run.created == 50
    assert "50 issues mirrored" in text
    assert f"http://127.0.0.1:8123/webhooks/gitea/{connection.pk}/" in text
    assert "manage.py demo_conflict" in text and "http://127.0.0.1:8123/admin/" in text
    assert "simulated Gitea stopped" in text

    # A second start is a fresh simulated Gitea: the same connection, mirror reset to match.
    call_command("demo", "--once", "--fake-port", "0", "--issues", "20", stdout=io.StringIO())
    again = Connection.objects.get(name=demo.DEMO_CONNECTION_NAME)
    assert again.pk == connection.pk
    assert Issue.objects.filter(connection=again).count() == 20
    assert SyncRun.objects.filter(connection=again).count() == 1


@pytest.fixture
def demo_tracker(db):
    fake = demo.start_fake(port=0, issues=5, secret="demo-secret")
    try:
        connection = demo.connect(fake, service_url="http://127.0.0.1:8123")
        assert fake.webhook_url == f"http://127.0.0.1:8123/webhooks/gitea/{connection.pk}/"
        demo.initial_sync(connection)
        yield Tracker(fake, connection)
    finally:
        fake.stop()


def test_demo_conflict_makes_a_conflict_to_resolve(demo_tracker):
    open_issue = min(
        Issue.objects.filter(connection=demo_tracker.connection, state="open"),
        key=lambda i: int(i.external_number),
    )
    out = io.StringIO()
    call_command("demo_conflict", "--wait", "0", stdout=out)
    assert f"Issue #{open_issue.external_number}" in out.getvalue()
    remote = demo_tracker.fake.issues[int(open_issue.external_number)]
    assert remote.title.endswith("(edited in Gitea)")  # through the tracker's HTTP API
    demo_tracker.deliver_all()  # the tracker's webhooks reach the service
    conflicts = Conflict.objects.filter(issue=open_issue, resolved=False)
    assert set(conflicts.values_list("field", flat=True)) == {"title", "body"}
    title = conflicts.get(field="title")
    assert title.local_value.endswith("(edited here)")
    assert title.remote_value.endswith("(edited in Gitea)")

    assert "appears as soon as the worker applies" in out.getvalue()  # --wait 0
    with pytest.raises(CommandError, match="open conflict on body, title"):
        call_command("demo_conflict", "--issue", open_issue.external_number, "--wait", "0")


def test_demo_conflict_explains_what_is_missing(db):
    with pytest.raises(CommandError, match="is `make demo` running"):
        call_command("demo_conflict", "--wait", "0")


def test_procfile_demo_runs_the_service_and_the_simulated_gitea():
    processes = dict(
        line.split(":", 1)
        for line in (ROOT / "Procfile.demo").read_text().splitlines()
        if line.strip()
    )
    assert set(processes) == {"web", "worker", "beat", "gitea", "mcp"}
    assert "manage.py demo" in processes["gitea"]
    assert "SYNDARIX_PORT" in processes["gitea"]
    run = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()
    )
    for name in ("web", "worker", "beat", "mcp"):
        assert processes[name] == run[name]

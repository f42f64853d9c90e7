"""Structured logs end to end: one correlation id from the request that starts a change,
through the Celery task, to the call to the tracker and the sync log — and no secret on any
line, at DEBUG, from any logger (ours, Django's, Celery's, urllib3's).

The fake Gitea runs on loopback with random credentials; every log record of a flow is
rendered with the production formatter, so what is checked is what an operator would read.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from integrations.fake_trackers.base import Fault
from integrations.fake_trackers.gitea import FakeGitea
from integrations.models import Connection, WebhookDelivery
from integrations.providers.registry import client_for
from issues.canonical import remote_snapshot
from issues.engine import RemoteState
from issues.models import Direction, Issue, OutboxEntry, SyncLog, Trigger
from issues.services.issues import issue_update
from issues.services.sync import remote_batch_apply
from issues.services.tokens import api_token_create
from issues.tasks import process_webhook_event, push_issue_to_external
from syndarix_sync.logs import REDACTED, build_formatter, correlation, get_logger, scrub_text
from tests.engine.conftest import Harness
from tests.shared_data import REPO_ROOT

TRACKER_TOKEN = "gitea-" + secrets.token_hex(16)
WEBHOOK_SECRET = "hook-" + secrets.token_hex(16)
ADMIN_PASSWORD = "pw-" + secrets.token_hex(12)


class CapturedLines(list[dict[str, Any]]):
    """The captured records rendered as the production JSON lines (after `refresh()`)."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        super().__init__()
        self.caplog = caplog
        self.formatter = build_formatter("json")

    def refresh(self) -> None:
        self[:] = [json.loads(self.formatter.format(r)) for r in self.caplog.records]


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> CapturedLines:
    """Every record at DEBUG from every logger."""
    caplog.set_level(logging.DEBUG)
    return CapturedLines(caplog)


@pytest.fixture
def gitea(db: Any) -> Iterator[Harness]:
    fake = FakeGitea(repository="acme/widgets", token=TRACKER_TOKEN, webhook_secret=WEBHOOK_SECRET)
    fake.start()
    connection = Connection.objects.create(
        name="acme",
        provider="gitea",
        base_url=fake.url,
        repository="acme/widgets",
        api_token=TRACKER_TOKEN,
        webhook_secret=WEBHOOK_SECRET,
    )
    try:
        yield Harness(fake, connection)
    finally:
        fake.stop()


def lines_with(logs: CapturedLines, cid: str) -> list[dict[str, Any]]:
    logs.refresh()
    return [line for line in logs if line.get("correlation_id") == cid]


def mirror_one(h: Harness) -> Issue:
    fake_issue = h.fake.seed_issue(title="Crash on save", notify=True)
    h.deliver_all()
    return h.issue(fake_issue.number)


def test_each_sync_log_row_has_its_line_under_the_rows_own_correlation_id(
    gitea: Harness, logs: CapturedLines
) -> None:
    """The audit's lines: one `sync_log` line per row written by a batch, under the row's
    correlation id — its delivery's inside a batch of deliveries, the run's in a
    reconciliation — with field names only."""
    h = gitea
    for n in range(3):
        h.fake.seed_issue(title=f"Issue {n}")
    client = client_for(h.connection)
    try:
        listed = client.list_issues().issues
    finally:
        client.close()
    with correlation("drain-batch"):
        remote_batch_apply(
            connection=h.connection,
            states=[
                RemoteState(remote, Trigger.WEBHOOK, correlation_id=f"delivery-{remote.number}")
                for remote in listed
            ],
        )
    rows = dict(SyncLog.objects.values_list("correlation_id", "pk"))
    for remote in listed:
        cid = f"delivery-{remote.number}"
        (line,) = [x for x in lines_with(logs, cid) if x["event"] == "sync_log"]
        assert line["sync_log"] == rows[cid] and line["action"] == "create"
        assert line["fields"] == sorted(remote_snapshot(remote))
    assert not [x for x in lines_with(logs, "drain-batch") if x["event"] == "sync_log"]

    for n in range(3, 7):
        h.fake.seed_issue(title=f"Issue {n}")
    run = h.poll(full=True)
    (run_id,) = set(
        SyncLog.objects.filter(trigger=Trigger.RECONCILE).values_list("correlation_id", flat=True)
    )
    lines = [x for x in lines_with(logs, run_id) if x["event"] == "sync_log"]
    assert run.created == 4 and len(lines) == 4
    assert {x["sync_log"] for x in lines} == set(
        SyncLog.objects.filter(trigger=Trigger.RECONCILE).values_list("pk", flat=True)
    )
    assert "Issue" not in json.dumps(lines)  # no title on any line


def test_one_id_follows_a_webhook_through_the_task_to_the_tracker_and_the_sync_log(
    gitea: Harness, logs: CapturedLines
) -> None:
    h = gitea
    h.connection.delete_policy = "update_wins"  # the webhook below makes us write to Gitea
    h.connection.save()
    issue = mirror_one(h)
    issue_update(issue=issue, changes={"body": "local edit"})
    h.fake.delete_issue(int(issue.external_number))
    (hook,) = h.take_hooks()

    cid = "gitea-delivery-7f3a"
    response = h.client.post(
        "/webhooks/gitea/",
        data=hook.body,
        content_type="application/json",
        headers={
            **{k: v for k, v in hook.headers.items() if k.lower() != "content-type"},
            "X-Correlation-ID": cid,
        },
    )
    assert response.status_code == 202
    assert response["X-Correlation-ID"] == cid == response.json()["correlation_id"]
    delivery = WebhookDelivery.objects.get(pk=response.json()["delivery"])
    assert delivery.correlation_id == cid

    # The task runs outside the request (its context is gone); it binds the id from the row.
    process_webhook_event.apply(args=[delivery.pk])
    push_issue_to_external.apply(args=[issue.pk])

    events = {(line["event"], line.get("method")) for line in lines_with(logs, cid)}
    assert ("request", "POST") in events
    assert ("webhook", None) in events
    assert ("delivery_processed", None) in events
    assert ("tracker_request", "POST") in events  # the re-create in Gitea
    assert ("pushed", None) in events
    assert ("sync_log", None) in events
    task_lines = [line for line in lines_with(logs, cid) if line.get("task")]
    assert {line["task"] for line in task_lines} >= {"issues.tasks.process_webhook_event"}
    directions = set(SyncLog.objects.filter(correlation_id=cid).values_list("direction", flat=True))
    assert directions == {Direction.INBOUND, Direction.OUTBOUND}


def test_an_api_callers_id_reaches_the_outbox_the_tracker_call_and_the_sync_log(
    gitea: Harness, logs: CapturedLines
) -> None:
    h = gitea
    issue = mirror_one(h)
    user = get_user_model().objects.create_user("agent", password=ADMIN_PASSWORD)
    _, key = api_token_create(user=user, name="agent", all_connections=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    cid = "agent-run-42"
    response = client.patch(
        f"/api/v1/issues/{issue.pk}/",
        {"title": "Crash on save (agent)"},
        format="json",
        headers={"X-Correlation-ID": cid},
    )
    assert response.status_code == 200, response.content
    assert response["X-Correlation-ID"] == cid
    assert OutboxEntry.objects.get(issue=issue).correlation_id == cid
    push_issue_to_external.apply(args=[issue.pk])

    lines = lines_with(logs, cid)
    assert any(
        line["event"] == "tracker_request" and line["method"] == "PATCH" and line["status"] < 300
        for line in lines
    )
    # Two outbound rows, both under the caller's id: the local change, then the push.
    outbound = SyncLog.objects.filter(issue=issue, direction=Direction.OUTBOUND)
    assert [row.correlation_id for row in outbound] == [cid, cid]
    assert h.fake.issues[int(issue.external_number)].title == "Crash on save (agent)"
    # The caller's key is neither on a line nor in the id of any line.
    logs.refresh()
    assert key not in json.dumps(list(logs))


@pytest.mark.parametrize(
    "given",
    ["has space", "x" * 65, "new\nline", 'quote"d', "ünï", ""],
    ids=["space", "too-long", "newline", "quote", "non-ascii", "empty"],
)
def test_an_implausible_caller_id_is_replaced_by_a_fresh_one(db: Any, given: str) -> None:
    from django.test import Client

    response = Client().get("/healthz", headers={"X-Correlation-ID": given} if given else {})
    cid = response["X-Correlation-ID"]
    assert cid != given and len(cid) == 32 and cid.isalnum()


def test_no_secret_reaches_any_log_line_even_at_debug_and_on_errors(
    gitea: Harness, logs: CapturedLines, settings: Any
) -> None:
    h = gitea
    issue = mirror_one(h)
    user = get_user_model().objects.create_user("agent", password=ADMIN_PASSWORD)
    _, key = api_token_create(user=user, name="agent", all_connections=True)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    # The happy paths: a poll, an API edit pushed, a webhook applied.
    h.poll(full=True)
    api.patch(f"/api/v1/issues/{issue.pk}/", {"body": "edited"}, format="json")
    h.drain()
    h.fake.edit_issue(int(issue.external_number), title="Renamed there")
    h.deliver_all()
    # The unhappy ones: a tracker refusing our token, a forged webhook, a bad API key, the
    # admin login with a wrong and then the right password.
    h.fake.inject(Fault(method="GET", path_contains="/issues", status=401, count=2))
    h.poll()
    h.client.post(
        "/webhooks/gitea/",
        data=b'{"secret": "x"}',
        content_type="application/json",
        headers={"X-Gitea-Event": "issues", "X-Gitea-Signature": "0" * 64},
    )
    APIClient().get("/api/v1/issues/", HTTP_AUTHORIZATION=f"Token {key}x")
    user.is_staff = user.is_superuser = True
    user.save()
    h.client.post("/admin/login/", {"username": "agent", "password": ADMIN_PASSWORD + "x"})
    h.client.post("/admin/login/", {"username": "agent", "password": ADMIN_PASSWORD})
    # A careless line of our own: structured keys and free text are both scrubbed.
    get_logger("tests").warning("oops", api_token=TRACKER_TOKEN, detail=f"token {key}")
    logging.getLogger("tests").error("Authorization: token %s", TRACKER_TOKEN)

    logs.refresh()
    text = "\n".join(json.dumps(line) for line in logs)
    assert len(logs) > 30  # the flows above really logged, at DEBUG, from many loggers
    assert {"urllib3.connectionpool", "integrations.providers.http"} <= {
        line.get("logger") for line in logs
    }
    for secret in (
        TRACKER_TOKEN,
        WEBHOOK_SECRET,
        key,
        ADMIN_PASSWORD,
        settings.SECRET_KEY,
        settings.FIELD_ENCRYPTION_KEY,
    ):
        assert secret not in text
    assert REDACTED in text  # the careless lines were logged, with the secret masked


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: token abc123", f"Authorization: {REDACTED}"),
        ("Authorization: Bearer abc123", f"Authorization: {REDACTED}"),
        ('{"PRIVATE-TOKEN": "glpat-x1"}', f'{{"PRIVATE-TOKEN": "{REDACTED}"}}'),
        ("GET /api?access_token=abc&page=2", f"GET /api?access_token={REDACTED}&page=2"),
        ("password=hunter2 user=bob", f"password={REDACTED} user=bob"),
        ("{'api_token': 'tok-1', 'n': 2}", f"{{'api_token': '{REDACTED}', 'n': 2}}"),
        ("webhook secret: s3cr3t", f"webhook secret: {REDACTED}"),
        ("3 issues synced in 120 ms", "3 issues synced in 120 ms"),
        ("tokens are hashed", "tokens are hashed"),
    ],
)
def test_credentials_in_free_text_are_masked(text: str, expected: str) -> None:
    assert scrub_text(text) == expected


def test_the_bound_id_is_restored_after_a_nested_block() -> None:
    with correlation("outer") as outer, correlation() as inner:
        assert inner == outer == "outer"
        with correlation("inner") as nested:
            assert nested == "inner"
    with correlation() as fresh:
        assert fresh != "outer" and len(fresh) == 32


def test_the_configured_handlers_write_one_json_object_per_line(tmp_path: Any) -> None:
    """The real settings (not the test capture): stdlib and structlog lines, JSON, with the
    bound id and without the secret."""
    code = (
        "import logging, django;"
        "django.setup();"
        "from syndarix_sync.logs import correlation, get_logger;"
        "cm = correlation('cid-from-subprocess'); cm.__enter__();"
        "logging.getLogger('celery.worker').warning('plain %s line', 'stdlib');"
        "get_logger('issues.engine').info('sync_log', issue=1, api_token='tok-123');"
        "1/0"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "syndarix_sync.settings",
        "LOG_FORMAT": "json",
        "SYNDARIX_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,  # the snippet ends in an uncaught error on purpose
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert [line["event"] for line in lines] == ["plain stdlib line", "sync_log"], done.stderr
    assert all(line["correlation_id"] == "cid-from-subprocess" for line in lines)
    assert all({"timestamp", "level", "logger"} <= set(line) for line in lines)
    assert lines[1]["api_token"] == REDACTED and "tok-123" not in done.stderr


def test_console_format_is_for_humans_and_still_masks_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    console = build_formatter("console")
    with correlation("c-1"):  # a handler formats as the record is logged, inside the block
        get_logger("tests").warning("push_failed", api_token=TRACKER_TOKEN)
        logging.getLogger("tests").warning("payload %s", {"api_token": TRACKER_TOKEN})
        structured, foreign = (console.format(r) for r in caplog.records[-2:])
    # structlog's events are masked before any handler sees them (a stdlib record is masked
    # by our formatter, the only one production installs).
    assert caplog.records[-2].msg["api_token"] == REDACTED  # type: ignore[index]
    assert "push_failed" in structured and "correlation_id=c-1" in structured
    assert "payload" in foreign and "correlation_id=c-1" in foreign
    for line in (structured, foreign):
        assert TRACKER_TOKEN not in line and not line.startswith("{")

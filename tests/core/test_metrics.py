from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from django.test import Client

from integrations.models import Connection
from issues.models import Conflict, Issue
from tests.shared_data import REPO_ROOT


def scrape() -> str:
    response = Client().get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample, 0 when absent (multiprocess counters accumulate per run)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.django_db
def test_metrics_exposes_the_spec_names() -> None:
    text = scrape()
    for name in (
        "sync_operations_total",
        "sync_duration_seconds",
        "sync_conflicts_total",
        "sync_mappings_total",
        "webhook_deliveries_total",
        "outbox_pushes_total",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text or f"# TYPE {name}" in text, name
    types = [line for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(types) == len(set(types)), "a metric family is listed twice"


@pytest.mark.django_db
def test_a_counter_nobody_has_touched_is_listed_once_and_a_touched_one_once_too() -> None:
    from syndarix_sync.metrics import OUTBOX_PUSHES

    OUTBOX_PUSHES.labels(platform="listed-test", result="pushed").inc()
    text = scrape()
    assert len(re.findall(r"^# TYPE outbox_pushes(_total)? counter$", text, re.M)) == 1
    assert sample(text, "outbox_pushes_total", platform="listed-test", result="pushed") >= 1


@pytest.mark.django_db
def test_gauges_are_read_from_the_database() -> None:
    conn = Connection.objects.create(
        name="c", provider="gitlab", base_url="http://x", repository="g/p"
    )
    issue = Issue.objects.create(connection=conn, external_id="1", title="t")
    Issue.objects.create(connection=conn, external_id=None, title="local only")
    Conflict.objects.create(issue=issue, field="title", local_value="a", remote_value="b")
    text = scrape()
    assert sample(text, "sync_mappings_total", platform="gitlab") == 1
    assert sample(text, "sync_conflicts_open", platform="gitlab") == 1


@pytest.mark.django_db
def test_webhook_answers_are_counted() -> None:
    before = sample(scrape(), "webhook_deliveries_total", provider="gitea", outcome="rejected_404")
    Client().post("/webhooks/gitea/", data=b"{}", content_type="application/json")
    after = sample(scrape(), "webhook_deliveries_total", provider="gitea", outcome="rejected_404")
    assert after == before + 1


@pytest.mark.django_db
def test_a_worker_process_counter_appears_in_what_the_web_serves() -> None:
    assert os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    before = sample(scrape(), "sync_operations_total", platform="worker-test", status="success")
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE',"
        " 'syndarix_sync.settings'); django.setup();"
        "from syndarix_sync.metrics import SYNC_OPERATIONS;"
        "SYNC_OPERATIONS.labels(platform='worker-test', status='success').inc(3)"
    )
    subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, check=True, timeout=60, env={**os.environ}
    )
    after = sample(scrape(), "sync_operations_total", platform="worker-test", status="success")
    assert after == before + 3

"""Prometheus metrics, shared by the web and worker processes.

Counters and histograms run in prometheus-client's multiprocess mode: every process (each
gunicorn worker, each Celery worker process) writes its samples to files under
`PROMETHEUS_MULTIPROC_DIR`, and `/metrics` aggregates them — so what a worker counts shows up
in what the web serves. That directory must be shared by the processes (one host, or a
shared volume) and emptied when the service starts (`make run` does). Gauges that describe
the state of the sync (pending outbox, open conflicts, mirrored issues) are read from the
database at scrape time instead: they are facts about rows, not about any one process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

SYNC_OPERATIONS = Counter(
    "sync_operations",
    "Changes applied by the sync engine, by direction outcome.",
    ["platform", "status"],
)
SYNC_DURATION = Histogram(
    "sync_duration_seconds",
    "Duration of sync runs (polls and reconciliations).",
    ["platform"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
SYNC_CONFLICTS = Counter(
    "sync_conflicts",
    "Concurrent edits of one field: recorded for a human (manual) or settled by policy.",
    ["platform", "type"],
)
WEBHOOK_DELIVERIES = Counter(
    "webhook_deliveries",
    "Webhook requests by how they were answered.",
    ["provider", "outcome"],
)
OUTBOX_PUSHES = Counter(
    "outbox_pushes",
    "Outbox drain results per issue batch: pushed, skipped (nothing to write), retried, failed.",
    ["platform", "result"],
)


class DatabaseStateCollector(Collector):
    """Gauges computed from the database on each scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from integrations.models import Connection
        from issues.models import OutboxStatus

        mappings = GaugeMetricFamily(
            "sync_mappings_total",
            "Issues mirrored (linked to a remote issue).",
            labels=["platform"],
        )
        for provider, count in Connection.objects.values_list("provider").annotate(
            mappings=Count("issues", filter=Q(issues__external_id__isnull=False), distinct=True),
        ):
            mappings.add_metric([provider], count)
        yield mappings

        outbox = GaugeMetricFamily(
            "outbox_rows", "Outbox rows by status.", labels=["platform", "status"]
        )
        for provider, status, count in (
            Connection.objects.values_list("provider", "outbox__status")
            .annotate(n=Count("outbox"))
            .exclude(outbox__status=None)
        ):
            if status != OutboxStatus.DONE:
                outbox.add_metric([provider, status], count)
        yield outbox

        conflicts = GaugeMetricFamily(
            "sync_conflicts_open", "Open conflicts awaiting a human.", labels=["platform"]
        )
        for provider, count in Connection.objects.values_list("provider").annotate(
            n=Count("issues__conflicts", filter=Q(issues__conflicts__resolved=False))
        ):
            conflicts.add_metric([provider], count)
        yield conflicts


_DECLARED = (SYNC_OPERATIONS, SYNC_DURATION, SYNC_CONFLICTS, WEBHOOK_DELIVERIES, OUTBOX_PUSHES)


class _MultiProcessWithDeclared(Collector):
    """The multiprocess files, plus every declared metric no process has touched yet.

    A counter appears in the files only once some process has counted; until then a fresh
    install would serve no `sync_operations_total` at all, and alerts written against it
    would see "no data" instead of zero. Listing it (HELP and TYPE, no samples) fixes that.
    """

    def __init__(self) -> None:
        self._files = multiprocess.MultiProcessCollector(None)

    def collect(self) -> Iterator[Metric]:
        seen = set()
        for family in self._files.collect():
            seen.add(family.name)
            yield family
        for declared in _DECLARED:
            for family in declared.describe():
                if family.name not in seen:
                    yield family


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry.register(_MultiProcessWithDeclared())
        output = generate_latest(registry)
    else:
        output = generate_latest()
    db_registry = CollectorRegistry()
    db_registry.register(DatabaseStateCollector())
    output += generate_latest(db_registry)
    return HttpResponse(output, content_type=CONTENT_TYPE_LATEST)

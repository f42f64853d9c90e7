"""Benchmark 5: local edits out to the tracker, coalesced per issue.

E edits spread over I issues are made through the service layer (what the REST API calls)
while the worker is paused — so they pile up as they would behind a busy worker — then the
worker is resumed and the outbox drained. Counted at the fake: the write calls (what the
coalescing promises: one per issue) and every request (a push reads the issue first).
The tracker's webhooks for those writes come back to the web (echoes): they must change
nothing and push nothing.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import Context, cprofile_to, make_connection, timed
from bench.services import wait_for

WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")


def _setup(ctx: Context, name: str) -> tuple[Any, Any, list[Any]]:
    from issues.models import Issue
    from issues.polling import sync_connection

    fake = ctx.services.start_fake("gitea")
    fake.seed(ctx.sizes.outbound_issues)
    connection = make_connection(name, fake)
    sync_connection(connection_id=connection.pk, full=True)
    fake.set_webhook_url(f"{ctx.services.web_url}/webhooks/gitea/{connection.pk}/")
    issues = list(Issue.objects.filter(connection=connection).order_by("id"))
    return fake, connection, issues


def _edit_all(ctx: Context, issues: list[Any]) -> None:
    from issues.services.issues import issue_update

    for index in range(ctx.sizes.outbound_edits):
        issue = issues[index % len(issues)]
        # Every issue gets both fields edited, interleaved (title, body, title, …).
        field = "title" if (index // len(issues)) % 2 == 0 else "body"
        issue_update(issue=issue, changes={field: f"Local {field} edit {index}"})


def _open_rows(connection: Any) -> int:
    from issues.models import OutboxEntry, OutboxStatus

    return int(
        OutboxEntry.objects.filter(
            connection=connection, status__in=[OutboxStatus.PENDING, OutboxStatus.IN_PROGRESS]
        ).count()
    )


def run(ctx: Context) -> dict[str, Any]:
    from integrations.models import DeliveryStatus, WebhookDelivery
    from issues.models import Issue, OutboxEntry, OutboxStatus

    sizes, worker = ctx.sizes, ctx.services.worker
    fake, connection, issues = _setup(ctx, "bench-outbound")
    try:
        fake.reset()
        worker.pause()
        try:
            edit_seconds, _ = timed(lambda: _edit_all(ctx, issues))
            rows = OutboxEntry.objects.filter(connection=connection).count()
            start = time.perf_counter()
        finally:
            worker.resume()
        wait_for(
            lambda: _open_rows(connection) == 0,
            timeout=sizes.backlog_timeout,
            what="draining the outbox",
            interval=0.02,
        )
        drain_seconds = time.perf_counter() - start
        stats = fake.stats()
        writes = sum(stats["by_method"].get(m, 0) for m in WRITE_METHODS)
        ctx.log(
            f"  outbound: {sizes.outbound_edits} edits → {rows} outbox rows → {writes} "
            f"write calls ({stats['total']} requests) in {drain_seconds:.2f} s"
        )

        # The echoes: one webhook per write comes back through the web and the worker.
        def echoes_done() -> bool:
            deliveries = WebhookDelivery.objects.filter(connection=connection)
            return (
                deliveries.count() >= writes
                and not deliveries.filter(
                    status__in=[DeliveryStatus.RECEIVED, DeliveryStatus.PROCESSING]
                ).exists()
            )

        try:
            wait_for(echoes_done, timeout=sizes.backlog_timeout, what="echo webhooks")
            time.sleep(0.5)  # anything an echo would have queued has had time to show
            echoes_settled = True
        except TimeoutError:
            echoes_settled = False
        after = fake.stats()
        writes_after_echoes = sum(after["by_method"].get(m, 0) for m in WRITE_METHODS) - writes
        new_rows = OutboxEntry.objects.filter(connection=connection).count() - rows
        failed = OutboxEntry.objects.filter(
            connection=connection, status=OutboxStatus.FAILED
        ).count()
        tracker = fake.state()
        mirror: dict[str, tuple[str, str]] = {
            number: (title, body)
            for number, title, body in Issue.objects.filter(connection=connection).values_list(
                "external_number", "title", "body"
            )
        }
        differing = sum(
            1
            for number, fields in tracker.items()
            if mirror.get(number) != (fields["title"], fields["body"])
        )
        echo_count = WebhookDelivery.objects.filter(connection=connection).count()
    finally:
        fake.close()
    scale = 1000 / sizes.outbound_edits
    return {
        "outbound_calls_per_1000_edits": round(writes * scale, 1),
        "details": {
            "edits": sizes.outbound_edits,
            "issues": len(issues),
            "fields_edited": "title and body of each issue, interleaved",
            "edit_path": "issues.services.issues.issue_update (what the REST API calls)",
            "edit_seconds": round(edit_seconds, 2),
            "edits_per_s": round(sizes.outbound_edits / max(edit_seconds, 1e-9), 1),
            "outbox_rows_written": rows,
            "write_calls": writes,
            "requests_total": stats["total"],
            "requests_by_method": stats["by_method"],
            "drain_seconds": round(drain_seconds, 3),
            "rows_failed": failed,
            "echo_webhooks_received": echo_count,
            "echoes_settled": echoes_settled,
            "writes_caused_by_echoes": writes_after_echoes,
            "outbox_rows_caused_by_echoes": new_rows,
            "tracker_issues_differing_from_mirror": differing,
        },
    }


def profile(ctx: Context) -> list[str]:
    """cProfile of the drain in this process (the worker runs the same function)."""
    from issues.outbox import drain

    fake, _connection, issues = _setup(ctx, "bench-outbound-profile")
    ctx.services.worker.pause()
    try:
        _edit_all(ctx, issues)
        out = ctx.profile_path("outbound-drain.cprofile.txt")
        cprofile_to(out, "cProfile of draining the outbox in-process", drain)
    finally:
        ctx.services.worker.resume()
        fake.close()
    return [out.name]

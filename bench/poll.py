"""Benchmark 4: the incremental poll of an unchanged repository.

Many connections (all on one fake Gitea) are primed — a full sync mirrors the issues, a
poll stores the ETag of the empty "changed since" page — then each is polled again:
in this process, one after another (time per connection, requests per poll), and through the
Celery worker (polls per minute that one worker node sustains).
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import Context, count_queries, cprofile_to, make_connection, ms
from bench.loadgen import percentile
from bench.services import wait_for


def _prime(ctx: Context) -> tuple[Any, list[int]]:
    from issues.polling import sync_connection

    fake = ctx.services.start_fake("gitea")
    fake.seed(ctx.sizes.poll_issues)
    ids = []
    for index in range(ctx.sizes.poll_connections):
        connection = make_connection(f"bench-poll-{index:04d}", fake)
        sync_connection(connection_id=connection.pk, full=True)  # mirrors the issues
        for _ in range(2):  # the ETag of the empty "changed since" page is stored
            sync_connection(connection_id=connection.pk, full=False)
        ids.append(connection.pk)
    return fake, ids


def run(ctx: Context) -> dict[str, Any]:
    from issues.models import SyncRun
    from issues.polling import sync_connection
    from issues.tasks import sync_project_issues
    from syndarix_sync.queueing import publish

    fake, ids = _prime(ctx)
    try:
        # In this process, sequentially.
        fake.reset()
        durations = []
        failed = 0
        with count_queries() as queries:
            for connection_id in ids:
                start = time.perf_counter()
                run = sync_connection(connection_id=connection_id, full=False)
                durations.append(time.perf_counter() - start)
                failed += int(not run.success)
        stats = fake.stats()
        not_modified = int(stats["by_status"].get("304", 0))
        per_poll_requests = stats["total"] / len(ids)
        mean = sum(durations) / len(durations)
        ctx.log(
            f"  poll: {per_poll_requests:g} request(s) per unchanged poll "
            f"({stats['by_status']}), {ms(mean)} ms per connection in-process"
        )

        # Through the worker: queue one poll per connection, time until all are recorded.
        before = SyncRun.objects.filter(connection_id__in=ids).count()
        fake.reset()
        start = time.perf_counter()
        for connection_id in ids:
            publish(sync_project_issues, connection_id, False)
        elapsed = wait_for(
            lambda: (
                SyncRun.objects.filter(connection_id__in=ids, finished_at__isnull=False).count()
                >= before + len(ids)
            ),
            timeout=max(60.0, len(ids) * 0.5),
            what="polls through the worker",
            interval=0.05,
        )
        elapsed = time.perf_counter() - start
        worker_stats = fake.stats()
        per_minute = len(ids) / elapsed * 60
        ctx.log(
            f"  poll: {len(ids)} polls through the worker in {elapsed:.2f} s → "
            f"{per_minute:,.0f}/min"
        )
    finally:
        fake.close()
    return {
        "unchanged_poll_requests": round(per_poll_requests, 3),
        "polls_per_minute": round(per_minute),
        "details": {
            "connections": len(ids),
            "requests_by_status": stats["by_status"],
            "polls_answered_304": not_modified,
            "polls_failed": failed,
            "time_per_connection_ms": {
                "mean": ms(mean),
                "p50": ms(percentile(durations, 50)),
                "p99": ms(percentile(durations, 99)),
            },
            "queries_per_poll": round(queries.count / len(ids), 1),
            "polls_per_minute_one_process_sequential": round(60 / mean),
            "worker": ctx.services.worker.description,
            "worker_seconds": round(elapsed, 2),
            "worker_requests_by_status": worker_stats["by_status"],
        },
    }


def profile(ctx: Context) -> list[str]:
    from issues.polling import sync_connection

    fake, ids = _prime(ctx)
    try:
        out = ctx.profile_path("poll.cprofile.txt")
        cprofile_to(
            out,
            f"cProfile of {len(ids)} unchanged polls, in-process",
            lambda: [sync_connection(connection_id=i, full=False) for i in ids],
        )
    finally:
        fake.close()
    return [out.name]

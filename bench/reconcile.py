"""Benchmark 3: full reconciliation of N issues, against a naive one-save-per-issue script.

Runs in this process (the same `sync_connection` the Celery task calls) so that every SQL
statement can be counted; the fakes serve from their own processes.
"""

from __future__ import annotations

import math
from typing import Any

from bench.common import Context, count_queries, cprofile_to, make_connection, timed
from bench.fakes import FakeHandle


def _naive(connection: Any) -> dict[str, Any]:
    """What a typical script does: list the pages one after another, one ORM save per issue."""
    from integrations.providers.registry import client_for
    from issues.canonical import remote_snapshot
    from issues.models import Issue

    client = client_for(connection)
    seen = 0
    try:
        for page in client.fetch_issue_pages(since=None):  # one page after another
            for remote in page:
                snapshot = remote_snapshot(remote)
                Issue.objects.update_or_create(
                    connection=connection,
                    external_id=remote.external_id,
                    defaults={
                        **snapshot,
                        "external_number": remote.number,
                        "remote_url": remote.remote_url,
                        "base": snapshot,
                        "remote_created_at": remote.created_at,
                        "remote_updated_at": remote.updated_at,
                    },
                )
                seen += 1
    finally:
        client.close()
    return {"seen": seen, "requests": getattr(client, "requests_made", None)}


def _one_provider(ctx: Context, provider: str, *, naive: bool) -> dict[str, Any]:
    from issues.models import Issue
    from issues.polling import sync_connection

    n = ctx.sizes.reconcile_issues
    fake: FakeHandle = ctx.services.start_fake(provider)
    try:
        fake.seed(n)
        expected = math.ceil(n / fake.max_page_size)
        connection = make_connection(f"bench-reconcile-{provider}", fake)

        fake.reset()
        with count_queries() as queries:
            seconds, run = timed(lambda: sync_connection(connection_id=connection.pk, full=True))
        stats = fake.stats()
        mirrored = Issue.objects.filter(connection=connection).count()
        first = {
            "seconds": round(seconds, 3),
            "requests": stats["total"],
            "run_requests": run.requests,
            "queries": queries.count,
            "queries_by_kind": dict(queries.kinds),
            "mirrored": mirrored,
            "created": run.created,
            "success": run.success,
            "error": run.error,
        }
        ctx.log(
            f"  reconcile {provider}: {n} issues in {seconds:.2f} s, {stats['total']} "
            f"requests (expected {expected}), {queries.count} queries"
        )

        from issues.models import SyncLog

        first["audit_entries"] = SyncLog.objects.filter(
            connection=connection, action="create"
        ).count()
        # The first incremental poll after the import: nothing changed since.
        fake.reset()
        with count_queries() as queries:
            seconds, run = timed(lambda: sync_connection(connection_id=connection.pk, full=False))
        poll_after = {
            "seconds": round(seconds, 3),
            "requests": fake.stats()["total"],
            "queries": queries.count,
            "seen": run.seen,
        }

        # The daily pass over an unchanged mirror.
        fake.reset()
        with count_queries() as queries:
            seconds, run = timed(lambda: sync_connection(connection_id=connection.pk, full=True))
        again = {
            "seconds": round(seconds, 3),
            "requests": fake.stats()["total"],
            "queries": queries.count,
            "unchanged": run.unchanged,
        }

        outcome = {
            "issues": n,
            "max_page_size": fake.max_page_size,
            "expected_requests": expected,
            "requests_equal_expected": first["requests"] == expected,
            "initial": first,
            "first_poll_after": poll_after,
            "unchanged": again,
        }
        if naive:
            naive_connection = make_connection(f"bench-naive-{provider}", fake)
            fake.reset()
            with count_queries() as queries:
                naive_seconds, counted = timed(lambda: _naive(naive_connection))
            outcome["naive"] = {
                "seconds": round(naive_seconds, 3),
                "queries": queries.count,
                "requests": counted["requests"],
                "saved": counted["seen"],
            }
            outcome["naive_ratio"] = round(naive_seconds / max(first["seconds"], 1e-9), 2)
            ctx.log(
                f"  naive {provider}: {naive_seconds:.2f} s, {queries.count} queries "
                f"(ratio {outcome['naive_ratio']:.1f}x)"
            )
        return outcome
    finally:
        fake.close()


def run(ctx: Context) -> dict[str, Any]:
    # The naive baseline runs once, on Gitea (the primary provider): at one transaction per
    # issue it is the slowest part of the whole run.
    gitea = _one_provider(ctx, "gitea", naive=True)
    github = _one_provider(ctx, "github", naive=False)
    return {
        "reconcile_10k_seconds": gitea["initial"]["seconds"],
        "reconcile_10k_requests": gitea["initial"]["requests"],
        "reconcile_naive_ratio": gitea["naive_ratio"],
        "reconcile_10k_seconds_github": github["initial"]["seconds"],
        "reconcile_10k_requests_github": github["initial"]["requests"],
        "details": {"gitea": gitea, "github": github},
    }


def profile(ctx: Context) -> list[str]:
    """cProfile of one full reconciliation into an empty mirror (Gitea)."""
    from issues.polling import sync_connection

    fake = ctx.services.start_fake("gitea")
    try:
        fake.seed(ctx.sizes.reconcile_issues)
        connection = make_connection("bench-reconcile-profile", fake)
        out = ctx.profile_path("reconcile.cprofile.txt")
        cprofile_to(
            out,
            f"cProfile of a full reconciliation of {ctx.sizes.reconcile_issues} "
            "Gitea issues into an empty mirror (the calling thread: the listing itself runs "
            "a page ahead in a prefetch thread, so time in next() is the wait for a page "
            "that was not ready yet)",
            lambda: sync_connection(connection_id=connection.pk, full=True),
        )
    finally:
        fake.close()
    return [out.name]

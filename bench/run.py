"""`make bench`: run the benchmarks, print a table, write the results as JSON.

    python -m bench.run            # the real thing: PostgreSQL, Redis, gunicorn, Celery
    python -m bench.run --smoke    # tiny sizes on the embedded defaults (what the tests run)

Results go to $BENCH_RESULTS (default bench-results.json at the repository root); profiles
of missed targets to a `<results name>-profiles/` directory beside it; the logs of the
processes the run started to var/bench/ (the smoke run keeps none).

Environment: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/syndarix_bench —
dropped and re-created each run; its name must start with `syndarix_bench`),
BENCH_REDIS_URL (default redis://127.0.0.1:6379/14), BENCH_WEB_WORKERS / BENCH_WEB_THREADS
(gunicorn, default 2 x 16), BENCH_WORKER_CONCURRENCY (Celery, default 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import FULL, SMOKE, Context, Sizes, cprofile_to
from bench.services import REPO, BenchEnvironmentError, Services

REQUIRED_KEYS = (
    "intake_per_s",
    "ack_p50_ms",
    "ack_p99_ms",
    "webhook_to_mirror_p50_ms",
    "webhook_to_mirror_p99_ms",
    "webhook_to_mirror_p99_ms_300",
    "db_insert_commit_per_s",
    "intake_vs_db_ratio",
    "worker_drain_per_s",
    "worker_drain_per_s_2_workers",
    "reconcile_10k_seconds",
    "reconcile_10k_requests",
    "reconcile_naive_ratio",
    "unchanged_poll_requests",
    "polls_per_minute",
    "outbound_calls_per_1000_edits",
    "merges_per_s",
)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- targets ----------------------------------------------------------------------------------


def targets(
    results: dict[str, Any], details: dict[str, Any], sizes: Sizes, smoke: bool
) -> dict[str, dict[str, Any]]:
    """Each target: what it is, whether it is met, and whether it is a performance figure
    (judged only at full size on PostgreSQL) or a correctness one (judged always)."""
    reconcile = details.get("reconcile", {})
    expected = {p: reconcile.get(p, {}).get("expected_requests") for p in ("gitea", "github")}
    outbound = details.get("outbound", {})
    intake = details.get("intake", {})
    poll = details.get("poll", {})

    def check(value: Any, ok: Callable[[Any], bool]) -> bool | None:
        return None if value is None else bool(ok(value))

    table = {
        "intake_per_s": (
            ">= 1000",
            check(results.get("intake_per_s"), lambda v: v >= 1000),
            "performance",
        ),
        "ack_p99_ms": ("<= 50", check(results.get("ack_p99_ms"), lambda v: v <= 50), "performance"),
        "acknowledged_missing_from_db": (
            "== 0",
            check(intake.get("acknowledged_missing_from_db"), lambda v: v == 0),
            "correctness",
        ),
        "webhook_to_mirror_p99_ms": (
            "<= 500",
            check(results.get("webhook_to_mirror_p99_ms"), lambda v: v <= 500),
            "performance",
        ),
        "reconcile_10k_seconds": (
            "<= 5",
            check(results.get("reconcile_10k_seconds"), lambda v: v <= 5),
            "performance",
        ),
        "reconcile_10k_seconds_github": (
            "<= 5",
            check(results.get("reconcile_10k_seconds_github"), lambda v: v <= 5),
            "performance",
        ),
        "reconcile_naive_ratio": (
            ">= 10",
            check(results.get("reconcile_naive_ratio"), lambda v: v >= 10),
            "performance",
        ),
        "reconcile_10k_requests": (
            f"== {expected['gitea']}",
            check(results.get("reconcile_10k_requests"), lambda v: v == expected["gitea"]),
            "correctness",
        ),
        "reconcile_10k_requests_github": (
            f"== {expected['github']}",
            check(results.get("reconcile_10k_requests_github"), lambda v: v == expected["github"]),
            "correctness",
        ),
        "unchanged_poll_requests": (
            "== 1 (a 304)",
            check(
                results.get("unchanged_poll_requests"),
                lambda v: v == 1 and poll.get("polls_answered_304") == poll.get("connections"),
            ),
            "correctness",
        ),
        "polls_per_minute": (
            ">= 1000",
            check(results.get("polls_per_minute"), lambda v: v >= 1000),
            "performance",
        ),
        "outbound_calls_per_1000_edits": (
            f"<= {1000 * sizes.outbound_issues / sizes.outbound_edits:g} (one per issue)",
            check(
                results.get("outbound_calls_per_1000_edits"),
                lambda v: v <= 1000 * sizes.outbound_issues / sizes.outbound_edits,
            ),
            "correctness",
        ),
        "outbound_echo_writes": (
            "== 0",
            check(outbound.get("writes_caused_by_echoes"), lambda v: v == 0),
            "correctness",
        ),
        "merges_per_s": (
            ">= 100000",
            check(results.get("merges_per_s"), lambda v: v >= 100_000),
            "performance",
        ),
    }
    from bench import inbound

    table.update(inbound.targets(results))
    out = {}
    for key, (target, met, kind) in table.items():
        judged = met if (kind == "correctness" or not smoke) else None
        out[key] = {"target": target, "met": judged, "kind": kind}
    return out


# --- output -----------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "-" if value is None else str(value)


def print_table(results: dict[str, Any], judged: dict[str, dict[str, Any]]) -> None:
    rows = []
    keys = list(REQUIRED_KEYS) + [k for k in results if k not in REQUIRED_KEYS]
    for key in keys:
        target = judged.get(key, {})
        met = target.get("met")
        status = "" if not target else ("met" if met else "MISSED" if met is False else "n/a")
        rows.append((key, _fmt(results.get(key)), target.get("target", ""), status))
    for key, target in judged.items():
        if key not in keys:
            met = target.get("met")
            rows.append(
                (key, "", target["target"], "met" if met else "MISSED" if met is False else "n/a")
            )
    widths = [max(len(r[i]) for r in [("metric", "value", "target", ""), *rows]) for i in range(4)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format("metric", "value", "target", "").rstrip())
    print(line.format(*("-" * w for w in widths)).rstrip())
    for row in rows:
        print(line.format(*row).rstrip())


# --- the run ----------------------------------------------------------------------------------


def _merge(ctx: Context) -> dict[str, Any]:
    from issues.merge_bench import merges_per_second

    # Three rounds, the median reported: the machine is shared, and one round of a pure
    # function is at the mercy of whatever else gets the core at that moment.
    rounds = [merges_per_second(ctx.sizes.merges) for _ in range(3)]
    rate = sorted(rounds)[1]
    ctx.log(
        f"  merge: {rate:,.0f} merges/s of six fields each (pure function, median of "
        f"{len(rounds)} rounds of {ctx.sizes.merges} merges)"
    )
    return {
        "merges_per_s": round(rate),
        "details": {
            "merges": ctx.sizes.merges,
            "rounds_per_s": [round(r) for r in rounds],
            "fields_per_merge": 6,
            "one_process": True,
        },
    }


def _profile_merge(ctx: Context) -> list[str]:
    """cProfile of the merge bench's inputs (what a miss of merges_per_s spends its time on)."""
    from issues.merge_bench import merges_per_second

    out = ctx.profile_path("merge.cprofile.txt")
    cprofile_to(
        out,
        f"cProfile of {ctx.sizes.merges} merge_issue calls over the merge bench's inputs",
        lambda: merges_per_second(ctx.sizes.merges),
    )
    return [out.name]


def run(args: argparse.Namespace) -> int:
    smoke = bool(args.smoke)
    sizes = SMOKE if smoke else FULL
    results_path = Path(
        args.results or os.environ.get("BENCH_RESULTS") or REPO / "bench-results.json"
    ).resolve()
    profiles = results_path.with_name(results_path.stem + "-profiles")
    log_dir = REPO / "var" / "bench"
    if not smoke:
        log_dir.mkdir(parents=True, exist_ok=True)
    services = Services(smoke=smoke, log_dir=log_dir)
    try:
        env = services.prepare_environment()
    except BenchEnvironmentError as exc:
        _log(f"bench: {exc}")
        return 2

    import django

    django.setup()
    started = time.time()
    load_before = os.getloadavg()
    if not smoke and load_before[0] > 1.0:
        _log(
            f"bench: warning: load average {load_before[0]:.1f} on {os.cpu_count()} CPUs "
            "before the run — other work on this machine will lower the figures"
        )
    _log(
        f"bench: {'smoke run (tiny sizes, embedded defaults)' if smoke else 'full run'}; "
        f"results → {results_path}"
    )
    results: dict[str, Any] = {}
    details: dict[str, Any] = {}
    errors: dict[str, str] = {}
    profiled: list[str] = []
    try:
        services.start(env)
    except (BenchEnvironmentError, TimeoutError) as exc:
        _log(f"bench: could not start the services: {exc} (logs in {log_dir})")
        services.stop()
        return 2
    try:
        ctx = Context(
            services=services,
            sizes=sizes,
            profiles=profiles,
            log=_log,
            profile_missed=not smoke and not args.no_profiles,
        )
        from bench import inbound, outbound, poll, reconcile, webhooks

        steps: list[tuple[str, Callable[[Context], dict[str, Any]]]] = [
            ("merge", _merge),
            ("intake", webhooks.intake),
            ("db", inbound.db_insert_commit),
            ("to_mirror", webhooks.to_mirror),
            ("to_mirror_300", inbound.to_mirror_300),
            ("drain", inbound.worker_drain),
            ("reconcile", reconcile.run),
            ("poll", poll.run),
            ("outbound", outbound.run),
        ]
        only = set(args.only.split(",")) if args.only else None
        for name, step in steps:
            if only and name not in only:
                continue
            _log(f"bench: {name}")
            step_start = time.perf_counter()
            try:
                outcome = step(ctx)
            except Exception as exc:  # noqa: BLE001 - one failing benchmark must not hide the rest
                errors[name] = f"{type(exc).__name__}: {exc}"
                _log(traceback.format_exc())
                continue
            details[name] = outcome.pop("details", {})
            details[name]["step_seconds"] = round(time.perf_counter() - step_start, 1)
            results.update(outcome)
        results.update(inbound.derived(results))

        judged = targets(results, details, sizes, smoke)
        if ctx.profile_missed:
            profiled = _profile_missed(ctx, judged, errors)
    finally:
        environment = {
            "smoke": smoke,
            "sizes": dataclasses.asdict(sizes),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            **_services_description(services),
            "load_generator": "asyncio raw HTTP/1.1 keep-alive sockets (bench/loadgen.py)",
            "started_at": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(),
            "seconds": round(time.time() - started, 1),
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
        }
        services.stop()
    judged = targets(results, details, sizes, smoke)
    document = {
        **{key: results.get(key) for key in REQUIRED_KEYS},
        **{k: v for k, v in results.items() if k not in REQUIRED_KEYS},
        "targets": judged,
        "environment": environment,
        "details": details,
        "profiles": [str(profiles / name) for name in profiled],
        "errors": errors,
    }
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print()
    print_table(results, judged)
    print()
    print(f"results: {results_path}" + (f"; profiles: {profiles}" if profiled else ""))
    failed_correctness = [
        k for k, t in judged.items() if t["kind"] == "correctness" and t["met"] is False
    ]
    if errors:
        _log(f"bench: failed steps: {', '.join(errors)}")
    if failed_correctness:
        _log(f"bench: correctness checks failed: {', '.join(failed_correctness)}")
    missing = [
        k
        for k in REQUIRED_KEYS
        if results.get(k) is None or (isinstance(results[k], float) and math.isnan(results[k]))
    ]
    if missing:
        _log(f"bench: no figure for {', '.join(missing)}")
    return 1 if (errors or failed_correctness or missing) else 0


def _services_description(services: Services) -> dict[str, Any]:
    try:
        described = services.describe()
    except AttributeError:
        return {}
    if not services.smoke:
        try:
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute("SHOW server_version")
                described["postgresql"] = cursor.fetchone()[0]
                cursor.execute("SHOW synchronous_commit")
                described["synchronous_commit"] = cursor.fetchone()[0]
        except Exception as exc:  # noqa: BLE001 - description only
            described["postgresql"] = f"unknown ({exc})"
    return described


def _profile_missed(
    ctx: Context, judged: dict[str, dict[str, Any]], errors: dict[str, str]
) -> list[str]:
    """For each missed performance target, record where the time goes."""
    from bench import inbound, outbound, poll, reconcile, webhooks

    missed = {k for k, t in judged.items() if t["met"] is False}
    plan: list[tuple[set[str], Callable[[Context], list[str]]]] = [
        ({"intake_per_s", "ack_p99_ms", "intake_vs_db_ratio"}, webhooks.profile_intake),
        (
            {"webhook_to_mirror_p99_ms", "webhook_to_mirror_p99_ms_300"},
            webhooks.profile_to_mirror,
        ),
        ({"worker_drain_per_s", "worker_drain_per_s_2_workers"}, inbound.profile_drain),
        (
            {"reconcile_10k_seconds", "reconcile_10k_seconds_github", "reconcile_naive_ratio"},
            reconcile.profile,
        ),
        ({"polls_per_minute"}, poll.profile),
        ({"outbound_calls_per_1000_edits"}, outbound.profile),
        ({"merges_per_s"}, _profile_merge),
    ]
    written: list[str] = []
    for keys, profiler in plan:
        if keys & missed:
            _log(f"bench: profiling {', '.join(sorted(keys & missed))}")
            try:
                written += profiler(ctx)
            except Exception as exc:  # noqa: BLE001 - a profile is a bonus
                errors[f"profile:{profiler.__module__}.{profiler.__name__}"] = repr(exc)
                _log(traceback.format_exc())
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes on the embedded defaults (no PostgreSQL/Redis)",
    )
    parser.add_argument(
        "--results",
        help="where to write the JSON (default $BENCH_RESULTS "
        "or bench-results.json at the repository root)",
    )
    parser.add_argument(
        "--only",
        help="comma-separated steps: "
        "merge,intake,db,to_mirror,to_mirror_300,drain,reconcile,poll,outbound",
    )
    parser.add_argument("--no-profiles", action="store_true", help="do not profile missed targets")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

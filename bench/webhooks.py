"""Benchmarks 1 and 2: webhook intake throughput, and webhook-to-mirror latency."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench import loadgen
from bench.common import (
    Context,
    cprofile_to,
    make_connection,
    ms,
    pyspy_start,
    summarise_collapsed,
)
from bench.fakes import FakeHandle
from integrations.fake_trackers.base import OutgoingWebhook

DELIVERY_HEADERS = ("X-Gitea-Delivery", "X-Gogs-Delivery", "X-GitHub-Delivery")


def request_template(
    hook: OutgoingWebhook, *, host: str, port: int, path: str
) -> Callable[[str], bytes]:
    """Request bytes for this signed webhook with a new delivery id: the signature covers
    the body only, so one captured delivery can be re-sent as many distinct ones."""
    marker = "\x00DELIVERY\x00"
    headers = {k: (marker if k in DELIVERY_HEADERS else v) for k, v in hook.headers.items()}
    raw = loadgen.build_request(host=host, port=port, path=path, headers=headers, body=hook.body)
    head, _, rest = raw.partition(b"\r\n\r\n")
    pieces = (head + b"\r\n\r\n").split(marker.encode("latin-1"))
    body = rest

    def make(delivery_id: str) -> bytes:
        return delivery_id.encode("latin-1").join(pieces) + body

    return make


def _deliveries(prefix: str) -> Any:
    from integrations.models import WebhookDelivery

    return WebhookDelivery.objects.filter(delivery_id__startswith=prefix)


def _pending(prefix: str) -> int:
    from integrations.models import DeliveryStatus

    return int(
        _deliveries(prefix)
        .filter(status__in=[DeliveryStatus.RECEIVED, DeliveryStatus.PROCESSING])
        .count()
    )


def _mirrored(ctx: Context, name: str, issues: int) -> tuple[FakeHandle, Any, list[int]]:
    from issues.polling import sync_connection

    fake = ctx.services.start_fake("gitea")
    numbers = fake.seed(issues)
    connection = make_connection(name, fake)
    sync_connection(connection_id=connection.pk, full=True)
    return fake, connection, numbers


# --- 1. intake --------------------------------------------------------------------------------


def _load(
    ctx: Context,
    templates: list[Callable[[str], bytes]],
    prefix: str,
    warmup: float,
    seconds: float,
) -> dict[str, Any]:
    """One closed-loop run; its figures and the check that every ack is in the database."""
    services, concurrency = ctx.services, ctx.sizes.intake_concurrency

    def make(index: int) -> bytes:
        return templates[index % len(templates)](f"{prefix}{index}")

    results = loadgen.closed_loop(
        host=services.web_host,
        port=services.web_port,
        make=make,
        concurrency=concurrency,
        seconds=warmup + seconds,
    )
    started = min(r.sent_wall for r in results)
    window_start = started + warmup
    measured = [r for r in results if r.sent_wall >= window_start]
    if not measured:  # nothing started after the warm-up (a very slow smoke run): use all
        measured, window_start = results, started
    window_end = max(r.sent_wall + r.latency for r in measured)
    accepted = [r for r in measured if r.status == 202]
    latencies = [r.latency for r in measured]
    acked = {f"{prefix}{r.index}" for r in results if r.status == 202}
    stored = set(_deliveries(prefix).values_list("delivery_id", flat=True))
    return {
        "rate": len(accepted) / max(window_end - window_start, 1e-9),
        "p50": loadgen.percentile(latencies, 50),
        "p99": loadgen.percentile(latencies, 99),
        "max": max(latencies),
        "measured_seconds": round(window_end - window_start, 2),
        "requests_measured": len(measured),
        "status_counts": dict(Counter(str(r.status) for r in results)),
        "acknowledged": len(acked),
        "missing": len(acked - stored),
        "stored": len(stored),
    }


def _drain(ctx: Context, prefix: str) -> tuple[bool, float]:
    from bench.services import wait_for

    start = time.perf_counter()
    try:
        wait_for(
            lambda: _pending(prefix) == 0,
            timeout=ctx.sizes.backlog_timeout,
            what="processing the intake backlog",
            interval=0.25,
        )
    except TimeoutError:
        return False, time.perf_counter() - start
    return True, time.perf_counter() - start


def intake(ctx: Context) -> dict[str, Any]:
    """Phase 1, the figure: the whole service on the machine (the worker processing what
    the web accepts, on the same two cores). Phase 2: the same load with the worker paused
    (the intake path alone: web, PostgreSQL, Redis), then the worker draining that backlog
    with nothing else running (its processing rate)."""
    sizes, services = ctx.sizes, ctx.services
    fake, connection, numbers = _mirrored(ctx, "bench-intake", sizes.intake_payloads)
    hooks = fake.edit(
        [{"number": n, "changes": {"title": f"Intake edit of #{n}"}} for n in numbers]
    )
    fake.close()
    path = f"/webhooks/gitea/{connection.pk}/"
    templates = [
        request_template(h, host=services.web_host, port=services.web_port, path=path)
        for h in hooks
    ]
    tag = uuid.uuid4().hex[:8]
    ctx.log(
        f"  intake: {sizes.intake_concurrency} connections, closed loop, "
        f"{sizes.intake_warmup_seconds:g} s warm-up + {sizes.intake_seconds:g} s"
    )
    main = _load(
        ctx, templates, f"intake-{tag}-", sizes.intake_warmup_seconds, sizes.intake_seconds
    )
    backlog = _pending(f"intake-{tag}-")
    drained, backlog_seconds = _drain(ctx, f"intake-{tag}-")
    ctx.log(
        f"  intake: {main['rate']:,.0f}/s accepted, p99 {ms(main['p99'])} ms, "
        f"{main['acknowledged']} acknowledged, {main['missing']} missing from the database"
    )

    paused_seconds = max(sizes.intake_seconds / 2, 0.5)
    services.worker.pause()
    try:
        alone = _load(
            ctx, templates, f"intake-alone-{tag}-", sizes.intake_warmup_seconds / 2, paused_seconds
        )
    finally:
        services.worker.resume()
    alone_drained, alone_drain_seconds = _drain(ctx, f"intake-alone-{tag}-")
    worker_rate = alone["stored"] / max(alone_drain_seconds, 1e-9)
    ctx.log(
        f"  intake, worker paused: {alone['rate']:,.0f}/s accepted, p99 {ms(alone['p99'])} ms;"
        f" then the worker alone processed {worker_rate:,.1f} deliveries/s"
    )
    outcome = Counter(_deliveries(f"intake-{tag}-").values_list("status", flat=True)) + Counter(
        _deliveries(f"intake-alone-{tag}-").values_list("status", flat=True)
    )
    return {
        "intake_per_s": round(main["rate"], 1),
        "ack_p50_ms": ms(main["p50"]),
        "ack_p99_ms": ms(main["p99"]),
        "intake_per_s_worker_paused": round(alone["rate"], 1),
        "worker_deliveries_per_s": round(worker_rate, 1),
        "details": {
            "load_generator": "asyncio, raw keep-alive HTTP/1.1 sockets, closed loop",
            "concurrency": sizes.intake_concurrency,
            "warmup_seconds": sizes.intake_warmup_seconds,
            "body_bytes": len(hooks[0].body) if hooks else 0,
            "distinct_payloads": len(hooks),
            "with_worker": {
                **{k: v for k, v in main.items() if k not in ("p50", "p99", "max", "rate")},
                "ack_max_ms": ms(main["max"]),
                "backlog_after_load": backlog,
                "backlog_drained": drained,
                "backlog_seconds": round(backlog_seconds, 1),
            },
            "worker_paused": {
                **{k: v for k, v in alone.items() if k not in ("p50", "p99", "max", "rate")},
                "ack_p50_ms": ms(alone["p50"]),
                "ack_p99_ms": ms(alone["p99"]),
                "ack_max_ms": ms(alone["max"]),
                "drained_by_the_worker_alone": alone_drained,
                "drain_seconds": round(alone_drain_seconds, 1),
            },
            "acknowledged_missing_from_db": main["missing"] + alone["missing"],
            "delivery_outcomes": dict(outcome),
        },
    }


def profile_intake(ctx: Context) -> list[str]:
    """Where an intake request's time goes: py-spy over gunicorn under a short load, and a
    cProfile of the same view run in this process."""
    from django.test import Client

    sizes, services = ctx.sizes, ctx.services
    fake, connection, numbers = _mirrored(ctx, "bench-intake-profile", 20)
    hooks = fake.edit([{"number": n, "changes": {"title": f"P{n}"}} for n in numbers])
    path = f"/webhooks/gitea/{connection.pk}/"
    templates = [
        request_template(h, host=services.web_host, port=services.web_port, path=path)
        for h in hooks
    ]
    prefix = f"intake-profile-{uuid.uuid4().hex[:8]}-"
    written = []
    pid = services.web.pid
    if pid is not None:
        raw = ctx.profile_path("intake-gunicorn.pyspy.txt")
        seconds = 6
        spy = pyspy_start(pid, seconds, raw)
        if spy is not None:
            time.sleep(1.0)
            loadgen.closed_loop(
                host=services.web_host,
                port=services.web_port,
                make=lambda i: templates[i % len(templates)](f"{prefix}{i}"),
                concurrency=sizes.intake_concurrency,
                seconds=seconds - 1.5,
            )
            spy.wait(timeout=60)
            out = ctx.profile_path("intake-gunicorn.txt")
            summarise_collapsed(raw, out, "py-spy of the gunicorn workers under intake load")
            written.append(out.name)
    client = Client()
    n = 300

    def post_many() -> None:
        for i in range(n):
            hook = hooks[i % len(hooks)]
            headers = {k: v for k, v in hook.headers.items() if k.lower() != "content-type"}
            for name in DELIVERY_HEADERS:
                headers[name] = f"{prefix}inproc-{i}"
            client.post(path, data=hook.body, content_type="application/json", headers=headers)

    out = ctx.profile_path("intake-view.cprofile.txt")
    cprofile_to(
        out, f"cProfile of {n} intake requests through Django's test client, in-process", post_many
    )
    written.append(out.name)
    fake.close()
    return written


# --- 2. webhook to mirror -------------------------------------------------------------------


def to_mirror(ctx: Context) -> dict[str, Any]:
    return to_mirror_at(ctx, ctx.sizes.latency_rate)


def to_mirror_at(ctx: Context, rate: float, suffix: str = "") -> dict[str, Any]:
    """Deliveries sent at a steady `rate` (open loop); how long each took to reach the
    mirror. The figures' keys end with `suffix` (a second rate's run)."""
    from integrations.models import DeliveryStatus
    from issues.models import Issue

    sizes, services = ctx.sizes, ctx.services
    fake, connection, numbers = _mirrored(ctx, f"bench-latency{suffix}", sizes.latency_issues)
    total = int(rate * sizes.latency_seconds)
    # Tracker-side edits, made now, delivered later on a schedule: a title edit per delivery,
    # cycling over the issues (an issue is edited again only after all others were).
    edits = [
        {"number": numbers[i % len(numbers)], "changes": {"title": f"Edit {i}"}}
        for i in range(total)
    ]
    hooks: list[OutgoingWebhook] = []
    for start in range(0, total, 500):
        hooks += fake.edit(edits[start : start + 500])
    path = f"/webhooks/gitea/{connection.pk}/"
    prefix = f"latency-{uuid.uuid4().hex[:8]}-"
    requests = [
        request_template(h, host=services.web_host, port=services.web_port, path=path)(
            f"{prefix}{i}"
        )
        for i, h in enumerate(hooks)
    ]
    ctx.log(f"  to-mirror: {len(requests)} deliveries at {rate:g}/s (open loop)")
    results = loadgen.open_loop(
        host=services.web_host, port=services.web_port, requests=requests, rate=rate
    )
    from bench.services import wait_for

    try:
        wait_for(
            lambda: _pending(prefix) == 0,
            timeout=sizes.backlog_timeout,
            what="processing the latency deliveries",
            interval=0.2,
        )
        unfinished = 0
    except TimeoutError:  # the system cannot keep up: count what is left as still waiting
        unfinished = _pending(prefix)
    now = time.time()
    sent = {f"{prefix}{r.index}": r.sent_wall for r in results if r.status == 202}
    rows = _deliveries(prefix).values_list("delivery_id", "processed_at", "status")
    latencies = []
    by_second: dict[int, list[float]] = {}  # send second → latencies, to see when it was slow
    statuses: Counter[str] = Counter()
    last_done = 0.0
    for delivery_id, processed_at, status in rows:
        statuses[status] += 1
        if delivery_id not in sent:
            continue
        if processed_at is not None and status == DeliveryStatus.PROCESSED:
            latencies.append(processed_at.timestamp() - sent[delivery_id])
            by_second.setdefault(int(sent[delivery_id]), []).append(latencies[-1])
            last_done = max(last_done, processed_at.timestamp())
        elif status in (DeliveryStatus.RECEIVED, DeliveryStatus.PROCESSING):
            latencies.append(now - sent[delivery_id])  # a lower bound: not done yet
    first_sent = min(sent.values()) if sent else now
    processed = statuses.get(DeliveryStatus.PROCESSED, 0)
    # The mirror ends where the tracker is.
    final = fake.state()
    mirror = dict(
        Issue.objects.filter(connection=connection).values_list("external_number", "title")
    )
    wrong = sum(1 for number, fields in final.items() if mirror.get(number) != fields["title"])
    fake.close()
    ack = [r.latency for r in results]
    p99 = loadgen.percentile(latencies, 99)
    ctx.log(
        f"  to-mirror at {rate:g}/s: p50 {ms(loadgen.percentile(latencies, 50))} ms, "
        f"p99 {ms(p99)} ms, {wrong} mirror rows differ from the tracker"
    )
    return {
        f"webhook_to_mirror_p50_ms{suffix}": ms(loadgen.percentile(latencies, 50)),
        f"webhook_to_mirror_p99_ms{suffix}": ms(p99),
        "details": {
            "rate_per_s": rate,
            "deliveries": len(requests),
            "accepted": len(sent),
            "measured": len(latencies),
            "max_ms": ms(max(latencies)) if latencies else None,
            "slowest_seconds": [
                {"at_s": second - int(first_sent), "max_ms": ms(max(values)), "sent": len(values)}
                for second, values in sorted(by_second.items(), key=lambda kv: -max(kv[1]))[:5]
            ],
            "ack_p50_ms": ms(loadgen.percentile(ack, 50)),
            "ack_p99_ms": ms(loadgen.percentile(ack, 99)),
            "delivery_statuses": dict(statuses),
            "unfinished_after_timeout": unfinished,
            "processed_per_s": round(processed / max(last_done - first_sent, 1e-9), 1),
            "mirror_rows_differing_from_tracker": wrong,
            "measured_from": "the scheduled send time of the POST",
            "measured_to": "WebhookDelivery.processed_at, stamped after the mirror update "
            "committed",
        },
    }


def profile_to_mirror(ctx: Context) -> list[str]:
    """Where a delivery's processing time goes: py-spy over the Celery worker draining a
    backlog of title edits, and a cProfile of the same drain run in this process."""
    from django.test import Client

    from issues.inbound import drain_deliveries

    fake, connection, numbers = _mirrored(ctx, "bench-latency-profile", 300)
    hooks = fake.edit([{"number": n, "changes": {"title": f"Profiled {n}"}} for n in numbers])
    fake.close()
    client = Client()
    written = []

    def post(batch: list[OutgoingWebhook], tag: str) -> list[int]:
        ids = []
        for index, hook in enumerate(batch):
            headers = {k: v for k, v in hook.headers.items() if k.lower() != "content-type"}
            for name in DELIVERY_HEADERS:
                headers[name] = f"profile-{tag}-{index}"
            response = client.post(
                f"/webhooks/gitea/{connection.pk}/",
                data=hook.body,
                content_type="application/json",
                headers=headers,
            )
            ids.append(response.json()["delivery"])
        return ids

    worker = ctx.services.worker
    pid = worker.pid
    if pid is not None:
        worker.pause()
        try:
            post(hooks[:250], "worker")
        finally:
            raw = ctx.profile_path("to-mirror-worker.pyspy.txt")
            spy = pyspy_start(pid, 12, raw)
            time.sleep(1.0)
            worker.resume()
        if spy is not None:
            spy.wait(timeout=60)
            out = ctx.profile_path("to-mirror-worker.txt")
            summarise_collapsed(raw, out, "py-spy of the Celery worker draining 250 deliveries")
            written.append(out.name)
        _drain(ctx, "profile-worker-")
    worker.pause()
    try:
        ids = post(hooks[250:], "inproc")
        out = ctx.profile_path("to-mirror-drain.cprofile.txt")
        cprofile_to(
            out,
            f"cProfile of drain_deliveries over {len(ids)} stored title edits, in-process",
            lambda: drain_deliveries(slice_seconds=float("inf")),
        )
        written.append(out.name)
    finally:
        worker.resume()
    return written

"""Webhook intake while agents long-poll `GET /api/v1/events/?wait=25` (issue 19).

Starts the web as the Procfile does (gunicorn, gthread workers), measures the intake of
signed Gitea webhooks (closed loop, 16 connections, worker not running: the intake path
alone) without listeners, then with LISTENERS clients long-polling the events endpoint.

    DATABASE_URL=postgres://… .venv/bin/python -m bench.events_listeners
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syndarix_sync.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402

from bench import loadgen  # noqa: E402
from bench.webhooks import request_template  # noqa: E402
from integrations.fake_trackers.gitea import FakeGitea  # noqa: E402
from integrations.models import Connection  # noqa: E402
from issues.services.tokens import api_token_create  # noqa: E402

LISTENERS = int(os.environ.get("LISTENERS", "50"))
SECONDS = float(os.environ.get("SECONDS", "10"))
CONCURRENCY = 16


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _intake(port: int, templates: list[Any], prefix: str) -> dict[str, float]:
    results = loadgen.closed_loop(
        host="127.0.0.1",
        port=port,
        make=lambda i: templates[i % len(templates)](f"{prefix}{i}"),
        concurrency=CONCURRENCY,
        seconds=SECONDS,
    )
    ok = [r for r in results if r.status == 202]
    span = max(r.sent_wall + r.latency for r in results) - min(r.sent_wall for r in results)
    return {
        "intake_per_s": round(len(ok) / span, 1),
        "ack_p50_ms": round(loadgen.percentile([r.latency for r in results], 50) * 1000, 1),
        "ack_p99_ms": round(loadgen.percentile([r.latency for r in results], 99) * 1000, 1),
        "non_202": len(results) - len(ok),
    }


def main() -> None:
    fake = FakeGitea(repository="bench/events", token="t", webhook_secret="s").start()
    hooks: list[Any] = []
    fake.webhook_sink = hooks.append
    Connection.objects.filter(name="bench-events").delete()
    connection = Connection.objects.create(
        name="bench-events",
        provider="gitea",
        base_url=fake.url,
        repository="bench/events",
        api_token="t",
        webhook_secret="s",
    )
    for n in range(20):
        fake.seed_issue(title=f"Issue {n}", notify=True)
    fake.drain_webhooks()
    fake.stop()
    user, _ = get_user_model().objects.get_or_create(username="bench-events")
    _, key = api_token_create(user=user, all_connections=True)
    port = _port()
    web = subprocess.Popen(  # noqa: S603
        [
            ".venv/bin/gunicorn",
            "-c",
            "python:syndarix_sync.gunicorn_conf",
            "syndarix_sync.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--worker-class",
            "gthread",
            "--threads",
            "64",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stop = threading.Event()
    listened = {"answers": 0, "errors": 0, "waited": 0}
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.2)
        path = f"/webhooks/gitea/{connection.pk}/"
        templates = [request_template(h, host="127.0.0.1", port=port, path=path) for h in hooks]
        tag = str(int(time.time()))
        alone = _intake(port, templates, f"ev-alone-{tag}-")

        def listen() -> None:
            after = "999999999999"  # nothing will come: every request waits its full 25 s
            while not stop.is_set():
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/v1/events/?after={after}&wait=25",
                    headers={"Authorization": f"Bearer {key}"},
                )
                try:
                    with urllib.request.urlopen(request, timeout=40) as answer:  # noqa: S310
                        listened["answers"] += 1
                        listened["waited"] += json.load(answer)["waited"]
                except Exception:  # noqa: BLE001
                    listened["errors"] += 1
                    time.sleep(1)

        threads = [threading.Thread(target=listen, daemon=True) for _ in range(LISTENERS)]
        for thread in threads:
            thread.start()
        time.sleep(2)  # every listener is waiting
        with_listeners = _intake(port, templates, f"ev-listen-{tag}-")
        print(
            json.dumps(
                {
                    "web": "gunicorn 2 workers x 64 gthread threads, EVENTS_MAX_WAITERS=40",
                    "listeners": LISTENERS,
                    "without_listeners": alone,
                    "with_listeners": with_listeners,
                    "listener_answers_during_run": listened,
                },
                indent=2,
            )
        )
    finally:
        stop.set()
        web.terminate()
        web.wait(40)


if __name__ == "__main__":
    main()
    sys.exit(0)

"""What the benchmarks run against, and starting and stopping it.

Real (`make bench`): PostgreSQL (a database of its own, dropped and re-created each run),
Redis (its own db number), gunicorn serving the web, a Celery worker on queue `sync`, and the
fake trackers each in a process of its own. Nothing here touches any other database.

Smoke (`--smoke`): the embedded defaults — a SQLite file in a temporary directory, the web
in a thread of this process (wsgiref), the worker a thread of this process calling the same
functions the Celery tasks call, the fakes in threads.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import requests

from bench.fakes import FakeHandle, start_in_process

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/syndarix_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
FAKE_TOKEN = "bench-token"
FAKE_SECRET = "bench-secret"

# How the real run serves the web and runs the worker (reported with the results).
# The Procfile's two gthread workers. Threads: 16, not its 64 — each thread keeps a
# PostgreSQL connection and the bench shares a server allowing 100 — but not 4 either: a
# webhook's thread mostly waits (its commit, Redis), and with 4 threads per process a steady
# 300/s queued up behind them (ack p50 1.8 s where 2 x 16 answered in 14 ms, same machine).
GUNICORN_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "2"))
GUNICORN_THREADS = int(os.environ.get("BENCH_WEB_THREADS", "16"))
WORKER_CONCURRENCY = int(os.environ.get("BENCH_WORKER_CONCURRENCY", "2"))
# What gunicorn serves; another WSGI module only for what-if experiments.
WSGI_APP = os.environ.get("BENCH_WSGI_APP", "syndarix_sync.wsgi")
CELERY_APP = os.environ.get("BENCH_CELERY_APP", "syndarix_sync")


class BenchEnvironmentError(RuntimeError):
    """The machine lacks what the real benchmark needs; the message says what and how."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def preflight(database_url: str, redis_url: str) -> None:
    """Fail early and clearly when PostgreSQL or Redis is not there."""
    import psycopg
    import redis

    hint = (
        "`make bench` needs PostgreSQL and Redis running (it creates its own database "
        "and uses its own Redis db number). Start them, or point BENCH_DATABASE_URL / "
        "BENCH_REDIS_URL at them. `python -m bench.run --smoke` runs the benchmarks at "
        "tiny sizes on the embedded defaults instead."
    )
    if not database_url.startswith(("postgres://", "postgresql://")):
        raise BenchEnvironmentError(
            f"BENCH_DATABASE_URL must be a PostgreSQL URL, got {database_url!r}. {hint}"
        )
    try:
        psycopg.connect(_with_database(database_url, "postgres"), connect_timeout=3).close()
    except psycopg.Error as exc:
        raise BenchEnvironmentError(
            f"PostgreSQL is not reachable at {urlsplit(database_url).netloc}: "
            f"{str(exc).strip().rstrip('.')}. {hint}"
        ) from exc
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise BenchEnvironmentError(
            f"Redis is not reachable at {redis_url}: {str(exc).rstrip('.')}. {hint}"
        ) from exc


def recreate_database(database_url: str) -> None:
    import psycopg
    from psycopg import sql

    name = urlsplit(database_url).path.lstrip("/")
    if not name.replace("_", "").isalnum() or not name.startswith(("syndarix_bench", "bench")):
        raise BenchEnvironmentError(
            f"refusing to drop database {name!r}: the bench only re-creates a database whose "
            "name starts with `syndarix_bench` (see BENCH_DATABASE_URL)"
        )
    with psycopg.connect(_with_database(database_url, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def wait_for(
    check: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.05
) -> float:
    """Poll `check` until true; the seconds it took. Raises TimeoutError naming `what`."""
    start = time.perf_counter()
    while True:
        if check():
            return time.perf_counter() - start
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"{what}: not done after {timeout:g} s")
        time.sleep(interval)


# --- workers --------------------------------------------------------------------------------


class InProcessWorker:
    """The smoke run's worker: Celery's eager mode, so a task runs in the thread that queues
    it. Paused, tasks go to an in-memory broker nobody reads; resuming does what the
    periodic sweeps do with such leftovers (process stored deliveries, drain the outbox)."""

    description = "Celery eager mode in the bench process (smoke only)"
    pid: int | None = None

    def _app(self) -> Any:
        from syndarix_sync.celery import app

        return app

    def start(self) -> None:
        self._app().conf.task_always_eager = True

    def pause(self) -> None:
        self._app().conf.task_always_eager = False

    def resume(self) -> None:
        from integrations.models import DeliveryStatus, WebhookDelivery
        from issues.inbound import process_delivery
        from issues.outbox import drain

        self._app().conf.task_always_eager = True
        for delivery_id in (
            WebhookDelivery.objects.filter(status=DeliveryStatus.RECEIVED)
            .order_by("id")
            .values_list("id", flat=True)
        ):
            process_delivery(delivery_id)
        drain()

    def stop(self) -> None:
        return


class CeleryWorker:
    """`celery -A syndarix_sync worker -Q sync` as a subprocess; paused by cancelling its
    consumer of queue `sync` (remote control), resumed by adding it back."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.node = f"bench-{os.getpid()}@{socket.gethostname()}"
        self.description = (
            f"celery worker -Q sync --concurrency {WORKER_CONCURRENCY} (prefork), one node"
        )
        self._log = (log_dir / "celery.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own venv's celery
            [
                str(VENV_BIN / "celery"),
                "-A",
                CELERY_APP,
                "worker",
                "-Q",
                "sync",
                "--concurrency",
                str(WORKER_CONCURRENCY),
                "--loglevel",
                "WARNING",
                "-n",
                self.node,
            ],
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid: int | None = self.process.pid

    def _app(self) -> Any:
        from syndarix_sync.celery import app

        return app

    def start(self) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise BenchEnvironmentError("the Celery worker exited at start; see celery.log")
            return bool(self._app().control.ping(destination=[self.node], timeout=0.5))

        wait_for(ready, timeout=60, what="Celery worker start", interval=0.2)

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        with contextlib.suppress(OSError):
            return [int(p) for p in path.read_text().split()]
        return []

    def pause(self) -> None:
        self._app().control.cancel_consumer("sync", destination=[self.node], reply=True, timeout=5)

    def resume(self) -> None:
        self._app().control.add_consumer("sync", destination=[self.node], reply=True, timeout=5)

    def stop(self) -> None:
        _stop_process(self.process)
        self._log.close()


# --- web --------------------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class InProcessWeb:
    description = "wsgiref threaded server in the bench process (smoke only)"
    pid: int | None = None

    def __init__(self) -> None:
        from django.core.wsgi import get_wsgi_application

        self._server = make_server(
            "127.0.0.1",
            0,
            get_wsgi_application(),
            server_class=_ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def workers(self) -> list[int]:
        return []

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class GunicornWeb:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.port = free_port()
        self.description = (
            f"gunicorn gthread, {GUNICORN_WORKERS} workers x "
            f"{GUNICORN_THREADS} threads, no access log"
        )
        self._log = (log_dir / "gunicorn.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own venv's gunicorn
            [
                str(VENV_BIN / "gunicorn"),
                WSGI_APP,
                "--bind",
                f"127.0.0.1:{self.port}",
                "--worker-class",
                "gthread",
                "--workers",
                str(GUNICORN_WORKERS),
                "--threads",
                str(GUNICORN_THREADS),
                "--keep-alive",
                "30",
                "--backlog",
                "2048",
                "--log-level",
                "warning",
                "--graceful-timeout",
                "5",
            ],
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid: int | None = self.process.pid

    def start(self) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise BenchEnvironmentError("gunicorn exited at start; see gunicorn.log")
            try:
                return (
                    requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code
                    == 200
                )
            except requests.RequestException:
                return False

        wait_for(ready, timeout=60, what="gunicorn start", interval=0.2)

    def workers(self) -> list[int]:
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        with contextlib.suppress(OSError):
            return [int(p) for p in path.read_text().split()]
        return []

    def stop(self) -> None:
        _stop_process(self.process)
        self._log.close()


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group this harness created for it, then SIGKILL if needed."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


# --- the whole set ---------------------------------------------------------------------------


class Services:
    """Everything a benchmark talks to: the web's address, the worker, the fakes."""

    def __init__(self, *, smoke: bool, log_dir: Path) -> None:
        self.smoke = smoke
        self.log_dir = log_dir
        self.web: InProcessWeb | GunicornWeb
        self.worker: InProcessWorker | CeleryWorker
        self._fakes: list[FakeHandle] = []
        self._fake_processes: list[subprocess.Popen[bytes]] = []
        self._tmp: str | None = None
        self.database = ""
        self.broker = ""

    # Environment first (before Django is set up), then the processes.
    def prepare_environment(self) -> dict[str, str]:
        env = dict(os.environ)
        for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER"):
            env.pop(name, None)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "syndarix_sync.settings",
                "DEBUG": "0",
                "LOG_LEVEL": "WARNING",
                "DJANGO_ENV": "development",
            }
        )
        if self.smoke:
            self._tmp = tempfile.mkdtemp(prefix="syndarix-bench-")
            env["SYNDARIX_VAR_DIR"] = self._tmp
            env["DATABASE_URL"] = f"sqlite:///{self._tmp}/bench.sqlite3"
            env["CELERY_BROKER_URL"] = "memory://"
            env["CELERY_TASK_ALWAYS_EAGER"] = "1"
            self.database, self.broker = "sqlite (temporary file)", "none (eager tasks)"
        else:
            database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
            redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
            preflight(database_url, redis_url)
            recreate_database(database_url)
            env["DATABASE_URL"] = database_url
            env["REDIS_URL"] = redis_url
            self.database = (
                f"postgresql {urlsplit(database_url).netloc}{urlsplit(database_url).path}"
            )
            self.broker = f"redis {redis_url}"
        os.environ.update(env)
        for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER"):
            if name not in env:
                os.environ.pop(name, None)
        return env

    def start(self, env: dict[str, str]) -> None:
        from django.core.management import call_command

        if self.smoke:
            from django.db.backends.signals import connection_created

            # A throw-away file: no fsync per commit, so the smoke run stays quick.
            connection_created.connect(_sqlite_unsynchronised, weak=False)
        call_command("migrate", interactive=False, verbosity=0)
        if self.smoke:
            self.web = InProcessWeb()
            self.worker = InProcessWorker()
        else:
            from syndarix_sync.celery import app

            app.control.purge()  # leftovers of an interrupted run in our db number
            self.web = GunicornWeb(env, self.log_dir)
            self.worker = CeleryWorker(env, self.log_dir)
        self.web.start()
        self.worker.start()

    @property
    def web_host(self) -> str:
        return "127.0.0.1"

    @property
    def web_port(self) -> int:
        return self.web.port

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web.port}"

    def start_fake(self, provider: str) -> FakeHandle:
        if self.smoke:
            handle = start_in_process(provider, token=FAKE_TOKEN, secret=FAKE_SECRET)
        else:
            process = subprocess.Popen(  # noqa: S603 - this interpreter, our module
                [
                    sys.executable,
                    "-m",
                    "bench.fakes",
                    "--provider",
                    provider,
                    "--token",
                    FAKE_TOKEN,
                    "--secret",
                    FAKE_SECRET,
                ],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=(self.log_dir / f"fake-{provider}.log").open("ab"),
            )
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line:
                raise BenchEnvironmentError(f"the fake {provider} did not start")
            info = json.loads(line)
            self._fake_processes.append(process)
            handle = FakeHandle(
                provider=provider,
                url=info["url"],
                base_url=info["base_url"],
                token=FAKE_TOKEN,
                repository="bench/widgets",
                secret=FAKE_SECRET,
                max_page_size=info["max_page_size"],
                stop=lambda: _close_fake(process),
            )
        self._fakes.append(handle)
        return handle

    def describe(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "broker": self.broker,
            "web": self.web.description,
            "worker": self.worker.description,
            "fakes": "in-process threads" if self.smoke else "one process per fake",
        }

    def stop(self) -> None:
        for handle in self._fakes:
            with contextlib.suppress(Exception):
                handle.close()
        for name in ("worker", "web"):
            part = getattr(self, name, None)
            if part is not None:
                with contextlib.suppress(Exception):
                    part.stop()
        from django.db import connections

        connections.close_all()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)


def _sqlite_unsynchronised(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous=OFF")


def _close_fake(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.terminate()
        process.wait(timeout=5)

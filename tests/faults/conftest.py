"""Fixtures for the fault-injection tests: private services, real web and worker processes.

One private PostgreSQL cluster serves the whole session: it is migrated once into a template
database, and each scenario gets a fresh copy of it (`CREATE DATABASE … TEMPLATE`, a fraction
of a second). While a scenario runs, this process's Django connection points at that copy, so
the test sets data up and checks the outcome with the ORM while gunicorn and celery
subprocesses work on the same database. Each scenario gets its own Redis.

When initdb/pg_ctl or redis-server are missing the tests skip — and fail under
REQUIRE_SERVICES=1, like every other test that needs a service (see tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from integrations.fake_trackers.base import OutgoingWebhook, RecordedRequest, Response
from integrations.fake_trackers.gitea import FakeGitea
from integrations.models import Connection
from issues.models import Issue
from tests.faults.processes import (
    REPO_ROOT,
    ManagedProcess,
    PrivatePostgres,
    PrivateRedis,
    ServiceUnavailable,
    launch_web,
    launch_worker,
    service_env,
    tail,
    wait_web,
    wait_worker,
)

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
TEMPLATE_DB = "faults_template"
WEBHOOK_SECRET = "fault-hook-secret"
REPOSITORY = "acme/widgets"
API_TOKEN = "fault-gitea-token"


def service_missing(reason: str) -> None:
    """Skip on a bare machine; fail where the services are required (CI)."""
    if REQUIRE_SERVICES:
        pytest.fail(
            f"REQUIRE_SERVICES=1 but a service this test needs is missing: {reason}",
            pytrace=False,
        )
    pytest.skip(f"service missing: {reason}")


@contextlib.contextmanager
def temporary_directory(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A private cluster with the schema migrated once, into the template database."""
    from django.conf import settings

    if not settings.IS_POSTGRES:
        # This process reaches the private cluster through its own (PostgreSQL) backend.
        service_missing("needs PostgreSQL (set DATABASE_URL=postgres://…)")
    try:
        pg = PrivatePostgres()
    except ServiceUnavailable as exc:
        service_missing(str(exc))
    try:
        pg.init()
        pg.start()
        pg.execute(f"CREATE DATABASE {TEMPLATE_DB}")
        env = service_env(
            database_url=pg.url(TEMPLATE_DB),
            redis_url="redis://127.0.0.1:1/0",  # migrate publishes nothing
            var_dir=pg.dir / "migrate-var",
        )
        started = time.monotonic()
        result = subprocess.run(  # noqa: PLW1510 - checked below
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{result.stdout}\n{result.stderr}")
        pg.migrate_seconds = time.monotonic() - started
        yield pg
    finally:
        pg.destroy()


@dataclasses.dataclass
class FaultDatabase:
    pg: PrivatePostgres
    name: str

    @property
    def url(self) -> str:
        return self.pg.url(self.name)

    def reconnect(self) -> None:
        """Drop this process's connection (after the server was restarted under it)."""
        connections["default"].close()


@contextlib.contextmanager
def django_connected_to(pg: PrivatePostgres, name: str) -> Iterator[None]:
    """Point this process's default connection at the private cluster, then put it back.

    The settings dict is shared by every thread's connection object (and is the one
    pytest-django renames to the test database), so it is changed in place and restored.
    """
    conn = connections["default"]
    saved = dict(conn.settings_dict)
    conn.close()
    conn.settings_dict.update(
        {"NAME": name, "USER": "postgres", "PASSWORD": "", "HOST": "127.0.0.1", "PORT": pg.port}
    )
    try:
        yield
    finally:
        conn.close()
        conn.settings_dict.clear()
        conn.settings_dict.update(saved)


@contextlib.contextmanager
def fault_database(pg: PrivatePostgres, django_db_blocker: Any) -> Iterator[FaultDatabase]:
    """A fresh copy of the migrated template, this process connected to it meanwhile."""
    if not pg.running():  # an earlier scenario may have failed with the server stopped
        pg.start()
    name = f"faults_{uuid.uuid4().hex[:12]}"
    pg.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    try:
        with django_db_blocker.unblock(), django_connected_to(pg, name):
            yield FaultDatabase(pg, name)
    finally:
        if not pg.running():
            pg.start()
        pg.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# --- Redis and the Celery app of this process -------------------------------------------------


@contextlib.contextmanager
def celery_app_broker(url: str) -> Iterator[None]:
    """What this process publishes (pushes queued by local edits, the sweep and drain the test
    sends as beat would) goes to the private Redis, never to the shared one."""
    from syndarix_sync.celery import app as celery_app

    app: Any = celery_app  # the connection and producer pools are private attributes
    previous = {"broker_url": app.conf.broker_url, "broker_write_url": app.conf.broker_write_url}
    app.conf.update(broker_url=url, broker_write_url=url)
    app._pool = app.amqp._producer_pool = None  # rebuilt on next use, for the new URL
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            app.pool.force_close_all()
        app.conf.update(previous)
        app._pool = app.amqp._producer_pool = None


@contextlib.contextmanager
def redis_service(directory: Path) -> Iterator[PrivateRedis]:
    try:
        redis = PrivateRedis(directory)
    except ServiceUnavailable as exc:
        service_missing(str(exc))
    try:
        redis.start()
        with celery_app_broker(redis.url):
            yield redis
    finally:
        if redis.process is not None:
            redis.process.stop()


# --- the service under test ------------------------------------------------------------------


class Stack:
    """The web and worker processes of one scenario, all stopped when it ends."""

    def __init__(self, db: FaultDatabase, redis: PrivateRedis, run_dir: Path) -> None:
        self.db = db
        self.redis = redis
        self.run_dir = run_dir
        self.processes: list[ManagedProcess] = []
        self.web: ManagedProcess | None = None
        self.web_port = 0

    def env(self, **extra: str) -> dict[str, str]:
        return service_env(
            database_url=self.db.url,
            redis_url=self.redis.url,
            var_dir=self.run_dir / "var",
            extra={"PROVIDER_HTTP_TIMEOUT": "10", **extra},
        )

    def start(
        self, *, web: bool = True, workers: tuple[str, ...] = ("worker",), **extra: str
    ) -> None:
        """Launch the web and the named workers together, then wait until all are ready."""
        env = self.env(**extra)
        launched: list[tuple[ManagedProcess, int | None]] = []
        if web:
            self.web, self.web_port = launch_web(env=env, log_dir=self.run_dir)
            launched.append((self.web, self.web_port))
        for name in workers:
            launched.append((launch_worker(env=env, log_dir=self.run_dir, name=name), None))
        self.processes += [process for process, _ in launched]
        for process, port in launched:
            if port is not None:
                wait_web(process, port)
            else:
                wait_worker(process)

    def launch_worker(self, name: str, **extra: str) -> ManagedProcess:
        """Start a worker without waiting for it (see `processes.wait_worker`)."""
        worker = launch_worker(env=self.env(**extra), log_dir=self.run_dir, name=name)
        self.processes.append(worker)
        return worker

    def start_worker(self, name: str, **extra: str) -> ManagedProcess:
        worker = self.launch_worker(name, **extra)
        wait_worker(worker)
        return worker

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def tails(self, lines: int = 40) -> str:
        parts = [p.tail(lines) for p in self.processes]
        if self.redis.process is not None:
            parts.append(self.redis.tail())
        parts.append(f"--- postgres log ---\n{tail(self.db.pg.log_path, 15)}")
        return "\n".join(parts)

    def stop(self) -> None:
        """SIGTERM everything at once (shutdowns overlap), then wait for / kill each one."""
        for process in self.processes:
            process.signal_group(signal.SIGTERM)
        for process in reversed(self.processes):
            process.stop()


@contextlib.contextmanager
def service_stack(pg: PrivatePostgres, django_db_blocker: Any) -> Iterator[Stack]:
    """Database copy + Redis + a run directory; web and workers are started by the test."""
    with contextlib.ExitStack() as stack:
        run_dir = stack.enter_context(temporary_directory("faults-run-"))
        db = stack.enter_context(fault_database(pg, django_db_blocker))
        redis = stack.enter_context(redis_service(run_dir / "redis"))
        services = Stack(db, redis, run_dir)
        stack.callback(services.stop)
        yield services


@pytest.fixture
def stack(private_postgres: PrivatePostgres, django_db_blocker: Any) -> Iterator[Stack]:
    with service_stack(private_postgres, django_db_blocker) as services:
        yield services


# --- the tracker ---------------------------------------------------------------------------------


class CapturingGitea(FakeGitea):
    """FakeGitea whose webhooks are kept (not posted): each test decides when they arrive."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            repository=REPOSITORY, token=API_TOKEN, webhook_secret=WEBHOOK_SECRET, **kwargs
        )
        self.captured: list[OutgoingWebhook] = []
        self.webhook_sink = self.captured.append
        # Seconds an issue PATCH waits *after* the write is applied before it answers: the
        # window in which the client has written but not yet heard back.
        self.patch_answer_delay = 0.0

    def _edit_issue(
        self, record: RecordedRequest, data: Any, owner: str, repo: str, index: str
    ) -> Response:
        response = super()._edit_issue(record, data, owner, repo, index)
        if self.patch_answer_delay:
            time.sleep(self.patch_answer_delay)
        return response

    def take_hooks(self) -> list[OutgoingWebhook]:
        self.drain_webhooks()
        with self.lock:
            taken, self.captured[:] = list(self.captured), []
        return taken

    def writes_per_issue(self) -> dict[int, int]:
        """How many PATCH/PUT/POST calls reached each issue (by number)."""
        counts: dict[int, int] = {}
        with self.lock:
            for record in self.requests:
                if record.method not in ("PATCH", "PUT", "POST"):
                    continue
                parts = record.path.rstrip("/").split("/")
                if "issues" in parts and parts.index("issues") + 1 < len(parts):
                    number = int(parts[parts.index("issues") + 1])
                    counts[number] = counts.get(number, 0) + 1
        return counts


@contextlib.contextmanager
def gitea_fake() -> Iterator[CapturingGitea]:
    fake = CapturingGitea()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def gitea() -> Iterator[CapturingGitea]:
    with gitea_fake() as fake:
        yield fake


def connect(fake: FakeGitea) -> Connection:
    return Connection.objects.create(
        name="faults",
        provider="gitea",
        base_url=fake.url,
        repository=REPOSITORY,
        api_token=API_TOKEN,
        webhook_secret=WEBHOOK_SECRET,
    )


def mirror_differences(fake: FakeGitea, connection: Connection) -> list[str]:
    """Every field where the mirror differs from the tracker (empty = converged)."""
    differences = []
    mirror = {i.external_number: i for i in Issue.objects.filter(connection=connection)}
    for remote in fake.issue_list():
        local = mirror.pop(str(remote.number), None)
        if local is None:
            differences.append(f"#{remote.number}: missing from the mirror")
            continue
        expected = remote.snapshot()
        for field, value in expected.items():
            actual = getattr(local, field)
            if field in ("labels", "assignees"):
                actual = sorted(actual)
            if actual != value:
                differences.append(f"#{remote.number}.{field}: mirror {actual!r} != {value!r}")
    differences += [f"#{number}: in the mirror only" for number in mirror]
    return differences

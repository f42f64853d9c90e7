"""Real processes for fault injection: a private PostgreSQL, a private Redis, the web (gunicorn)
and the worker (celery), each on its own port and in its own temporary directory.

Nothing here touches the shared PostgreSQL on 5432 or the shared Redis on 6379: the fault tests
stop and restart what they start, and only that. Every process writes its output to a file in
its directory, and `tail()` gives the end of it for assertion messages, so that a failure in CI
says what the process was doing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TypeVar

import psycopg
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
PG_SUPERUSER = "postgres"
T = TypeVar("T")

# What a service process reads from the environment; none of it may leak in from the pytest
# run (its DATABASE_URL and REDIS_URL name the *shared* services).
_SCRUBBED_ENV = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_TASK_ALWAYS_EAGER",
    "PROMETHEUS_MULTIPROC_DIR",
    "SYNDARIX_VAR_DIR",
    "SYNDARIX_PORT",
    "PORT",
    "DJANGO_ENV",
    "DEBUG",
    "OUTBOX_LEASE_SECONDS",
    "WEBHOOK_PROCESSING_LEASE_SECONDS",
    "WEBHOOK_SWEEP_AFTER_SECONDS",
    "WEBHOOK_BATCH_SIZE",
    "WEBHOOK_CONNECTION_CACHE_SECONDS",
    "PROVIDER_HTTP_TIMEOUT",
    "CONN_MAX_AGE",
    "CELERY_DB_REUSE_MAX",
    "CELERY_TASK_TIME_LIMIT",
    "CELERY_TASK_SOFT_TIME_LIMIT",
    "ALLOWED_HOSTS",
    "FIELD_ENCRYPTION_OLD_KEYS",
    "PYTEST_CURRENT_TEST",
    "PYTEST_ADDOPTS",
)


class ServiceUnavailable(Exception):
    """A program a fault test needs (initdb, redis-server…) is not installed."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float,
    interval: float = 0.05,
    message: str | Callable[[], str] = "condition",
) -> T:
    """Call `predicate` until it returns something truthy; raise with `message` at the deadline.

    Exceptions from the predicate count as "not yet" (a server that is still starting refuses
    connections); the last one is reported if the deadline passes.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
        except Exception as exc:  # noqa: BLE001 - "not ready yet", reported at the deadline
            last_error = exc
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {text}{detail}")
        time.sleep(interval)


def tail(path: Path, lines: int = 40, width: int = 600) -> str:
    """The last lines of a log, each cut to `width` characters (SQL with a body is long)."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<{path}: {exc}>"
    return "\n".join(line[:width] for line in text.splitlines()[-lines:])


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


class ManagedProcess:
    """One child process with its output in a file; stopped (then killed) on `stop()`."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path = REPO_ROOT,
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log.write(f"\n=== start {' '.join(self.argv)}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,  # its own process group: signals reach its children too
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        return f"--- last lines of {self.name} ({self.log_path}) ---\n{tail(self.log_path, lines)}"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def signal_group(self, signum: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signum)

    def kill(self) -> None:
        """SIGKILL, no clean-up of any kind: what the OOM killer or a power cut does."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the group, then SIGKILL what is left. Safe to call twice."""
        if self.proc is not None and self.proc.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self.proc is not None:
            # Whatever the leader left behind in its group (a gunicorn worker, say).
            self.signal_group(signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None


# --- PostgreSQL -------------------------------------------------------------------------------


def postgres_bindir() -> Path:
    """Where initdb/pg_ctl/postgres live: $PG_BINDIR, else the newest Debian one, else PATH."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))

    def version(path: str) -> float:
        try:
            return float(Path(path).parent.name)
        except ValueError:
            return 0.0

    candidates += [
        Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version)[::-1]
    ]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise ServiceUnavailable(
        "needs the PostgreSQL server binaries (initdb, pg_ctl, postgres): apt-get install "
        "postgresql, or set PG_BINDIR"
    )


class PrivatePostgres:
    """A throw-away cluster: own port, own data directory, fsync off, trust auth.

    `initdb` refuses to run as root: as root the directory is given to the `postgres` user and
    every server program runs through `runuser -u postgres`.
    """

    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        self._run_as: list[str] = []
        owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam(PG_SUPERUSER)
            except KeyError as exc:
                raise ServiceUnavailable(
                    "running as root, and there is no `postgres` user to run initdb as"
                ) from exc
            runuser = shutil.which("runuser")
            if runuser is None:
                raise ServiceUnavailable("running as root, and `runuser` is missing")
            self._run_as = [runuser, "-u", PG_SUPERUSER, "--"]
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        if owner is not None:
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self.data = self.dir / "data"
        self.log_path = self.dir / "postgres.log"
        self.migrate_seconds = 0.0  # how long the one `migrate` of the session took

    def _tool(self, name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        argv = [*self._run_as, str(self.bindir / name), *args]
        result = subprocess.run(  # noqa: PLW1510 - the caller reads returncode
            argv, capture_output=True, text=True, timeout=timeout, cwd=self.dir
        )
        return result

    def _check(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            raise RuntimeError(
                f"{what} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n"
                f"{tail(self.log_path)}"
            )

    def init(self) -> PrivatePostgres:
        result = self._tool(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            PG_SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        self._check(result, "initdb")
        return self

    @property
    def options(self) -> str:
        return " ".join(
            [
                f"-p {self.port}",
                f"-k {self.dir}",
                "-c listen_addresses=127.0.0.1",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=100",
            ]
        )

    def start(self) -> None:
        result = self._tool(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log_path),
            "-o",
            self.options,
            "-w",
            "-t",
            "30",
            "start",
        )
        self._check(result, "pg_ctl start")
        wait_until(self.accepts_connections, timeout=15, message="PostgreSQL to accept logins")

    def stop(self, mode: str = "fast") -> None:
        result = self._tool("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")
        self._check(result, f"pg_ctl stop -m {mode}")

    def running(self) -> bool:
        result = self._tool("pg_ctl", "-D", str(self.data), "status")
        return result.returncode == 0

    def accepts_connections(self) -> bool:
        with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
            return True

    def dsn(self, dbname: str) -> str:
        return f"postgresql://{PG_SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def url(self, dbname: str) -> str:
        """The DATABASE_URL form django-environ reads."""
        return f"postgres://{PG_SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def execute(self, sql: str, dbname: str = "postgres") -> None:
        with psycopg.connect(self.dsn(dbname), autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.encode())  # our own literal SQL (names we made), no user input

    def destroy(self) -> None:
        """Stop the server however it can be stopped, then remove its directory."""
        if self.data.exists():
            with contextlib.suppress(Exception):
                if self.running():
                    self.stop("immediate")
            pid_file = self.data / "postmaster.pid"
            if pid_file.exists():  # pg_ctl failed: kill the postmaster we started
                with contextlib.suppress(Exception):
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


# --- Redis -------------------------------------------------------------------------------------


def redis_server_binary() -> str:
    binary = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
    if not binary:
        raise ServiceUnavailable("needs redis-server on PATH (apt-get install redis-server)")
    return binary


class PrivateRedis:
    """redis-server on its own port, no persistence: a restart loses every queued message."""

    def __init__(self, base_dir: Path) -> None:
        self.binary = redis_server_binary()
        self.port = free_port()
        self.dir = base_dir
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        argv = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--protected-mode",
            "no",
        ]
        self.process = ManagedProcess(
            "redis", argv, log_path=self.dir / "redis.log", cwd=self.dir
        ).start()
        wait_until(
            self.ping,
            timeout=10,
            message=lambda: f"redis-server on {self.port}\n{self.tail()}",
        )

    def ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), 0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def stop(self) -> None:
        """Terminate the server; returns once nothing listens on the port any more."""
        if self.process is not None:
            self.process.stop()
        wait_until(lambda: not port_open(self.port), timeout=10, message="Redis to go away")

    def tail(self) -> str:
        return self.process.tail() if self.process else "<redis never started>"


# --- the service itself ------------------------------------------------------------------------


def service_env(
    *,
    database_url: str,
    redis_url: str,
    var_dir: Path,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a web or worker process: explicit about every service it reaches."""
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    var_dir.mkdir(parents=True, exist_ok=True)
    (var_dir / "prometheus").mkdir(exist_ok=True)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "syndarix_sync.settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            "SYNDARIX_VAR_DIR": str(var_dir),
            "PROMETHEUS_MULTIPROC_DIR": str(var_dir / "prometheus"),
            # The same keys as this process, so secrets it encrypted can be read there.
            "SECRET_KEY": settings.SECRET_KEY,
            "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY,
            "FIELD_ENCRYPTION_OLD_KEYS": "",
            "DJANGO_ENV": "development",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DEBUG": "false",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    env.update(extra or {})
    return env


def launch_web(
    *, env: Mapping[str, str], log_dir: Path, workers: int = 2
) -> tuple[ManagedProcess, int]:
    """gunicorn as in the Procfile (sync workers); `wait_web` waits until it answers."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:syndarix_sync.gunicorn_conf",
        "syndarix_sync.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--graceful-timeout",
        "5",
        "--timeout",
        "30",
    ]
    return ManagedProcess("web", argv, log_path=log_dir / "web.log", env=env).start(), port


def wait_web(web: ManagedProcess, port: int, timeout: float = 30) -> None:
    def answers() -> bool:
        if not web.alive():
            raise RuntimeError("gunicorn exited")
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        return True

    wait_until(answers, timeout=timeout, message=lambda: f"gunicorn to answer\n{web.tail()}")


def launch_worker(*, env: Mapping[str, str], log_dir: Path, name: str) -> ManagedProcess:
    """One Celery worker on queue `sync` with pool `solo`: the process that runs the task is
    the one a SIGKILL hits. `wait_worker` waits until it consumes."""
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "syndarix_sync",
        "worker",
        "-Q",
        "sync",
        "--pool",
        "solo",
        "--loglevel",
        "INFO",
        "--hostname",
        f"{name}@%h",
        # Cluster chatter that only slows the start-up down; nothing here depends on it.
        "--without-mingle",
        "--without-gossip",
    ]
    return ManagedProcess(name, argv, log_path=log_dir / f"{name}.log", env=env).start()


def wait_worker(worker: ManagedProcess, timeout: float = 45) -> None:
    def ready() -> bool:
        if not worker.alive():
            raise RuntimeError("the worker exited")
        return " ready." in worker.log_text()

    wait_until(
        ready, timeout=timeout, message=lambda: f"{worker.name} to be ready\n{worker.tail()}"
    )

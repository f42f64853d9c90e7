"""`make run`'s process runner: a ready banner with the admin login, readable logs in a
terminal, and one Ctrl-C (SIGINT to the runner) stops everything with exit status 0.

Before: honcho signalled whole process groups (Celery's pool children died as ERROR lines),
make printed `Error 130`/`Error 143`, and the generated password scrolled away."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from syndarix_sync.runner import banner, expand

TRAP = (
    "import signal, sys, time; "
    "signal.signal(signal.SIGTERM, lambda *a: (print('clean stop', flush=True), sys.exit(0))); "
    "print('up', flush=True); time.sleep(60)"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_runner_announces_readiness_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = _free_port()
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        f"web: {sys.executable} -m http.server ${{SYNDARIX_PORT}} --bind 127.0.0.1\n"
        f'other: {sys.executable} -c "{TRAP}"\n'
    )
    env = {
        **os.environ,
        "SYNDARIX_PORT": str(port),
        "SYNDARIX_ADMIN_LOGIN": "Admin login: admin / s3cret-once",
    }
    env.pop("LOG_FORMAT", None)
    runner = subprocess.Popen(
        [sys.executable, "-m", "syndarix_sync.runner", str(procfile)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        deadline = time.monotonic() + 30
        output = b""
        os.set_blocking(runner.stdout.fileno(), False)  # type: ignore[union-attr]
        while b"Ctrl-C stops everything" not in output and time.monotonic() < deadline:
            output += runner.stdout.read() or b""  # type: ignore[union-attr]
            time.sleep(0.2)
        assert b"Syndarix Sync is ready" in output, output.decode()
        time.sleep(0.5)
        runner.send_signal(signal.SIGINT)
        status = runner.wait(20)
        os.set_blocking(runner.stdout.fileno(), True)  # type: ignore[union-attr]
        output += runner.stdout.read()  # type: ignore[union-attr]
    finally:
        if runner.poll() is None:
            runner.kill()
    text = output.decode()
    assert status == 0, text
    assert f"open http://127.0.0.1:{port}/admin/" in text
    assert "Admin login: admin / s3cret-once" in text.split("Syndarix Sync is ready")[1]
    assert "other  | clean stop" in text and "stopped." in text
    assert "ERROR" not in text and "Traceback" not in text


def test_banner_and_procfile_expansion() -> None:
    env = {"SYNDARIX_PORT": "8123", "PUBLIC_URL": "https://sync.example.com/"}
    assert "open https://sync.example.com/admin/" in banner(env)
    assert expand("--bind ${SYNDARIX_BIND:-127.0.0.1}:${SYNDARIX_PORT:-8000}", env) == (
        "--bind 127.0.0.1:8123"
    )

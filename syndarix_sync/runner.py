"""`make run` / `make demo`: start the Procfile's processes, say when the service is ready,
and stop them all cleanly on one Ctrl-C.

Why not honcho: it signals each process's whole group, so Celery's pool children were killed
under their parent (ERROR lines on every Ctrl-C), and the terminal's SIGINT reached every
process at once. Here each process runs in its own session (the terminal's Ctrl-C reaches
only this runner), is stopped with one SIGTERM to its leader (gunicorn and Celery shut down
their own children), and the runner exits 0 — so make reports no error.

    python -m syndarix_sync.runner Procfile
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType

STOP_GRACE_SECONDS = 15
COLOURS = ("36", "33", "32", "35", "34", "31")
_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")
_print_lock = threading.Lock()


def expand(command: str, env: dict[str, str]) -> str:
    """The Procfile's ${NAME:-default} (the only shell syntax it uses)."""
    return _VAR.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), command)


def read_procfile(path: Path) -> list[tuple[str, str]]:
    entries = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and ":" in line:
            name, command = line.split(":", 1)
            entries.append((name.strip(), command.strip()))
    return entries


def say(text: str) -> None:
    with _print_lock:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def banner(env: dict[str, str]) -> str:
    port = env.get("SYNDARIX_PORT", "8000")
    public = env.get("PUBLIC_URL") or f"http://127.0.0.1:{port}"
    lines = [f"Syndarix Sync is ready — open {public.rstrip('/')}/admin/"]
    login = env.get("SYNDARIX_ADMIN_LOGIN", "").strip()
    if login:
        lines.append(login)
    if env.get("SYNDARIX_MCP_PORT"):
        lines.append(f"MCP for agents: http://127.0.0.1:{env['SYNDARIX_MCP_PORT']}/mcp")
    if env.get("DEMO_GITEA_PORT"):
        lines.append(f"Simulated Gitea: http://127.0.0.1:{env['DEMO_GITEA_PORT']}/")
    lines.append("Ctrl-C stops everything.")
    width = max(len(line) for line in lines) + 4
    rule = "=" * width
    return "\n".join([rule, *(f"  {line}" for line in lines), rule])


def wait_ready(port: str, stop: threading.Event, env: dict[str, str]) -> None:
    url = f"http://127.0.0.1:{port}/healthz"
    while not stop.is_set():
        try:
            with urllib.request.urlopen(url, timeout=2):
                break
        except urllib.error.HTTPError:
            break  # 503 "degraded" is still a web server that answers
        except OSError:
            stop.wait(0.5)
    if not stop.is_set():
        say(banner(env))


def pump(name: str, colour: str, stream: object, tty: bool) -> None:
    prefix = f"{name:<7}| "
    if tty:
        prefix = f"\x1b[{colour}m{prefix}\x1b[0m"
    for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
        say(prefix + raw.decode(errors="replace").rstrip("\n"))


def main(argv: list[str]) -> int:
    procfile = Path(argv[1] if len(argv) > 1 else "Procfile")
    env = dict(os.environ)
    tty = sys.stdout.isatty()
    # Human-readable log lines in a terminal; JSON (for log collectors) otherwise.
    env.setdefault("LOG_FORMAT", "console" if tty else "json")
    env["PYTHONUNBUFFERED"] = "1"
    processes: list[tuple[str, subprocess.Popen[bytes]]] = []
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    for index, (name, command) in enumerate(read_procfile(procfile)):
        process = subprocess.Popen(  # noqa: S603 - our own Procfile
            shlex.split(expand(command, env)),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        processes.append((name, process))
        colour = COLOURS[index % len(COLOURS)]
        threading.Thread(target=pump, args=(name, colour, process.stdout, tty), daemon=True).start()
    threading.Thread(
        target=wait_ready, args=(env.get("SYNDARIX_PORT", "8000"), stop, env), daemon=True
    ).start()
    failed = ""
    while not stop.is_set():
        for name, process in processes:
            if process.poll() is not None:
                failed = f"{name} exited with status {process.returncode}"
                stop.set()
        stop.wait(0.3)
    say(f"stopping ({failed})…" if failed else "stopping…")
    for _, process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for name, process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop in {STOP_GRACE_SECONDS} s: killed")
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    say("stopped.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""What the benchmark modules share: sizes, the run context, counting and profiling."""

from __future__ import annotations

import cProfile
import dataclasses
import io
import pstats
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.fakes import FakeHandle
from bench.services import VENV_BIN, Services


@dataclasses.dataclass(frozen=True)
class Sizes:
    intake_seconds: float = 15.0
    intake_warmup_seconds: float = 2.0
    intake_concurrency: int = 16
    intake_payloads: int = 200
    latency_rate: float = 100.0
    latency_seconds: float = 20.0
    latency_issues: int = 500
    latency_rate_high: float = 300.0
    drain_deliveries: int = 4_000
    reconcile_issues: int = 10_000
    poll_connections: int = 200
    poll_issues: int = 20
    outbound_edits: int = 1_000
    outbound_issues: int = 100
    merges: int = 100_000
    backlog_timeout: float = 240.0


FULL = Sizes()
SMOKE = Sizes(
    intake_seconds=1.0,
    intake_warmup_seconds=0.3,
    intake_concurrency=4,
    intake_payloads=5,
    latency_rate=20.0,
    latency_seconds=1.0,
    latency_issues=10,
    latency_rate_high=40.0,
    drain_deliveries=30,
    # More than one page for both providers (Gitea 50, GitHub 100 per page).
    reconcile_issues=120,
    poll_connections=3,
    poll_issues=3,
    outbound_edits=20,
    outbound_issues=4,
    merges=500,
    backlog_timeout=30.0,
)


@dataclasses.dataclass
class Context:
    services: Services
    sizes: Sizes
    profiles: Path  # where profiles of missed targets go
    log: Callable[[str], None]
    profile_missed: bool = True

    def profile_path(self, name: str) -> Path:
        self.profiles.mkdir(parents=True, exist_ok=True)
        return self.profiles / name


class QueryCounter:
    """Counts the SQL statements this thread's database connection executes."""

    def __init__(self) -> None:
        self.count = 0
        self.kinds: Counter[str] = Counter()

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        self.kinds[sql.lstrip().split(" ", 1)[0].upper()] += 1
        return execute(sql, params, many, context)


@contextmanager
def count_queries() -> Iterator[QueryCounter]:
    from django.db import connection

    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        yield counter


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def cprofile_to(path: Path, title: str, fn: Callable[[], Any]) -> Any:
    """Run `fn` under cProfile and write the top of the profile (cumulative and own time)."""
    profiler = cProfile.Profile()
    value = profiler.runcall(fn)
    out = io.StringIO()
    out.write(f"{title}\n\n== by cumulative time ==\n")
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
    out.write("\n== by own time ==\n")
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    path.write_text(out.getvalue())
    return value


def pyspy_available() -> str | None:
    return str(VENV_BIN / "py-spy") if (VENV_BIN / "py-spy").exists() else shutil.which("py-spy")


def pyspy_start(pid: int, seconds: float, path: Path) -> subprocess.Popen[bytes] | None:
    """Sample `pid` and its subprocesses for `seconds` (collapsed stacks to path); None
    when py-spy is not installed (`pip install py-spy` to get these profiles)."""
    binary = pyspy_available()
    if binary is None:
        return None
    return subprocess.Popen(  # noqa: S603 - py-spy on our own child
        [
            binary,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--duration",
            str(max(1, int(seconds))),
            "--rate",
            "200",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def summarise_collapsed(raw: Path, out: Path, title: str, top: int = 30) -> None:
    """Turn py-spy's collapsed stacks into "where the time goes": the functions on the most
    samples (inclusive) and the ones doing the work themselves (own)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    if not raw.exists():
        out.write_text(f"{title}\n\n(py-spy produced no samples)\n")
        return
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [f for f in stack.split(";") if f]
        # Skip the process/thread headers py-spy puts first.
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    lines = [title, "", f"{total} samples", "", "== inclusive (on the stack) =="]

    def share(n: int) -> str:
        return f"{100 * n / max(total, 1):6.1f}%"

    lines += [f"{share(n)}  {frame}" for frame, n in inclusive.most_common(top)]
    lines += ["", "== own (top of the stack) =="]
    lines += [f"{share(n)}  {frame}" for frame, n in own.most_common(top)]
    out.write_text("\n".join(lines) + "\n")


def make_connection(name: str, fake: FakeHandle, **extra: Any) -> Any:
    from integrations.models import Connection

    return Connection.objects.create(
        name=name,
        provider=fake.provider,
        base_url=fake.base_url,
        repository=fake.repository,
        api_token=fake.token,
        webhook_secret=fake.secret,
        **extra,
    )


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)

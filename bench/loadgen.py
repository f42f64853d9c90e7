"""The load generator: asyncio over plain keep-alive HTTP/1.1 sockets (standard library only).

A Python HTTP client costs CPU on the same two cores the server under test runs on; raw
asyncio streams with pre-built request bytes cost a fraction of what `requests` does, so
more of the machine is left to the service. Two shapes:

* closed loop (`closed_loop`): `concurrency` connections, each sending its next request as
  soon as the previous answer arrived, for a fixed time — sustained throughput;
* open loop (`open_loop`): requests started on a fixed schedule (`rate` per second)
  whatever the answers do, on as many connections as that needs — latency at a steady rate,
  measured from the scheduled time so that a stall is not hidden (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence


@dataclasses.dataclass
class Result:
    index: int
    status: int  # 0: no answer (connection error)
    sent_wall: float  # time.time() when the request was (scheduled to be) sent
    latency: float  # seconds to the complete answer
    body: bytes = b""


def build_request(
    *, host: str, port: int, path: str, headers: dict[str, str], body: bytes
) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [
        f"{k}: {v}"
        for k, v in headers.items()
        if k.lower() not in ("content-length", "host", "connection")
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def _drop(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self.writer is None:
                await self._open()
            assert self.reader is not None and self.writer is not None
            try:
                self.writer.write(raw)
                head = await self.reader.readuntil(b"\r\n\r\n")
            except (ConnectionError, asyncio.IncompleteReadError):
                # A kept-alive connection the server closed meanwhile: reconnect once.
                self._drop()
                if attempt == 2:
                    raise
                continue
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            # An HTTP/1.0 answer (the smoke run's wsgiref) closes the connection.
            length, close = 0, lines[0].startswith("HTTP/1.0")
            for line in lines[1:]:
                name, _, value = line.partition(":")
                lowered = name.strip().lower()
                if lowered == "content-length":
                    length = int(value.strip())
                elif lowered == "connection" and value.strip().lower() == "close":
                    close = True
            body = await self.reader.readexactly(length) if length else b""
            if close:
                self._drop()
            return status, body
        raise ConnectionError("unreachable")

    def close(self) -> None:
        self._drop()


async def _closed_loop(
    host: str, port: int, make: Callable[[int], bytes], concurrency: int, seconds: float
) -> list[Result]:
    results: list[Result] = []
    counter = iter(range(10**9))
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        connection = _Connection(host, port)
        try:
            while time.perf_counter() < deadline:
                index = next(counter)
                raw = make(index)
                wall, start = time.time(), time.perf_counter()
                try:
                    status, body = await connection.request(raw)
                except (OSError, asyncio.IncompleteReadError):
                    status, body = 0, b""
                    connection.close()
                    connection = _Connection(host, port)
                results.append(Result(index, status, wall, time.perf_counter() - start, body))
        finally:
            connection.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def closed_loop(
    *, host: str, port: int, make: Callable[[int], bytes], concurrency: int, seconds: float
) -> list[Result]:
    """Send `make(i)` for i = 0, 1, … on `concurrency` connections for `seconds`."""
    return asyncio.run(_closed_loop(host, port, make, concurrency, seconds))


async def _open_loop(host: str, port: int, requests: Sequence[bytes], rate: float) -> list[Result]:
    idle: list[_Connection] = []
    results: list[Result] = []
    tasks = []
    wall0, start = time.time(), time.perf_counter()

    async def send(index: int, raw: bytes, due: float) -> None:
        connection = idle.pop() if idle else _Connection(host, port)
        try:
            status, body = await connection.request(raw)
        except (OSError, asyncio.IncompleteReadError):
            status, body = 0, b""
            connection.close()
        else:
            idle.append(connection)
        results.append(Result(index, status, wall0 + due, time.perf_counter() - start - due, body))

    for index, raw in enumerate(requests):
        due = index / rate
        delay = start + due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(index, raw, due)))
    await asyncio.gather(*tasks)
    for connection in idle:
        connection.close()
    return results


def open_loop(*, host: str, port: int, requests: Sequence[bytes], rate: float) -> list[Result]:
    """Send `requests[i]` at time i / rate (seconds from now); latency from that time."""
    return asyncio.run(_open_loop(host, port, requests, rate))


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation): p99 of 1,000 values is the 990th."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * pct // 100)))
    return float(ordered[int(rank) - 1])

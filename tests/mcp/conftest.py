"""The MCP server over the real protocol: the SDK's own client against `manage.py mcp_server`
spawned as a child process, over stdio and over streamable HTTP on a free loopback port.

The child reads the test database (pytest-django's `test_…` name is handed to it in
DATABASE_URL), so the tests use `transactional_db`: what a test seeds is committed for the
child to see, and flushed afterwards. PostgreSQL only — an in-memory SQLite test database
cannot be shared with another process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

ROOT = Path(__file__).resolve().parents[2]
TOOLS = {
    "search_issues",
    "get_issue",
    "create_issue",
    "update_issue",
    "close_issue",
    "reopen_issue",
    "issue_history",
    "list_conflicts",
    "resolve_conflict",
    "sync_status",
    "sync_now",
}


def _test_database_url() -> str:
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = _test_database_url()
    env["CONN_MAX_AGE"] = "0"  # the test flushes tables between tests: hold no idle session
    env.pop("DJANGO_ENV", None)
    return env


def manage(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), "mcp_server", *args]


def stdio_client(key: str, *extra: str) -> Client:
    command = manage("--token", key, *extra)
    params = StdioServerParameters(
        command=command[0], args=command[1:], env=child_env(), cwd=str(ROOT)
    )
    return Client(params, read_timeout_seconds=30)


def http_client(url: str, key: str | None, agent: str | None = None) -> Client:
    headers = {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if agent is not None:
        headers["X-Agent-ID"] = agent
    transport: AbstractAsyncContextManager[Any] = streamable_http_client(
        url, http_client=create_mcp_http_client(headers=headers)
    )
    return Client(transport, read_timeout_seconds=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def mcp_http(django_db_setup: Any, django_db_blocker: Any) -> Iterator[str]:
    """`mcp_server --http` as the Procfile runs it, on a free loopback port."""
    with django_db_blocker.unblock():
        env = child_env()
    port = _free_port()
    process = subprocess.Popen(
        manage("--http", "--host", "127.0.0.1", "--port", str(port)),
        env=env,
        cwd=str(ROOT),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mcp_server --http exited: {process.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def in_thread(work: Any) -> Any:
    """Run ORM work from inside a client session (a worker thread, its own DB connection,
    closed after: an open one would keep the test database from being dropped)."""
    from django.db import connections

    def run() -> Any:
        try:
            return work()
        finally:
            connections.close_all()

    import anyio

    return await anyio.to_thread.run_sync(run)

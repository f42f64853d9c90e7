"""`manage.py mcp_server --token <API token>`: the MCP server over stdio (SPEC §6), for desktop
agents; `--http` serves it over streamable HTTP instead (the Procfile's `mcp` process)."""

from __future__ import annotations

import os
from typing import Any

import anyio
from django.core.management.base import BaseCommand, CommandError, CommandParser

from issues.mcp.auth import NotAuthenticated, authenticate

TOKEN_ENV = "SYNDARIX_MCP_TOKEN"


class Command(BaseCommand):
    help = "Serve the issue mirror as MCP tools: over stdio with --token, or over HTTP with --http."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--token",
            default=os.environ.get(TOKEN_ENV, ""),
            help=f"The API token the stdio server acts as (or ${TOKEN_ENV}, kept out of `ps`).",
        )
        parser.add_argument(
            "--agent-id", default=None, help="Agent id for calls that do not give their own."
        )
        parser.add_argument(
            "--http",
            action="store_true",
            help="Serve streamable HTTP at /mcp (each request carries its token).",
        )
        parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address.")
        parser.add_argument("--port", type=int, default=8001, help="HTTP port.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["http"]:
            self._serve_http(options)
        else:
            self._serve_stdio(options)

    def _serve_stdio(self, options: dict[str, Any]) -> None:
        from issues.mcp.server import SyndarixMCP

        key = options["token"]
        if not key:
            raise CommandError(f"--token (or ${TOKEN_ENV}) is required for the stdio server.")
        try:
            authenticate(key)  # fail at start, not on the agent's first call
        except NotAuthenticated as exc:
            raise CommandError(str(exc)) from exc
        mcp = SyndarixMCP(key=key, agent_id=options["agent_id"])
        anyio.run(mcp.server.run_stdio_async)

    def _serve_http(self, options: dict[str, Any]) -> None:
        import uvicorn

        from issues.mcp.http import MCP_PATH, build_app

        host, port = options["host"], options["port"]
        self.stderr.write(f"MCP over streamable HTTP on http://{host}:{port}{MCP_PATH}")
        uvicorn.run(
            build_app(host=host, agent_id=options["agent_id"]),
            host=host,
            port=port,
            log_level="warning",
            lifespan="on",
        )

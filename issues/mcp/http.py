"""The MCP server over streamable HTTP, as its own process (`mcp_server --http`, Procfile `mcp`).

A separate process on its own port: an agent's long-lived MCP session never holds a gunicorn
thread that the webhook intake needs. The API token comes in the `Authorization` header of
every request; a request without a valid token is refused with 401 before the MCP layer sees
it (and each tool call checks the token again, so a revoked token stops at once).
"""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from issues.mcp.auth import NotAuthenticated, authenticate, parse_authorization
from issues.mcp.server import SyndarixMCP

MCP_PATH = "/mcp"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _check_key(key: str | None) -> str | None:
    """None when the key is a live token, else the API's 401 detail."""
    close_old_connections()
    try:
        authenticate(key)
    except NotAuthenticated as exc:
        return str(exc)
    finally:
        close_old_connections()
    return None


class TokenGate:
    """Pure ASGI middleware: 401 with the API's words for a missing or bad token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan: starts the session manager
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = parse_authorization(headers.get("authorization"))
        refusal = await sync_to_async(_check_key, thread_sensitive=True)(key)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": refusal}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b'Bearer realm="mcp"'),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _transport_security(host: str) -> TransportSecuritySettings | None:
    """Host/Origin checks against DNS rebinding: the SDK's own for a loopback bind, else the
    service's ALLOWED_HOSTS (none when it allows any host)."""
    if host in LOOPBACK or "*" in settings.ALLOWED_HOSTS:
        return None
    hosts = [h.lstrip(".") for h in settings.ALLOWED_HOSTS]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*hosts, *(f"{h}:*" for h in hosts)],
        allowed_origins=[
            f"{scheme}://{h}{port}"
            for h in hosts
            for scheme in ("http", "https")
            for port in ("", ":*")
        ],
    )


def build_app(*, host: str = "127.0.0.1", agent_id: str | None = None) -> Any:
    mcp = SyndarixMCP(agent_id=agent_id)
    app = mcp.server.streamable_http_app(
        streamable_http_path=MCP_PATH, host=host, transport_security=_transport_security(host)
    )
    return TokenGate(app)

"""Who is calling: the API's own tokens and scopes, an agent id, and the audit correlation id.

Every call authenticates its key again (a token revoked while a session is open sees nothing
from the next call on) and gets a correlation id that names the token and the agent, so the
sync log rows and every log line of the call say who did it.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any, cast

from django.db.models import QuerySet
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from issues.api.authentication import MAX_KEY_LENGTH, ApiTokenAuthentication
from issues.api.permissions import connection_scope
from issues.models import ApiToken

# The correlation id is `mcp:t<token id>:<agent>:<random>` (SPEC: correlation ids are at most
# 64 characters of [A-Za-z0-9._:-]); the agent's part is cleaned and cut to fit.
_AGENT_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_AGENT_LENGTH = 24
NO_AGENT = "-"


class NotAuthenticated(Exception):
    """The key is missing, unknown or revoked; the message is the API's 401 detail."""


@dataclass(frozen=True)
class Caller:
    token: ApiToken
    agent_id: str
    correlation_id: str


class _TokenRequest:
    """Just enough of a DRF request for the API's scope function, which reads `auth`."""

    def __init__(self, token: ApiToken) -> None:
        self.auth = token


def token_scope(token: ApiToken) -> frozenset[int] | None:
    """The connection ids this token may see, or None for all. The ONE decision, taken by the
    API's own function (issues/api/permissions.py) so the MCP layer can never drift from it."""
    return connection_scope(cast(Request, _TokenRequest(token)))


def scoped(queryset: QuerySet[Any], token: ApiToken, connection_field: str) -> QuerySet[Any]:
    scope = token_scope(token)
    if scope is None:
        return queryset
    return queryset.filter(**{f"{connection_field}__in": scope})


def parse_authorization(header: str | None) -> str | None:
    """The key of an `Authorization: Bearer <key>` / `Token <key>` header (as the API reads it)."""
    parts = (header or "").split()
    if len(parts) != 2 or parts[0].lower() not in ("bearer", "token"):
        return None
    return parts[1]


def authenticate(key: str | None) -> ApiToken:
    """The active token for `key`, with the API's words for a refusal."""
    if not key:
        raise NotAuthenticated("Authentication credentials were not provided.")
    if len(key) > MAX_KEY_LENGTH or not key.isascii():
        raise NotAuthenticated("Invalid token.")
    try:
        _user, token = ApiTokenAuthentication().authenticate_key(key)
    except AuthenticationFailed as exc:
        raise NotAuthenticated(str(exc.detail)) from exc
    return token


def clean_agent_id(value: str | None) -> str:
    cleaned = _AGENT_UNSAFE.sub("_", (value or "").strip())[:MAX_AGENT_LENGTH].strip("_")
    return cleaned or NO_AGENT


def caller_for(key: str | None, agent_id: str | None) -> Caller:
    token = authenticate(key)
    agent = clean_agent_id(agent_id)
    cid = f"mcp:t{token.pk}:{agent}:{secrets.token_hex(6)}"
    return Caller(token=token, agent_id=agent, correlation_id=cid)

"""Who may do what: token scope (which connections a token sees) and connection writes.

A token sees the connections in its `connections` only (a scoped token) unless it was created
unscoped (`all_connections`). Every queryset of the API is narrowed to the scope, so anything
outside it answers 404, exactly like an id that does not exist. A scoped token whose
connections were all deleted sees nothing, and changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from issues.models import ApiToken

_SCOPE_CACHE_ATTRIBUTE = "_api_connection_scope"

# The model permissions the admin asks for, asked for by the API too (SPEC §6).
CONNECTION_WRITE_PERMISSIONS = {
    "POST": "integrations.add_connection",
    "PUT": "integrations.change_connection",
    "PATCH": "integrations.change_connection",
    "DELETE": "integrations.delete_connection",
}


def connection_scope(request: Request) -> frozenset[int] | None:
    """The connection ids the caller's token may see, or None for an unscoped token.

    Anything that is not an ApiToken gets the empty scope: fail closed. So does a scoped token
    whose connections are gone: only the explicit flag widens a scope to everything."""
    token = request.auth
    if not isinstance(token, ApiToken):
        return frozenset()
    if token.all_connections:
        return None
    if not hasattr(token, _SCOPE_CACHE_ATTRIBUTE):
        ids = frozenset(token.connections.values_list("id", flat=True))
        setattr(token, _SCOPE_CACHE_ATTRIBUTE, ids)
    scope: frozenset[int] = getattr(token, _SCOPE_CACHE_ATTRIBUTE)
    return scope


def scoped(queryset: QuerySet[Any], request: Request, connection_field: str) -> QuerySet[Any]:
    """Narrow `queryset` to the caller's connections; `connection_field` leads to the id."""
    scope = connection_scope(request)
    if scope is None:
        return queryset
    return queryset.filter(**{f"{connection_field}__in": scope})


class ConnectionWritePermission(BasePermission):
    """Any token reads the connections in its scope. Creating, changing or deleting one needs
    the user's model permission (add/change/delete connection), as in the admin; and only an
    unscoped token may create a connection (it would fall outside a scoped token's scope)."""

    message = "You do not have permission to change connections."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        needed = CONNECTION_WRITE_PERMISSIONS.get(request.method or "")
        user = request.user
        if needed is None or user is None or not user.has_perm(needed):
            self.message = f"This needs the {needed or 'write'} permission."
            return False
        if request.method == "POST" and connection_scope(request) is not None:
            self.message = "A token scoped to connections cannot create new connections."
            return False
        return True

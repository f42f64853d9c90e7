"""Who may do what: token scope (which connections a token sees) and staff-only config writes.

A token whose `connections` is non-empty is scoped: every queryset of the API is narrowed to
those connections, so anything outside the scope answers 404, exactly like an id that does
not exist. An unscoped token sees every connection.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from issues.models import ApiToken

_SCOPE_CACHE_ATTRIBUTE = "_api_connection_scope"


def connection_scope(request: Request) -> frozenset[int] | None:
    """The connection ids the caller's token may see, or None when it may see all.

    Anything that is not an ApiToken gets the empty scope: fail closed."""
    token = request.auth
    if not isinstance(token, ApiToken):
        return frozenset()
    if not hasattr(token, _SCOPE_CACHE_ATTRIBUTE):
        ids = frozenset(token.connections.values_list("id", flat=True))
        setattr(token, _SCOPE_CACHE_ATTRIBUTE, ids or None)
    scope: frozenset[int] | None = getattr(token, _SCOPE_CACHE_ATTRIBUTE)
    return scope


def scoped(queryset: QuerySet[Any], request: Request, connection_field: str) -> QuerySet[Any]:
    """Narrow `queryset` to the caller's connections; `connection_field` leads to the id."""
    scope = connection_scope(request)
    if scope is None:
        return queryset
    return queryset.filter(**{f"{connection_field}__in": scope})


class StaffWritesConnections(BasePermission):
    """Any token reads the connections in its scope; only staff create, change or delete them,
    and a scoped token may not create a connection (it would fall outside its own scope)."""

    message = "Only staff users may create, change or delete connections."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        if not (request.user and request.user.is_staff):
            return False
        if request.method == "POST" and connection_scope(request) is not None:
            self.message = "A token scoped to connections cannot create new connections."
            return False
        return True

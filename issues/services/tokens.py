from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import User
from django.db import transaction

from issues.models import ApiToken, hash_token


@transaction.atomic
def api_token_create(
    *,
    user: User,
    name: str = "",
    connection_ids: Sequence[int] = (),
    all_connections: bool = False,
) -> tuple[ApiToken, str]:
    """Mint a token; returns the row and the plaintext key, which is never stored.

    A token is scoped to `connection_ids` unless `all_connections` is chosen: an unscoped
    token is an explicit choice, never the result of an empty list (a token scoped to nothing
    sees nothing)."""
    if all_connections and connection_ids:
        raise ValueError("A token is either scoped to connections or unscoped, not both.")
    key = ApiToken.generate_key()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        key_hash=hash_token(key),
        prefix=key[:10],
        all_connections=all_connections,
    )
    if connection_ids:
        token.connections.set(connection_ids)
    return token, key

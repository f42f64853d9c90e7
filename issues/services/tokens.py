from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import User
from django.db import transaction

from issues.models import ApiToken, hash_token


@transaction.atomic
def api_token_create(
    *, user: User, name: str = "", connection_ids: Sequence[int] = ()
) -> tuple[ApiToken, str]:
    """Mint a token; returns the row and the plaintext key, which is never stored."""
    key = ApiToken.generate_key()
    token = ApiToken.objects.create(user=user, name=name, key_hash=hash_token(key), prefix=key[:10])
    if connection_ids:
        token.connections.set(connection_ids)
    return token, key

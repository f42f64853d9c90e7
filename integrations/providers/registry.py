"""Build a provider client for a connection, wired to the connection's rate-limit gate.

The name → class table itself lives in `integrations.providers` (imported by the models for
the provider choices); this module adds what needs Django: settings and the gate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

from integrations import providers
from integrations.providers.base import Capabilities, ProviderClient
from integrations.ratelimit import ConnectionGate

if TYPE_CHECKING:
    from integrations.models import Connection


def capabilities(provider: str) -> Capabilities:
    """What `provider`'s tracker can hold; UnknownProviderError without a client."""
    return providers.client_class(provider).capabilities


def client_for(connection: Connection, *, max_retries: int | None = None) -> ProviderClient:
    """`max_retries` overrides the transport's connection retries (the admin's connection
    test answers at once instead of retrying an unreachable host with back-off)."""
    cls = providers.client_class(connection.provider)
    options = {} if max_retries is None else {"max_retries": max_retries}
    return cls(
        base_url=connection.base_url,
        repository=connection.repository,
        token=connection.api_token,
        timeout=settings.PROVIDER_HTTP_TIMEOUT,
        allow_create_labels=connection.allow_create_labels,
        gate=ConnectionGate(connection.pk) if connection.pk is not None else None,
        **options,
    )

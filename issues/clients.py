"""Build a provider client for a connection (one requests.Session per client)."""

from __future__ import annotations

from django.conf import settings

from integrations import providers
from integrations.models import Connection
from integrations.providers.base import ProviderClient


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
        **options,
    )

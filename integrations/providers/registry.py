"""Build a provider client for a connection, wired to the connection's rate-limit gate.

The name → class table itself lives in `integrations.providers` (imported by the models for
the provider choices); this module adds what needs Django: settings and the gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings

from integrations import providers
from integrations.providers.base import (
    Capabilities,
    ConfigOption,
    ProviderClient,
    ProviderError,
    WebhookVerifier,
)
from integrations.ratelimit import ConnectionGate

if TYPE_CHECKING:
    from integrations.models import Connection


def capabilities(provider: str) -> Capabilities:
    """What `provider`'s tracker can hold; UnknownProviderError without a client."""
    return providers.client_class(provider).capabilities


def verifier(provider: str) -> WebhookVerifier:
    """`provider`'s webhook verifier and parser; UnknownProviderError without one."""
    return providers.webhooks(provider)


def config_options(provider: str) -> tuple[ConfigOption, ...]:
    """The keys `provider` accepts in Connection.config_json."""
    return providers.client_class(provider).config_options


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
        config=connection.config_json or {},
        **options,
    )


def refused_values(connection: Connection, values: Mapping[str, Any]) -> dict[str, str]:
    """The fields of `values` whose value the connection's tracker does not define, with why
    (SPEC §3: a label value Redmine does not define, a version it does not have, a login that
    is no assignable member — refused by the API with a 400 naming the field, never accepted
    and then failed in the outbox). Counts are the capabilities' `refusals` (the serializer);
    this asks the client's `refused_value`, which may read the tracker's lookups. A tracker
    that cannot be reached refuses nothing here: the outbox's own refusal still names it."""
    if not providers.is_supported(connection.provider):
        return {}  # no client: the connection cannot sync, and says so elsewhere
    cls = providers.client_class(connection.provider)
    asked = [f for f in ("labels", "assignees", "milestone") if f in values]
    if cls.refused_value is ProviderClient.refused_value or not asked:
        return {}
    found: dict[str, str] = {}
    client = client_for(connection, max_retries=0)
    try:
        for field in asked:
            try:
                reason = client.refused_value(field, values[field] or None)
            except ProviderError:
                return found
            if reason:
                found[field] = reason
    finally:
        client.close()
    return found

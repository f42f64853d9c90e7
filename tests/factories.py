"""factory-boy factories for test rows (instead of hand-built `objects.create` calls)."""

from __future__ import annotations

import factory
from factory.django import DjangoModelFactory

from integrations.models import Connection


class ConnectionFactory(DjangoModelFactory[Connection]):
    class Meta:
        model = Connection

    name = factory.Sequence(lambda n: f"connection-{n}")
    provider = "gitea"
    base_url = "http://127.0.0.1:1"
    repository = factory.Sequence(lambda n: f"acme/repo-{n}")
    api_token = "tracker-token"
    webhook_secret = "hook-secret"

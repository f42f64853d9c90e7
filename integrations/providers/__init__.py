"""Provider registry: name → client class and webhook verifier.

Imports are lazy so that loading one provider never pays for (or breaks on) another.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from integrations.providers.base import ProviderClient, WebhookVerifier

# provider name → (module, client class, webhook class)
_REGISTRY: dict[str, tuple[str, str, str]] = {
    "gitea": ("integrations.providers.gitea", "GiteaClient", "GiteaWebhooks"),
    "github": ("integrations.providers.github", "GitHubClient", "GitHubWebhooks"),
    "gitlab": ("integrations.providers.gitlab", "GitLabClient", "GitLabWebhooks"),
    "jira": ("integrations.providers.jira", "JiraClient", "JiraWebhooks"),
    "trello": ("integrations.providers.trello", "TrelloClient", "TrelloWebhooks"),
    "openproject": (
        "integrations.providers.openproject",
        "OpenProjectClient",
        "OpenProjectWebhooks",
    ),
    # Redmine has no webhooks (Capabilities.webhooks is False): no verifier, polled only.
    "redmine": ("integrations.providers.redmine", "RedmineClient", ""),
}

# Every provider the product names (SPEC §3); those not in _REGISTRY have no client yet.
PROVIDER_CHOICES: list[tuple[str, str]] = [
    ("gitea", "Gitea"),
    ("github", "GitHub"),
    ("gitlab", "GitLab"),
    ("jira", "Jira Cloud"),
    ("trello", "Trello"),
    ("openproject", "OpenProject"),
    ("redmine", "Redmine"),
]


class UnknownProviderError(LookupError):
    pass


def is_supported(provider: str) -> bool:
    return provider in _REGISTRY


def client_class(provider: str) -> type[ProviderClient]:
    try:
        module, client, _ = _REGISTRY[provider]
    except KeyError:
        raise UnknownProviderError(provider) from None
    cls: type[ProviderClient] = getattr(importlib.import_module(module), client)
    return cls


@cache
def webhooks(provider: str) -> WebhookVerifier:
    try:
        module, _, verifier = _REGISTRY[provider]
    except KeyError:
        raise UnknownProviderError(provider) from None
    if not verifier:  # a tracker without webhooks (Redmine): polled only
        raise UnknownProviderError(f"{provider} has no webhooks")
    instance: WebhookVerifier = getattr(importlib.import_module(module), verifier)()
    return instance

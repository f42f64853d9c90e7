"""Provider registry: name → client class and webhook verifier, found in the provider's module.

A provider is the module `integrations.providers.<name>` that defines a `ProviderClient`
subclass whose `provider` is `<name>` (and, when the tracker sends webhooks, a
`WebhookVerifier` subclass with the same `provider`). Nothing else names it: adding a provider
is adding its module. Lookups are lazy, so that loading one provider never pays for (or breaks
on) another.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from functools import cache
from types import ModuleType

from integrations.providers.base import ProviderClient, WebhookVerifier

# A provider name is a module name of this package (and a URL segment of the webhook intake).
_NAME = re.compile(r"[a-z][a-z0-9]{0,19}")


@cache
def _module(provider: str) -> ModuleType | None:
    if not _NAME.fullmatch(provider):
        return None
    name = f"{__name__}.{provider}"
    if importlib.util.find_spec(name) is None:
        return None
    return importlib.import_module(name)


def _declared(provider: str, kind: type) -> type | None:
    """The class of `kind` that `provider`'s module defines for `provider`, if any."""
    module = _module(provider)
    if module is None:
        return None
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, kind)
            and value.__module__ == module.__name__
            and getattr(value, "provider", None) == provider
        ):
            return value
    return None


@cache  # a module's classes do not change: asked on every webhook, scanned once
def _discover(provider: str) -> type[ProviderClient] | None:
    """`provider`'s client class, or None when no module of this package declares one."""
    return _declared(provider, ProviderClient)


# Every provider the product names (SPEC §3): the model field's choices (a migration each), so
# kept as a list; those whose module declares no client are not offered (admin, API).
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
    return _discover(provider) is not None


def client_class(provider: str) -> type[ProviderClient]:
    cls = _discover(provider)
    if cls is None:
        raise UnknownProviderError(provider)
    return cls


@cache
def webhooks(provider: str) -> WebhookVerifier:
    if _discover(provider) is None:
        raise UnknownProviderError(provider)
    verifier = _declared(provider, WebhookVerifier)
    if verifier is None:  # a tracker without webhooks (Redmine): polled only
        raise UnknownProviderError(f"{provider} has no webhooks")
    instance: WebhookVerifier = verifier()
    return instance

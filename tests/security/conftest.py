"""The API tests' world (users, tokens, two connections) for the security rules' tests."""

from __future__ import annotations

from tests.api.conftest import _fresh_throttle_budget, world

__all__ = ["_fresh_throttle_budget", "world"]

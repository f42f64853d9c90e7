"""Fixtures for the tests against a real Redmine (marker `redmine`).

The server starts once per test session, and only when a test that needs it runs (other
tests never pay for it); each test module gets a fresh project. Without a Redmine the tests
skip with the reason (the `redmine` marker in tests/conftest.py), and under REQUIRE_SERVICES=1
they fail instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.redmine.server import (
    RedmineProject,
    RedmineServer,
    Unavailable,
    drop_project,
    make_project,
    obtain,
)


@pytest.fixture(scope="session")
def redmine_server() -> RedmineServer:
    try:
        return obtain()
    except Unavailable as exc:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"REQUIRE_SERVICES=1 but no Redmine: {exc}", pytrace=False)
        pytest.skip(f"service missing: {exc}")


@pytest.fixture(scope="module")
def redmine_project(
    redmine_server: RedmineServer, request: pytest.FixtureRequest
) -> Iterator[RedmineProject]:
    project = make_project(redmine_server, request.module.__name__.rsplit(".", 1)[-1])
    yield project
    drop_project(project)

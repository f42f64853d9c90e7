"""Test-wide setup: service detection, and a CI flag that turns "skip" into "fail".

With REQUIRE_SERVICES=1 (set by .ci/run) a test marked `postgres`, `redis`, `browser` or
`redmine` fails when what it needs (PostgreSQL, Redis, Playwright with a Chromium, a real
Redmine from scripts/redmine-test-server) is missing instead of
skipping, so CI can never go green without them. On a bare machine the same tests skip and the
summary says exactly what was skipped.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from django.conf import settings

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
# Debian's Chromium: browser tests never download a browser of their own.
CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
_MISSING_KEY = pytest.StashKey[str]()  # why a test's service is missing, for the failure


def pytest_sessionstart(session: pytest.Session) -> None:
    # The provider contract tests skip without ../shared; CI has it, so there it is an error.
    from tests.shared_data import SHARED_DIR, shared_available

    if REQUIRE_SERVICES and not shared_available():
        pytest.exit(f"REQUIRE_SERVICES=1 but no shared fixtures at {SHARED_DIR}", returncode=1)


def pytest_configure(config: pytest.Config) -> None:
    # Celery reads Django settings lazily: load them now, before any test's `settings`
    # override could be frozen into the app's configuration for the rest of the run.
    from syndarix_sync.celery import app

    _ = app.conf.broker_url, app.conf.broker_write_url


def _redis_reachable(url: str) -> bool:
    if not url:
        return False
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1):
            return True
    except OSError:
        return False


def _browser_missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "needs Playwright (pip install playwright; no `playwright install` needed)"
    if not (os.path.isfile(CHROMIUM_PATH) and os.access(CHROMIUM_PATH, os.X_OK)):
        return f"needs Chromium at {CHROMIUM_PATH} (apt-get install chromium, or set CHROMIUM_PATH)"
    return None


def pytest_report_header(config: pytest.Config) -> list[str]:
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    redis_url = os.environ.get("REDIS_URL", "")
    return [
        f"syndarix: database={engine} redis={'yes' if _redis_reachable(redis_url) else 'no'} "
        f"require_services={REQUIRE_SERVICES}"
    ]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing: dict[str, str] = {}
    if not settings.IS_POSTGRES:
        missing["postgres"] = "needs PostgreSQL (set DATABASE_URL=postgres://…)"
    if not _redis_reachable(os.environ.get("REDIS_URL", "")):
        missing["redis"] = "needs Redis (set REDIS_URL=redis://…)"
    if any(item.get_closest_marker("browser") for item in items):
        browser = _browser_missing()
        if browser:
            missing["browser"] = browser
    if any(item.get_closest_marker("redmine") for item in items):
        # Cheap: is a server running, or can scripts/redmine-test-server start one? It starts
        # later, in the session fixture, only when a test that needs it runs.
        from tests.redmine.server import missing_reason

        redmine = missing_reason()
        if redmine:
            missing["redmine"] = redmine
    for item in items:
        for marker, reason in missing.items():
            if item.get_closest_marker(marker) is None:
                continue
            if REQUIRE_SERVICES:
                # Failed at setup (below): a missing service is an error in CI. (A `usefixtures`
                # mark added here would come too late: fixtures are resolved at collection.)
                item.stash[_MISSING_KEY] = reason
            else:
                item.add_marker(pytest.mark.skip(reason=f"service missing: {reason}"))


@pytest.fixture(autouse=True)
def _webhook_connections_forgotten() -> None:
    """Every test starts with the intake's connection cache empty: the rows a previous test
    created were rolled back, which sends no signal to clear it."""
    from integrations.webhooks import connection_cache

    connection_cache.invalidate()


@pytest.fixture(autouse=True)
def _deliveries_wake_flag_down() -> Iterator[None]:
    """The drain's wake-up flag lives in Redis, outside the test database: one a test left up
    (a wake-up it published that no worker started) would keep the next test's deliveries
    from publishing for the flag's lifetime."""
    from syndarix_sync.queueing import woken

    def lower() -> None:
        from issues.tasks import deliveries_wake_flag

        woken(deliveries_wake_flag())

    lower()
    yield
    lower()


def pytest_runtest_setup(item: pytest.Item) -> None:
    reason = item.stash.get(_MISSING_KEY, None)
    if reason is not None:
        pytest.fail(
            f"REQUIRE_SERVICES=1 but a service this test needs is missing: {reason}", pytrace=False
        )

"""Test-wide setup: service detection, and a CI flag that turns "skip" into "fail".

With REQUIRE_SERVICES=1 (set by .ci/run) a test marked `postgres` or `redis` fails when that
service is missing instead of skipping, so CI can never go green without them. On a bare
machine the same tests skip and the summary says exactly what was skipped.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest
from django.conf import settings

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


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
    for item in items:
        for marker, reason in missing.items():
            if item.get_closest_marker(marker) is None:
                continue
            if REQUIRE_SERVICES:
                # The fixture fails the test at setup: a missing service is an error in CI.
                item.add_marker(pytest.mark.usefixtures("_fail_missing_service"))
            else:
                item.add_marker(pytest.mark.skip(reason=f"service missing: {reason}"))


@pytest.fixture
def _fail_missing_service(request: pytest.FixtureRequest) -> None:
    pytest.fail("REQUIRE_SERVICES=1 but a service this test needs is missing", pytrace=False)

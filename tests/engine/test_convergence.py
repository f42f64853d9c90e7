"""The convergence simulation as a test: `SOAK_SCENARIOS` seeded scenarios per provider, for
every provider with a fake (its Kit in tests/providers/kits.py): 2 by default, so `make test`
stays fast; `make soak` runs 1,000 per provider. Each seed is its own test, so a failure
names the seed and provider to replay. On PostgreSQL the scenarios run transactionally,
with several worker threads."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.backends.signals import connection_created

from tests.engine.convergence import PROVIDERS, Scenario

SCENARIOS = int(os.environ.get("SOAK_SCENARIOS", "2"))
FIRST_SEED = int(os.environ.get("SOAK_FIRST_SEED", "1"))


def _no_commit_flush(sender: Any, connection: Any, **kwargs: Any) -> None:
    # The simulation tests the sync, not the disk: commits need not wait for the WAL flush
    # (a crash of PostgreSQL is the fault suites' business). Thousands of scenarios commit
    # hundreds of thousands of times.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit = off")


@pytest.fixture(autouse=True)
def _fast_commits() -> Iterator[None]:
    connection_created.connect(_no_commit_flush)
    if connection.connection is not None:
        _no_commit_flush(None, connection)
    try:
        yield
    finally:
        connection_created.disconnect(_no_commit_flush)


@pytest.mark.django_db(transaction=True)
# Seed outermost: the providers take turns, so a soak stopped early covers them all.
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("seed", range(FIRST_SEED, FIRST_SEED + SCENARIOS))
def test_both_sides_converge_and_nothing_is_lost(provider: str, seed: int) -> None:
    threads = connection.vendor == "postgresql"
    outcome = Scenario(seed, provider=provider, threads=threads).run()
    assert outcome.rounds_to_quiescence > 0, outcome
    assert outcome.problems == [], f"seed {seed} ({provider}, {outcome.policy}): {outcome}"
    metrics = (outcome.divergence, outcome.lost_edits, outcome.duplicates, outcome.noop_writes)
    assert metrics == (0, 0, 0, 0)

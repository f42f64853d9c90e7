"""The convergence simulation as a test: `SOAK_SCENARIOS` seeded scenarios (30 by default;
`make soak` runs 1,000). Each seed is its own test, so a failure names the seed to replay."""

from __future__ import annotations

import os

import pytest

from tests.engine.convergence import PROVIDERS, Scenario

SCENARIOS = int(os.environ.get("SOAK_SCENARIOS", "30"))
FIRST_SEED = int(os.environ.get("SOAK_FIRST_SEED", "1"))


@pytest.mark.django_db
@pytest.mark.parametrize("seed", range(FIRST_SEED, FIRST_SEED + SCENARIOS))
def test_both_sides_converge_and_nothing_is_lost(seed: int) -> None:
    provider = PROVIDERS[seed % len(PROVIDERS)]  # every provider's fake in turn
    outcome = Scenario(seed, provider=provider).run()
    assert outcome.rounds_to_quiescence > 0, outcome
    assert outcome.problems == [], f"seed {seed} ({provider}, {outcome.policy}): {outcome.problems}"

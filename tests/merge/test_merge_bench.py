from __future__ import annotations

import pytest

from issues.merge_bench import merges_per_second


def test_merges_per_second_runs_and_is_positive() -> None:
    rate = merges_per_second(50)
    assert isinstance(rate, float)
    assert rate > 0


def test_merges_per_second_rejects_non_positive_n() -> None:
    with pytest.raises(ValueError):
        merges_per_second(0)

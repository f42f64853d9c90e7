"""Retry-After values that look like digits to Python but are not ASCII digits."""

from __future__ import annotations

import pytest

from integrations.providers.http import retry_after_seconds


@pytest.mark.parametrize("value", ["²", "٣", "１２"])
def test_a_non_ascii_digit_retry_after_is_no_wait_not_a_crash(value: str) -> None:
    """Failed before: `'²'.isdigit()` is True and `float('²')` raised ValueError (found by
    tests/security/test_parser_fuzz.py)."""
    assert retry_after_seconds({"Retry-After": value}, now=1_700_000_000.0) is None

"""The shape helpers every provider parses tracker JSON with."""

import pytest

from integrations.providers.shapes import MAX_ID, ShapeError, require_int


@pytest.mark.parametrize("value", [0, 1, 12345, MAX_ID])
def test_an_id_in_range_is_taken(value: int) -> None:
    assert require_int({"id": value}, "id", "issue") == value


@pytest.mark.parametrize("value", [-1, -MAX_ID, MAX_ID + 1, True, 1.5, "7", None])
def test_a_negative_oversized_or_non_integer_id_is_a_shape_error(value: object) -> None:
    # A forged GitLab payload with iid -1 was accepted as issue number "-1" (the parser fuzz
    # test found it): no tracker numbers an issue below zero.
    with pytest.raises(ShapeError):
        require_int({"id": value}, "id", "issue")

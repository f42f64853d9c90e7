"""The nesting check both the webhook intake and the API run before decoding JSON."""

from __future__ import annotations

import json

import pytest

from syndarix_sync.json_depth import json_depth_within


@pytest.mark.parametrize(
    ("body", "limit", "within"),
    [
        (b"{}", 1, True),
        (b'{"a": [1, {"b": []}]}', 4, True),
        (b'{"a": [1, {"b": []}]}', 3, False),
        (b'{"t": "[[[[[[[[{{{{{{"}', 1, True),  # brackets inside a string do not nest
        (b'{"t": "a \\" [[[[ \\\\"}', 1, True),  # an escaped quote does not end the string
        (b'{"t": "\\\\"}, [[[', 2, False),  # an escaped backslash does not escape the quote
        (b"[" * 10_000 + b"]" * 10_000, 200, False),
        (b"[" * 200 + b"]" * 200, 200, True),
        (b"not json at all [[[", 1, False),  # not a validator: the decoder refuses the rest
    ],
)
def test_depth(body: bytes, limit: int, within: bool) -> None:
    assert json_depth_within(body, limit) is within


def test_agrees_with_the_decoder_on_real_documents() -> None:
    doc = {"issue": {"labels": [{"name": "[x]"}], "body": "{{not}} [nested]"}, "n": [[1], [2]]}
    body = json.dumps(doc).encode()
    assert json_depth_within(body, 4) and not json_depth_within(body, 3)

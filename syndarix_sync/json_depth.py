"""How deeply a JSON text nests, found without decoding it, in time linear in the body.

Python's decoder recurses once per level: a body nested 10,000 deep raises RecursionError
wherever it is decoded, and one a few hundred deep parses only to crash later wherever the
value is walked again. Both the webhook intake and the API refuse such bodies up front.

Why not a loop over the brackets: it ran in Python once per bracket, 13.6 s for a 25 MB body
of `[],[],…`. Here every step is one pass of C code over the body (bytes.replace,
bytes.translate, one regular expression without backtracking): tens of milliseconds for that
body, a few hundred for the worst shapes (figures in tests/security/test_body_limits.py).
"""

from __future__ import annotations

import re
from functools import cache

_OPEN, _CLOSE = b"\x01", b"\xff"
# Brackets become one byte per direction; quotes stay; every other byte is deleted.
_TABLE = bytes.maketrans(b"[{]}", _OPEN * 2 + _CLOSE * 2)
_DELETE = bytes(c for c in range(256) if c not in b'[]{}"')
_STRING = rb'"[^"]*+(?:"|\Z)'  # a string (its brackets are content), closed or not


@cache
def _within(limit: int, *, strings: bool) -> re.Pattern[bytes]:
    """A regular expression for "nests at most `limit` deep": nesting bounded by a constant is
    a regular language. Possessive repeats, so matching never backtracks (linear time). An
    unclosed bracket or string at the end, or a stray closer at the top, is not counted as
    nesting (malformed JSON is the decoder's to refuse)."""
    atom = rb"|" + _STRING if strings else b""
    level = rb"(?:" + _STRING + rb")*+" if strings else b""
    for _ in range(max(limit - 1, 0)):
        level = rb"(?:\x01" + level + rb"(?:\xff|\Z)" + atom + rb")*+"
    if limit == 0:
        return re.compile(rb"(?:" + _STRING + rb"|\xff)*+" if strings else rb"\xff*+")
    return re.compile(rb"(?:\x01" + level + rb"(?:\xff|\Z)" + atom + rb"|\xff)*+")


def json_depth_within(body: bytes, limit: int) -> bool:
    """Whether the JSON text `body` nests at most `limit` arrays/objects deep (brackets inside
    strings do not count). Not a validator: malformed JSON is the decoder's to refuse."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return True  # cannot nest deeper than it has brackets
    if b"\\" in body:
        # Escapes only occur in strings; a run of backslashes pairs up from its left, so
        # dropping `\\` pairs first and then `\"` leaves exactly the quotes that delimit.
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Only brackets and quotes; then strings without brackets (`""` now) go.
    shape = body.translate(_TABLE, _DELETE).replace(b'""', b"")
    if b'"' in shape:
        return _within(limit, strings=True).fullmatch(shape) is not None
    # Brackets only. Each pass of dropping `[]` pairs (empty containers) lowers the deepest
    # nesting by exactly one; passes are cheap while they shrink the text a lot.
    original = shape
    removed = 0
    while removed < limit and shape:
        shorter = shape.replace(_OPEN + _CLOSE, b"")
        if len(shorter) == len(shape):
            break
        shrunk_enough = len(shorter) * 2 < len(shape)
        shape = shorter
        removed += 1
        if not shrunk_enough:
            break
    if not shape:
        return True
    if _within(limit - removed, strings=False).fullmatch(shape) is not None:
        return True
    # "Exactly one" holds for well-formed brackets; an unclosed one could make a body look
    # deeper after the passes, so a refusal is confirmed on the text as it was.
    return removed > 0 and _within(limit, strings=False).fullmatch(original) is not None

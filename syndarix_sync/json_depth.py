"""How deeply a JSON text nests, found without decoding it.

Python's decoder recurses once per level: a body nested 10,000 deep raises RecursionError
wherever it is decoded, and one a few hundred deep parses only to crash later wherever the
value is walked again. Both the webhook intake and the API refuse such bodies up front.
"""

from __future__ import annotations

import re

# The only bytes that matter for nesting: brackets, and what starts, ends or escapes a string.
_STRUCTURE = re.compile(rb'["\\\[\]{}]')


def json_depth_within(body: bytes, limit: int) -> bool:
    """Whether the JSON text `body` nests at most `limit` arrays/objects deep (brackets inside
    strings do not count). Not a validator: malformed JSON is the decoder's to refuse."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return True  # cannot nest deeper than it has brackets
    depth = 0
    in_string = False
    escaped_at = -1  # the position of the character a backslash escapes
    for match in _STRUCTURE.finditer(body):
        position = match.start()
        if position == escaped_at:
            continue
        char = body[position]
        if in_string:
            if char == 0x5C:  # backslash
                escaped_at = position + 1
            elif char == 0x22:  # quote
                in_string = False
        elif char == 0x22:
            in_string = True
        elif char in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return False
        elif char in (0x5D, 0x7D):  # ] }
            depth -= 1
    return True

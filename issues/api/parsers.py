"""The API's JSON parser: DRF's, refusing JSON nested deeper than any request of the API.

Why: Python's decoder recurses once per level, so a body nested 10,000 deep raised a
RecursionError — an uncaught 500 — and one nested a few hundred deep still parsed, to crash
later wherever the value is walked again (a JSONField, the idempotency fingerprint). No
request of this API nests deeper than three levels (`{"values": {"labels": [...]}}`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_JSON_DEPTH = 32
# The only bytes that matter for nesting: brackets, and what starts, ends or escapes a string.
_STRUCTURE = re.compile(rb'["\\\[\]{}]')


def json_depth_within(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
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


class JSONParser(parsers.JSONParser):
    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        # DRF hands a JSON parser the body already read (and size-checked by Django).
        body = stream.read()
        if not json_depth_within(body):
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
        try:
            return super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:  # a guard behind the check above, never reached by design
            raise ParseError("JSON parse error - nested too deeply.") from None

"""The API's JSON parser: DRF's, refusing JSON nested deeper than any request of the API.

Why: Python's decoder recurses once per level, so a body nested 10,000 deep raised a
RecursionError — an uncaught 500 — and one nested a few hundred deep still parsed, to crash
later wherever the value is walked again (a JSONField, the idempotency fingerprint). No
request of this API nests deeper than three levels (`{"values": {"labels": [...]}}`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from syndarix_sync.json_depth import json_depth_within

MAX_JSON_DEPTH = 32


class JSONParser(parsers.JSONParser):
    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        # DRF hands a JSON parser the body already read (and size-checked by Django).
        body = stream.read()
        if not json_depth_within(body, MAX_JSON_DEPTH):
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
        try:
            return super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:  # a guard behind the check above, never reached by design
            raise ParseError("JSON parse error - nested too deeply.") from None

"""Pieces shared by the OpenAPI descriptions of the views: error responses, the
Idempotency-Key header, and a helper that puts them together for each operation."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema

from issues.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from issues.api.serializers import ConflictErrorSerializer, ErrorSerializer

IDEMPOTENCY_KEY = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="Makes a retry safe: the same key with the same request replays the first "
    "(successful) response without a second change; the same key with a different request "
    "is refused with 409. Keys expire after 24 hours.",
)

OBJECT_ID = OpenApiParameter(
    "id",
    {"type": "integer", "minimum": 1},
    OpenApiParameter.PATH,
    description="The object's id.",
)

BAD_REQUEST = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="Invalid input: an object naming each bad field (or query parameter) with "
    'its messages, e.g. `{"title": ["This field is required."]}`.',
)
UNAUTHENTICATED = OpenApiResponse(ErrorSerializer, description="Missing, invalid or revoked token.")
FORBIDDEN = OpenApiResponse(ErrorSerializer, description="The token's user may not do this.")
NOT_FOUND = OpenApiResponse(
    ErrorSerializer, description="No such object within the token's scope (or no such page)."
)
CONFLICT = OpenApiResponse(
    ConflictErrorSerializer,
    description="The request conflicts with the current state (see `code`), or its "
    "Idempotency-Key was used for a different request or is still in progress.",
)
THROTTLED = OpenApiResponse(ErrorSerializer, description="Too many requests; see Retry-After.")
BAD_GATEWAY = OpenApiResponse(ErrorSerializer, description="The tracker failed or refused.")


def api_operation(
    *,
    summary: str,
    tag: str,
    responses: Mapping[int, Any],
    description: str | None = None,
    request: Any = None,
    write: bool = False,
    has_id: bool = False,
    is_list: bool = False,
    parameters: Sequence[OpenApiParameter] = (),
    examples: Sequence[OpenApiExample] = (),
) -> Callable[[Any], Any]:
    """extend_schema with the error responses every such operation can give."""
    all_responses: dict[int, Any] = {401: UNAUTHENTICATED, 429: THROTTLED}
    if write or is_list:
        all_responses[400] = BAD_REQUEST
    if has_id or is_list:
        all_responses[404] = NOT_FOUND
    if write:
        all_responses[409] = CONFLICT
    all_responses.update(responses)
    return extend_schema(
        summary=summary,
        description=description,
        tags=[tag],
        request=request,
        responses=all_responses,
        parameters=[
            *([OBJECT_ID] if has_id else []),
            *parameters,
            *([IDEMPOTENCY_KEY] if write else []),
        ],
        examples=list(examples) or None,
    )

"""The one webhook decoder: raw delivery bytes → WebhookEvent, for the intake and the worker.

The intake (integrations.webhooks) decodes to answer 400 for a body no tracker sends; the
worker (issues.inbound) decodes the stored bytes again to apply them. Both call this module,
so a body the intake accepted is a body the worker can read (a form-encoded GitHub delivery
carries its JSON in `payload=`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from integrations.providers.base import WebhookEvent, WebhookPayloadError, WebhookVerifier
from integrations.providers.shapes import header

FORM_TYPE = "application/x-www-form-urlencoded"


def decode_body(body: bytes, content_type: str) -> Any:
    """The JSON document of a delivery; WebhookPayloadError when there is none."""
    try:
        if content_type.strip().lower().startswith(FORM_TYPE):
            # GitHub hooks configured for form encoding put the JSON in `payload=`.
            form = parse_qs(body.decode("utf-8"), strict_parsing=False)
            if "payload" not in form:
                raise WebhookPayloadError("form body without a payload field")
            return json.loads(form["payload"][0])
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, WebhookPayloadError):
            raise
        raise WebhookPayloadError("body is not valid JSON") from exc


def parse_delivery(
    verifier: WebhookVerifier,
    *,
    event: str,
    body: bytes,
    headers: Mapping[str, str],
    base_url: str,
) -> WebhookEvent:
    """Decode and parse one delivery; WebhookPayloadError for anything a tracker would not
    send (the caller answers 400, or marks a stored delivery failed)."""
    payload = decode_body(body, header(headers, "Content-Type") or "")
    try:
        return verifier.parse(event=event, payload=payload, base_url=base_url)
    except WebhookPayloadError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise WebhookPayloadError(type(exc).__name__) from exc

"""SPEC §8: API request bodies are limited separately from webhooks (default 1 MB,
API_MAX_BODY_BYTES, answered 413 before reading); every size and depth check is linear.

Issue 11 finding 6 (repro): DATA_UPLOAD_MAX_MEMORY_SIZE was the 25 MB webhook limit, so it
covered the API too, and one 25 MB `[],[],…` body kept a worker busy (the depth check alone
took 13.6 s there; 5.4 s on this machine's old code).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings

from syndarix_sync.json_depth import json_depth_within
from tests.api.conftest import World
from tests.security.streams import CountingStream

MB = 1024 * 1024
WEBHOOK_BODY = 25 * MB
# What took 5.4 s here before (13.6 s in the review): a flat list of empty lists.
FLAT = b"[" + b"[]," * (WEBHOOK_BODY // 3 - 1) + b"[]]"
# The slowest shapes for the new check: 31-deep nests side by side, and strings with
# brackets inside (they keep the quotes in play).
DEEP_31 = (b"[" * 31 + b"1" + b"]" * 31 + b",") * (WEBHOOK_BODY // 64)
BRACKETS_IN_STRINGS = b"[" + b'"[",' * (WEBHOOK_BODY // 4) + b"1]"


def _post(world: World, path: str, body: bytes, **headers: str) -> tuple[Any, CountingStream]:
    stream = CountingStream(body)
    response = Client().generic(
        "POST",
        path,
        headers={"Authorization": f"Bearer {world.staff_key}", **headers},
        **{
            "wsgi.input": stream,
            "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": "application/json",
        },
    )
    return response, stream


def test_the_api_limit_is_1_mb_by_default() -> None:
    assert settings.API_MAX_BODY_BYTES == MB
    assert settings.WEBHOOK_MAX_BODY_BYTES == WEBHOOK_BODY


@pytest.mark.parametrize("path", ["/api/v1/issues/", "/api/v1/sync/configs/"])
def test_an_api_body_over_the_limit_is_413_before_it_is_read(world: World, path: str) -> None:
    body = b'{"title": "' + b"x" * (2 * MB) + b'"}'
    response, stream = _post(world, path, body)
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "request_too_large"
    assert stream.bytes_read == 0


def test_the_api_limit_is_a_setting(world: World) -> None:
    body = b'{"connection": %d, "title": "%s"}' % (world.alpha.pk, b"x" * 900)
    with override_settings(API_MAX_BODY_BYTES=512):
        response, stream = _post(world, "/api/v1/issues/", body)
    assert response.status_code == 413 and stream.bytes_read == 0
    response, _ = _post(world, "/api/v1/issues/", body)
    assert response.status_code == 201, response.content


def test_webhooks_keep_their_own_larger_limit(world: World) -> None:
    body = b'{"padding": "' + b"x" * (2 * MB) + b'"}'
    response = Client().generic(
        "POST",
        f"/webhooks/gitea/{world.alpha.pk}/",
        body,
        content_type="application/json",
        headers={"X-Gitea-Event": "issues"},
    )
    assert response.status_code == 401  # read, then refused for its signature, not its size


@pytest.mark.parametrize(
    ("name", "body", "within"),
    [("flat", FLAT, True), ("deep_31", DEEP_31, True), ("strings", BRACKETS_IN_STRINGS, True)],
)
def test_the_depth_check_of_a_25_mb_body_is_fast(name: str, body: bytes, within: bool) -> None:
    started = time.perf_counter()
    assert json_depth_within(body, 32) is within
    elapsed = time.perf_counter() - started
    print(f"depth check of {len(body) / MB:.0f} MB ({name}): {elapsed:.3f} s")
    # Measured 0.09-0.16 s (flat), ~0.6 s (deep_31), ~0.2 s (strings) on a shared 2-core
    # machine; the old loop took 5.4 s for `flat`. The bound leaves room for a loaded CI.
    assert elapsed < 1.5


def test_a_signed_25_mb_webhook_nested_too_deep_is_refused_fast(world: World) -> None:
    body = b"[" * 250 + FLAT[: WEBHOOK_BODY - 500] + b"]" * 250  # webhooks allow 200 levels
    signature = hmac.new(b"alpha-secret", body, hashlib.sha256).hexdigest()
    started = time.perf_counter()
    response = Client().generic(
        "POST",
        f"/webhooks/gitea/{world.alpha.pk}/",
        body,
        content_type="application/json",
        headers={"X-Gitea-Event": "issues", "X-Gitea-Signature": signature},
    )
    elapsed = time.perf_counter() - started
    print(f"signed 25 MB webhook, refused for depth: {elapsed:.3f} s")
    assert response.status_code == 400, response.content
    assert elapsed < 3.0

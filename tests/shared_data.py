"""Where `../shared` lives and helpers to read its fixtures and specs (never copied here)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path
from typing import NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("SYNDARIX_SHARED_DIR", REPO_ROOT.parent / "shared"))
LOCAL_FIXTURES = Path(__file__).resolve().parent / "fixtures"


def shared_available() -> bool:
    return (SHARED_DIR / "fixtures").is_dir()


def missing_shared(reason: str) -> NoReturn:
    """Skip on a machine without ../shared; fail in CI (REQUIRE_SERVICES=1), where it is."""
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"shared data missing in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def shared_fixture_paths(provider: str) -> list[Path]:
    folder = SHARED_DIR / "fixtures" / provider
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def spec_path(provider: str) -> Path:
    return SHARED_DIR / "specs" / f"{provider}.json"


def event_from_fixture_name(path: Path) -> str:
    """Zulip naming: `<event>__<variant>.json` → `<event>`."""
    return path.stem.split("__", 1)[0]


# Signature helpers: computed over the exact bytes, never hard-coded in tests.
def hmac_sha256_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac_sha256_hex(secret, body)


def gitea_signature(secret: str, body: bytes) -> str:
    return hmac_sha256_hex(secret, body)


def openproject_signature(secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def trello_signature(app_secret: str, body: bytes, callback_url: str) -> str:
    digest = hmac.new(app_secret.encode(), body + callback_url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()

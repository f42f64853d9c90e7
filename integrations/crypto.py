"""Encryption at rest for tokens and secrets (Fernet, with MultiFernet for key rotation).

`FIELD_ENCRYPTION_KEY` may be a Fernet key or any passphrase; a passphrase is stretched to a
Fernet key with SHA-256 so that operators can use whatever their secret store hands out.
Rotation: put the new key in FIELD_ENCRYPTION_KEY, the old one in FIELD_ENCRYPTION_OLD_KEYS,
run `manage.py rotate_encryption_key`, then drop the old key.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models

PREFIX = "enc1:"
MASK_NOTHING_BELOW = 16
MASK_SUFFIX_FROM = 32


def _fernet_for(key: str) -> Fernet:
    try:
        return Fernet(key.encode())
    except (ValueError, TypeError):
        digest = hashlib.sha256(key.encode()).digest()
        return Fernet(base64.urlsafe_b64encode(digest))


@cache
def _multi(primary: str, old: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_fernet_for(primary), *(_fernet_for(k) for k in old)])


def cipher() -> MultiFernet:
    return _multi(settings.FIELD_ENCRYPTION_KEY, tuple(settings.FIELD_ENCRYPTION_OLD_KEYS))


class DecryptionError(Exception):
    """The stored value was encrypted with a key we no longer have."""


def encrypt(plaintext: str) -> str:
    return PREFIX + cipher().encrypt(plaintext.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        raise DecryptionError("value is not encrypted with a known scheme")
    try:
        return cipher().decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError(
            "cannot decrypt: FIELD_ENCRYPTION_KEY changed without FIELD_ENCRYPTION_OLD_KEYS"
        ) from exc


def rotate(stored: str) -> str:
    """Re-encrypt with the primary key (MultiFernet.rotate keeps the original timestamp)."""
    return PREFIX + cipher().rotate(stored[len(PREFIX) :].encode()).decode()


def mask(secret: str) -> str:
    """What an admin may see of a secret: enough to recognise it, never enough to use it.

    Nothing of a short secret (a 9-character one used to show 6 of its characters); the
    first four (often a type prefix such as `ghp_`) of a medium one; four and the last two
    of a long one, where they leave most of it unknown."""
    if not secret:
        return ""
    if len(secret) < MASK_NOTHING_BELOW:
        return "•" * 8
    if len(secret) < MASK_SUFFIX_FROM:
        return f"{secret[:4]}…"
    return f"{secret[:4]}…{secret[-2:]}"


class EncryptedTextField(models.TextField):
    """Text stored as Fernet ciphertext; Python code only ever sees the plaintext."""

    def from_db_value(self, value: str | None, expression: object, connection: object) -> str:
        if value is None or value == "":
            return ""
        return decrypt(value)

    def get_prep_value(self, value: object) -> str:
        text = "" if value is None else str(value)
        if text == "":
            return ""
        return encrypt(text)

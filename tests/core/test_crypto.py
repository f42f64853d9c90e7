from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from integrations import crypto


def test_round_trip_and_ciphertext_differs_each_time() -> None:
    first = crypto.encrypt("s3cret")
    second = crypto.encrypt("s3cret")
    assert first != second
    assert crypto.decrypt(first) == "s3cret"


def test_key_rotation_keeps_old_values_readable_and_rewrites_them(settings) -> None:
    old_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = old_key
    settings.FIELD_ENCRYPTION_OLD_KEYS = []
    stored = crypto.encrypt("token-value")

    settings.FIELD_ENCRYPTION_KEY = "a brand new passphrase"
    settings.FIELD_ENCRYPTION_OLD_KEYS = [old_key]
    assert crypto.decrypt(stored) == "token-value"
    rotated = crypto.rotate(stored)

    settings.FIELD_ENCRYPTION_OLD_KEYS = []
    assert crypto.decrypt(rotated) == "token-value"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(stored)


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        ("", ""),
        ("short", "••••••••"),
        ("ghp_abcdefghijklmnop", "ghp_…"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456", "ghp_…56"),
    ],
)
def test_mask_never_shows_the_whole_secret(secret: str, shown: str) -> None:
    assert crypto.mask(secret) == shown

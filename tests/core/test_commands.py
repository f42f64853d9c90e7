from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.core.management import call_command

from integrations.models import Connection
from issues.models import ApiToken, hash_token


@pytest.mark.django_db
def test_create_api_token_creates_user_and_prints_key_alone_on_last_line() -> None:
    out = StringIO()
    call_command("create_api_token", "agent-7", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    assert key.startswith("sx_") and " " not in key
    user = get_user_model().objects.get(username="agent-7")
    token = ApiToken.objects.get(user=user)
    assert token.key_hash == hash_token(key)
    assert key not in token.key_hash and token.prefix == key[:10]

    # A second token for the same user: the user is reused.
    call_command("create_api_token", "agent-7", stdout=StringIO())
    assert get_user_model().objects.filter(username="agent-7").count() == 1
    assert ApiToken.objects.filter(user=user).count() == 2


@pytest.mark.django_db
def test_ensure_admin_generates_password_once_then_leaves_it(monkeypatch) -> None:
    monkeypatch.setenv("ADMIN_USERNAME", "root")
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    password = out.getvalue().strip().split(" / ")[-1]
    user = get_user_model().objects.get(username="root")
    assert user.is_superuser and user.check_password(password)
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    assert password not in out.getvalue()
    assert get_user_model().objects.get(username="root").check_password(password)


@pytest.mark.django_db
def test_ensure_admin_takes_admin_password(monkeypatch) -> None:
    monkeypatch.setenv("ADMIN_PASSWORD", "correct horse battery")
    call_command("ensure_admin", stdout=StringIO())
    assert get_user_model().objects.get(username="admin").check_password("correct horse battery")


@pytest.mark.django_db
def test_rotate_encryption_key_rewrites_secrets_under_the_new_key(settings) -> None:
    old = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = old
    settings.FIELD_ENCRYPTION_OLD_KEYS = []
    conn = Connection.objects.create(
        name="c",
        provider="gitea",
        base_url="http://x",
        repository="a/b",
        api_token="tok",
        webhook_secret="sec",
    )
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_OLD_KEYS = [old]
    call_command("rotate_encryption_key", stdout=StringIO())
    settings.FIELD_ENCRYPTION_OLD_KEYS = []
    fresh = Connection.objects.get(pk=conn.pk)
    assert (fresh.api_token, fresh.webhook_secret) == ("tok", "sec")

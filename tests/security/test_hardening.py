"""SPEC §8 hardening: throttle counters shared by all processes; DJANGO_ENV=production
refuses a wildcard ALLOWED_HOSTS, an encryption key that is not a Fernet key and a generated
admin password; proxy headers trusted only with TRUST_X_FORWARDED_PROTO; mask() shows
nothing of short secrets.

Issue 11 finding 8 (repro): counters lived in a per-process LocMemCache;
SECURE_PROXY_SSL_HEADER was always set in production; ALLOWED_HOSTS='*' and a passphrase key
were accepted; ensure_admin printed a generated password (into container logs).
"""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from django.test import override_settings

from integrations.crypto import mask
from tests.api.conftest import World
from tests.shared_data import REPO_ROOT

FERNET_KEY = "x2Cg1ZJ4ScR7Yk0mZ6lU3n0JzWcT9s8GQe5vJHk1pGQ="
SAFE_PRODUCTION = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "k9#" + "Zq7!vL2@pW5$" * 5,
    "FIELD_ENCRYPTION_KEY": FERNET_KEY,
    "ALLOWED_HOSTS": "sync.example.com",
}
_OURS = {"DJANGO_ENV", "SECRET_KEY", "FIELD_ENCRYPTION_KEY", "ALLOWED_HOSTS", "DEBUG"}
_OURS |= {"TRUST_X_FORWARDED_PROTO", "ADMIN_PASSWORD", "ADMIN_USERNAME"}


def _run(code: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in _OURS}
    command = [sys.executable, "-c", code] if code else [sys.executable, "manage.py", *args]
    return subprocess.run(
        command,
        cwd=REPO_ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "syndarix_sync.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


SHOW = "import django; django.setup(); from django.conf import settings as s; print({})"


# --- production start-up ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("ALLOWED_HOSTS", "*"),
        ("ALLOWED_HOSTS", "sync.example.com,*"),
        ("FIELD_ENCRYPTION_KEY", "a passphrase"),
        ("FIELD_ENCRYPTION_KEY", "x" * 44),
    ],
)
def test_production_refuses_an_unsafe_setting_naming_it(setting: str, value: str) -> None:
    result = _run("", {**SAFE_PRODUCTION, setting: value}, "check")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: " + setting), last


def test_production_settings_pass_the_deploy_check_with_and_without_a_proxy() -> None:
    for extra in ({}, {"TRUST_X_FORWARDED_PROTO": "1"}):
        result = _run(
            "", {**SAFE_PRODUCTION, **extra}, "check", "--deploy", "--fail-level", "WARNING"
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_proxy_headers_are_trusted_only_when_told() -> None:
    show = SHOW.format("getattr(s, 'SECURE_PROXY_SSL_HEADER', None)")
    assert _run(show, SAFE_PRODUCTION).stdout.strip() == "None"
    trusted = _run(show, {**SAFE_PRODUCTION, "TRUST_X_FORWARDED_PROTO": "1"}).stdout.strip()
    assert trusted == "('HTTP_X_FORWARDED_PROTO', 'https')"


# --- throttle counters -----------------------------------------------------------------------


def test_throttle_counters_use_a_shared_cache() -> None:
    show = SHOW.format("s.CACHES['default']['BACKEND']")
    with_redis = _run(show, {"REDIS_URL": "redis://127.0.0.1:6379/10"}).stdout.strip()
    assert with_redis == "django.core.cache.backends.redis.RedisCache"
    without = _run(show, {"REDIS_URL": ""}).stdout.strip()
    assert without == "django.core.cache.backends.db.DatabaseCache"


@pytest.mark.redis
def test_another_process_sees_the_throttle_counter(world: World) -> None:
    rates = {"api_read": "100/min", "api_write": "2/min"}
    with override_settings(
        REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    ):
        client = world.client()
        url = f"/api/v1/issues/{world.alpha_issue.pk}/close/"
        assert [client.post(url).status_code for _ in range(3)] == [200, 200, 429]
    key = f"throttle_api_write_user-{world.agent.pk}"
    assert len(cache.get(key)) == 2
    count = (
        "import django; django.setup(); from django.core.cache import cache; "
        f"print(len(cache.get({key!r}) or []))"
    )
    seen = _run(count, {"REDIS_URL": os.environ["REDIS_URL"]})
    assert seen.stdout.strip() == "2", seen.stderr


# --- ensure_admin ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_ensure_admin_in_production_needs_admin_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    monkeypatch.setenv("ADMIN_USERNAME", "root-prod")
    out, err = StringIO(), StringIO()
    with override_settings(PRODUCTION=True):
        call_command("ensure_admin", stdout=out, stderr=err)
    assert not get_user_model().objects.filter(username="root-prod").exists()
    assert "ADMIN_PASSWORD" in err.getvalue() and "/" not in out.getvalue()
    monkeypatch.setenv("ADMIN_PASSWORD", "a-long-chosen-password-42")
    with override_settings(PRODUCTION=True):
        call_command("ensure_admin", stdout=out, stderr=err)
    user = get_user_model().objects.get(username="root-prod")
    assert user.is_superuser and user.check_password("a-long-chosen-password-42")
    assert "a-long-chosen-password-42" not in out.getvalue() + err.getvalue()


@pytest.mark.django_db
def test_ensure_admin_outside_production_still_prints_a_generated_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    monkeypatch.setenv("ADMIN_USERNAME", "root-dev")
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    password = out.getvalue().strip().rsplit(" / ", 1)[1]
    assert get_user_model().objects.get(username="root-dev").check_password(password)


# --- mask ------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", range(1, 65))
def test_mask_shows_at_most_a_quarter_of_a_secret(length: int) -> None:
    secret = "".join(chr(0x61 + (i * 7) % 26) for i in range(length))
    shown = mask(secret).replace("•", "").replace("…", "")
    assert len(shown) <= length // 4
    assert secret not in mask(secret)


@pytest.mark.parametrize("secret", ["hunter2!", "ghp_1234", "s3cr3t-t0k3n", "abcdefghijklmno"])
def test_mask_shows_nothing_of_a_short_secret(secret: str) -> None:
    assert mask(secret) == "••••••••"


def test_a_malformed_deny_network_is_refused_at_start_up() -> None:
    result = _run("", {"TRACKER_DENY_NETWORKS": "10.0.0.0/8,not-a-net"}, "check")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "TRACKER_DENY_NETWORKS" in last and "not-a-net" in last

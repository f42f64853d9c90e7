from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.test import Client

from syndarix_sync.celery import app
from tests.shared_data import REPO_ROOT


def _check_production(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "FIELD_ENCRYPTION_KEY", "ALLOWED_HOSTS"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT,
        env={**base, "DJANGO_ENV": "production", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


FERNET_KEY = "x2Cg1ZJ4ScR7Yk0mZ6lU3n0JzWcT9s8GQe5vJHk1pGQ="


def test_production_refuses_to_start_without_secrets() -> None:
    result = _check_production({"ALLOWED_HOSTS": "sync.example.com"})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_refuses_debug() -> None:
    result = _check_production(
        {
            "SECRET_KEY": "x" * 60,
            "FIELD_ENCRYPTION_KEY": FERNET_KEY,
            "DEBUG": "1",
            "ALLOWED_HOSTS": "sync.example.com",
        }
    )
    assert result.returncode != 0 and "DEBUG" in result.stderr


def test_production_settings_pass_the_deploy_check() -> None:
    result = _check_production(
        {
            "SECRET_KEY": "k9#" + "Zq7!vL2@pW5$" * 5,
            "FIELD_ENCRYPTION_KEY": FERNET_KEY,
            "ALLOWED_HOSTS": "sync.example.com",
        }
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_celery_is_configured_for_queue_sync_json_and_db_scheduler() -> None:
    conf = app.conf
    assert conf.task_default_queue == "sync"
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
    assert conf.task_time_limit and conf.task_soft_time_limit < conf.task_time_limit
    assert conf.task_acks_late is True


@pytest.mark.django_db
def test_healthz_reports_ok_when_database_and_broker_are_up() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_healthz_answers_503_naming_the_broker_when_it_is_down(settings) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded" and body["database"] == "ok"
    assert body["broker"].startswith("down")

"""Against a real Redis: the health check and a published task message."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.test import Client
from kombu import Connection as BrokerConnection

from issues.tasks import process_webhook_event
from syndarix_sync.queueing import publish


@pytest.mark.redis
@pytest.mark.django_db
def test_healthz_is_ok_with_redis_as_broker(settings) -> None:
    settings.CELERY_BROKER_URL = os.environ["REDIS_URL"]
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    response = Client().get("/healthz")
    assert response.status_code == 200, response.json()


@contextmanager
def celery_broker(url: str) -> Iterator[None]:
    """Point the Celery app at another broker for one test (its producer pool is rebuilt)."""
    from syndarix_sync.celery import app

    previous = app.conf.broker_url, app.conf.broker_write_url
    app.conf.broker_url = app.conf.broker_write_url = url
    app._pool = app.amqp._producer_pool = None
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.broker_write_url = previous
        app._pool = app.amqp._producer_pool = None


@pytest.mark.redis
def test_a_published_task_lands_on_queue_sync_in_redis() -> None:
    url = os.environ["REDIS_URL"]
    with celery_broker(url), BrokerConnection(url) as conn:
        queue = conn.SimpleQueue("sync")
        queue.clear()
        assert publish(process_webhook_event, 12345)
        message = queue.get(timeout=5)
        assert message.headers["task"] == "issues.tasks.process_webhook_event"
        assert message.headers["argsrepr"] == "(12345,)"
        message.ack()
        queue.close()


@pytest.mark.django_db
def test_publish_reports_failure_instead_of_raising_when_the_broker_is_down() -> None:
    with celery_broker("redis://127.0.0.1:1/0"):  # nothing listens on port 1
        assert publish(process_webhook_event, 1) is False

"""The Celery app: every task runs on queue `sync`; schedules live in django-celery-beat."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syndarix_sync.settings")

app = Celery("syndarix_sync")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Connects the signals that carry the correlation id from publisher to worker.
import syndarix_sync.correlation  # noqa: E402,F401

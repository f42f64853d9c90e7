"""gunicorn settings (`gunicorn -c python:syndarix_sync.gunicorn_conf`): its own log lines in
the same JSON as the application's, and no access log — CorrelationIdMiddleware already logs
every request once, with its correlation id."""

from __future__ import annotations

import os

accesslog = None
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {
            "()": "syndarix_sync.logs.build_formatter",
            "renderer": os.environ.get("LOG_FORMAT", "json"),
        }
    },
    "handlers": {
        "error_console": {
            "class": "logging.StreamHandler",
            "formatter": "structured",
            "stream": "ext://sys.stderr",
        }
    },
    # gunicorn merges this over its defaults one key deep: root must name a handler defined here.
    "root": {"level": "INFO", "handlers": ["error_console"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False}
    },
}

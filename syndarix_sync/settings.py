"""Settings, read through one django-environ `env`; the OS environment wins over `.env`.

Embedded defaults (SQLite, a filesystem Celery broker) make `make run` work on a bare machine;
`DATABASE_URL` / `REDIS_URL` switch to PostgreSQL / Redis. With `DJANGO_ENV=production` the
secrets have no default and insecure settings are refused at start-up.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from syndarix_sync.logs import configure_structlog

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("SYNDARIX_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
_dotenv = BASE_DIR / ".env"
if _dotenv.is_file():
    env.read_env(str(_dotenv), overwrite=False)

PRODUCTION = env.str("DJANGO_ENV", default="development") == "production"
DEBUG = env.bool("DEBUG", default=not PRODUCTION)


def _local_secret(name: str) -> str:
    """A secret generated once and kept in var/ — development only, never in production."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def _is_fernet_key(key: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32 and len(key) == 44
    except (ValueError, UnicodeError):
        return False


if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY")
    FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY")
    # A passphrase would be stretched with one unsalted SHA-256 (integrations/crypto.py).
    if not _is_fernet_key(FIELD_ENCRYPTION_KEY):
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY must be a Fernet key when DJANGO_ENV=production "
            "(make one: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        )
else:
    SECRET_KEY = env.str("SECRET_KEY", default="") or _local_secret("secret_key")
    FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="") or _local_secret(
        "field_encryption_key"
    )
# Older keys still accepted for decryption while secrets are re-encrypted (key rotation).
FIELD_ENCRYPTION_OLD_KEYS = env.list("FIELD_ENCRYPTION_OLD_KEYS", default=[])

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# honcho gives each process its own PORT (5000, 5100, …): `make run` passes the port it
# serves on as SYNDARIX_PORT, which therefore wins (else the webhook URL shown is wrong).
PORT = env.int("SYNDARIX_PORT", default=env.int("PORT", default=8000))
# Public root used to show the webhook URL to paste into a tracker.
PUBLIC_URL = env.str("PUBLIC_URL", default=f"http://127.0.0.1:{PORT}").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI / Redoc assets served locally, no CDN
    "django_celery_beat",
    "integrations",
    "issues",
    "notifications",
]

MIDDLEWARE = [
    # First: every line logged for a request, redirects and refusals included, carries its id.
    "syndarix_sync.correlation.CorrelationIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads the body: an API request over API_MAX_BODY_BYTES is a 413.
    "syndarix_sync.middleware.ApiBodyLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "syndarix_sync.middleware.DatabaseUnavailableMiddleware",
]
# The webhook intake's own chain (syndarix_sync/wsgi.py serves /webhooks/ through it): a
# tracker's POST needs none of sessions, CSRF, auth, messages, static files, frame options.
WEBHOOK_MIDDLEWARE = [
    "syndarix_sync.correlation.CorrelationIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Host validation and the answer's Content-Length.
    "django.middleware.common.CommonMiddleware",
    "syndarix_sync.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "syndarix_sync.urls"
WSGI_APPLICATION = "syndarix_sync.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'syndarix.sqlite3'}")
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web, worker and beat processes share one file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    DATABASES["default"]["CONN_MAX_AGE"] = 0
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(VAR_DIR / "static"))

# --- Celery -------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
_broker_dir = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport: a broker that needs no server, shared by local processes.
    for sub in ("in", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "in"),
        "data_folder_out": str(_broker_dir / "in"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # else ./control in the work dir
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_DEFAULT_QUEUE = "sync"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a killed worker's task is redelivered, not lost
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=15 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=14 * 60)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2.0
# Celery's Django fixup otherwise closes the database connection around every task: a new
# PostgreSQL connection per task costs more than the task's queries.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TIMEZONE = TIME_ZONE

# --- sync knobs -----------------------------------------------------------------------------
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=25 * 1024 * 1024)
# The API's own limit, answered 413 before the body is read (ApiBodyLimitMiddleware): an
# agent's request is small, and 25 MB of `[],[],…` kept a web worker busy.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)
# Django's own limit (admin forms, anything else that reads request.body); webhooks read
# their body themselves, up to WEBHOOK_MAX_BODY_BYTES.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2 * 1024 * 1024)
# Ranges (CIDR) refused as tracker addresses on top of the built-in link-local and cloud
# metadata ones (integrations/providers/netguard.py), e.g. "10.0.0.0/8,192.168.0.0/16".
TRACKER_DENY_NETWORKS = [
    net.strip() for net in env.list("TRACKER_DENY_NETWORKS", default=[]) if net.strip()
]
for _network in TRACKER_DENY_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"TRACKER_DENY_NETWORKS: {_network!r} is not a network (e.g. 10.0.0.0/8)"
        ) from None
PROVIDER_HTTP_TIMEOUT = env.float("PROVIDER_HTTP_TIMEOUT", default=15.0)
# How long a worker owns what it claimed. Past this, another worker takes the rows over (the
# first is presumed dead), so keep it well above the longest push or delivery it could take.
OUTBOX_LEASE_SECONDS = env.int("OUTBOX_LEASE_SECONDS", default=300)
WEBHOOK_PROCESSING_LEASE_SECONDS = env.int("WEBHOOK_PROCESSING_LEASE_SECONDS", default=300)
# A delivery still unprocessed this long after it arrived is re-queued by the sweep.
WEBHOOK_SWEEP_AFTER_SECONDS = env.int("WEBHOOK_SWEEP_AFTER_SECONDS", default=60)
# How long a web process keeps each provider's connections (and decrypted secrets) for the
# webhook intake; a change saved in that process clears them at once.
WEBHOOK_CONNECTION_CACHE_SECONDS = env.float("WEBHOOK_CONNECTION_CACHE_SECONDS", default=5.0)
# Stored deliveries a worker claims, applies and commits together (issues/inbound.py).
WEBHOOK_BATCH_SIZE = env.int("WEBHOOK_BATCH_SIZE", default=200)
if WEBHOOK_BATCH_SIZE < 1:
    raise ImproperlyConfigured("WEBHOOK_BATCH_SIZE must be at least 1")

# --- metrics ------------------------------------------------------------------------------
# prometheus-client's multiprocess mode: web and worker processes write samples here and
# /metrics sums them. It must be set before prometheus_client is first imported.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "prometheus"))
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", PROMETHEUS_MULTIPROC_DIR)
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

# --- caches -------------------------------------------------------------------------------
# Throttle counters must be shared by every web process (a per-process LocMemCache gave each
# gunicorn worker its own budget): Redis when REDIS_URL is set, the database otherwise.
if REDIS_URL:
    _shared_cache = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
    }
else:
    _shared_cache = {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "syndarix_cache",
    }
CACHES = {"default": _shared_cache}

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["issues.api.authentication.ApiTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "issues.api.pagination.ApiPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": ["issues.api.throttling.ApiRateThrottle"],
    # Counters live in the "throttle" cache, shared by every process (see CACHES).
    # Per user; generous so that agents are limited only when they misbehave.
    "DEFAULT_THROTTLE_RATES": {
        "api_read": env.str("API_THROTTLE_READ_RATE", default="6000/min"),
        "api_write": env.str("API_THROTTLE_WRITE_RATE", default="1200/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Syndarix Sync API",
    "DESCRIPTION": "One API over the issues of many trackers, kept in sync both ways. "
    "Authenticate with `Authorization: Bearer <key>` (or `Token <key>`); keys come from "
    "`manage.py create_api_token`. Writes accept an `Idempotency-Key` header.",
    "VERSION": "1.0.0",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Two models have a `direction` with different choices: name both enums explicitly.
    "ENUM_NAME_OVERRIDES": {
        "ConnectionDirectionEnum": "integrations.models.Direction",
        "ChangeDirectionEnum": "issues.models.Direction",
        "ConflictResolutionEnum": "issues.models.ConflictResolution",
    },
}

# --- logs -----------------------------------------------------------------------------------
# One JSON object per line on stderr (`LOG_FORMAT=console` for humans), from structlog and the
# standard library alike; see syndarix_sync/logs.py for the correlation id and redaction.
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
if LOG_FORMAT not in ("json", "console"):
    raise ImproperlyConfigured("LOG_FORMAT must be json or console")
configure_structlog()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {"()": "syndarix_sync.logs.build_formatter", "renderer": LOG_FORMAT}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's own console handler (plain text, DEBUG only) is replaced: its records go to
        # root and come out as JSON like every other line.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        # The request middleware logs every request once, with its correlation id; these would
        # say it a second time. Errors (with their traceback) still come through.
        "django.request": {"level": "ERROR"},
        "django.server": {"handlers": [], "level": "ERROR", "propagate": True},
    },
}
# The worker keeps the logging set up above instead of installing its own plain-text handler.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off when DJANGO_ENV=production")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS is required when DJANGO_ENV=production")
    if any(host.strip() in ("*", ".") for host in ALLOWED_HOSTS):
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS must name the service's hosts, not '*', when DJANGO_ENV=production"
        )
    # Only behind a proxy that sets X-Forwarded-Proto itself (and strips the client's):
    # trusted otherwise, any client could claim https.
    if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True

# Conflict notification e-mail (notifications app): printed on the console unless an SMTP
# server is configured (EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend, EMAIL_HOST…).
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="syndarix-sync@localhost")
# At most this many `GET /api/v1/events/?wait=` requests wait at once per web process.
EVENTS_MAX_WAITERS = env.int("EVENTS_MAX_WAITERS", default=40)
EVENTS_MAX_WAIT = env.int("EVENTS_MAX_WAIT", default=25)  # seconds, the longest long-poll
# An event is listed once it is this old, so a cursor never skips one still committing.
EVENTS_SETTLE_SECONDS = env.float("EVENTS_SETTLE_SECONDS", default=1.0)

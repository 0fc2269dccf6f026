"""Lethe settings. Every value comes from the environment, with defaults that suit a laptop.

Production is ``LETHE_ENV=production``: secret from the environment (required), secure
cookies, HSTS and an explicit host list; this is what platform/ deploys.
"""

import ipaddress
import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name, default=""):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


LETHE_ENV = env_str("LETHE_ENV", "development")
PRODUCTION = LETHE_ENV == "production"

VAR_DIR = Path(env_str("LETHE_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

if PRODUCTION:
    SECRET_KEY = os.environ.get("LETHE_SECRET_KEY", "")
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("LETHE_SECRET_KEY must be set to at least 50 characters in production")
else:
    SECRET_KEY = env_str("LETHE_SECRET_KEY", "lethe-development-key-not-for-production-use-0123456789abcdef")

DEBUG = env_bool("LETHE_DEBUG", not PRODUCTION)
ALLOWED_HOSTS = env_list("LETHE_ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("LETHE_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "versions",
    "jobs",
    "unlearning",
    "evals",
    "sweeps",
    "pages",
    "demo",
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
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'lethe.sqlite3'}"),
        conn_max_age=env_int("LETHE_DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent writers (web threads, in-process runs) wait for the write lock instead of
    # failing at once; IMMEDIATE transactions take it up front so a read never has to upgrade.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
# Test databases: a file for SQLite (so a Celery worker or server process started by a test sees
# the same data); LETHE_TEST_DB_NAME lets parallel test sessions keep apart.
_test_db_name = os.environ.get("LETHE_TEST_DB_NAME", "test_lethe")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"{_test_db_name}.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": _test_db_name}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
# Where static files come from and how they are stored: the "UI: offline and fast" block below.
STATIC_ROOT = Path(env_str("LETHE_STATIC_ROOT", str(VAR_DIR / "static")))
MEDIA_ROOT = Path(env_str("LETHE_MEDIA_ROOT", str(VAR_DIR / "media")))

# Blobs go through Django's storage API. LETHE_ARTIFACT_STORAGE picks the backend: "filesystem"
# (a folder every web and worker machine must share) or "s3" (any S3-compatible bucket: then web,
# workers and CLI share only PostgreSQL, Redis and the bucket). A dotted storage class path is
# accepted too. Credentials come from the standard AWS variables (AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, or an instance/pod role), never from this file.
ARTIFACT_STORAGE_ALIASES = {
    "filesystem": "django.core.files.storage.FileSystemStorage",
    "s3": "storages.backends.s3.S3Storage",
}
_artifact_backend = env_str("LETHE_ARTIFACT_STORAGE", "filesystem")
_artifact_backend = ARTIFACT_STORAGE_ALIASES.get(_artifact_backend.lower(), _artifact_backend)
if _artifact_backend.endswith("FileSystemStorage"):
    # Content-addressed: a concurrent write of the same name writes the same bytes.
    _artifact_options = {"location": str(Path(env_str("LETHE_ARTIFACT_ROOT", str(VAR_DIR / "artifacts")))), "allow_overwrite": True}
elif _artifact_backend.endswith("S3Storage"):
    _artifact_options = {
        "bucket_name": env_str("LETHE_S3_BUCKET"),
        "endpoint_url": env_str("LETHE_S3_ENDPOINT_URL") or None,  # unset: AWS itself
        "region_name": env_str("LETHE_S3_REGION", env_str("AWS_DEFAULT_REGION", "us-east-1")),
        "addressing_style": env_str("LETHE_S3_ADDRESSING_STYLE") or None,  # "path" for MinIO / Ceph without wildcard DNS
        "signature_version": "s3v4",
        "file_overwrite": True,  # content-addressed: the same name always holds the same bytes
        "default_acl": None,  # the bucket's own policy; objects are never public
        "querystring_auth": True,
        "querystring_expire": env_int("LETHE_S3_PRESIGN_SECONDS", 300),
        "verify": None if env_bool("LETHE_S3_VERIFY_TLS", True) else False,
    }
else:
    _artifact_options = {}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "artifacts": {"BACKEND": _artifact_backend, "OPTIONS": _artifact_options},
}
# Object store only: blobs at least this large are downloaded from the bucket through a presigned
# URL (the server answers with a redirect and leaves the data path); smaller ones stream through
# the server, verified against their sha256 on the way.
LETHE_ARTIFACT_REDIRECT_BYTES = env_int("LETHE_ARTIFACT_REDIRECT_BYTES", 8 * 1024 * 1024)
# How often a request to the object store is tried before it fails (botocore's "standard" retry
# mode, with backoff), and how long a connection may take; an unreachable store fails with 503.
LETHE_S3_MAX_ATTEMPTS = env_int("LETHE_S3_MAX_ATTEMPTS", 3)
LETHE_S3_CONNECT_TIMEOUT = env_int("LETHE_S3_CONNECT_TIMEOUT", 5)
if _artifact_backend.endswith("S3Storage"):
    from botocore.config import Config as _BotoConfig

    STORAGES["artifacts"]["OPTIONS"]["client_config"] = _BotoConfig(
        connect_timeout=LETHE_S3_CONNECT_TIMEOUT,
        read_timeout=60,
        signature_version="s3v4",
        retries={"max_attempts": LETHE_S3_MAX_ATTEMPTS, "mode": "standard"},
        s3={"addressing_style": env_str("LETHE_S3_ADDRESSING_STYLE") or "auto"},
    )

# Uploads: anything over 1 MiB goes to a temporary file, so memory does not grow with file size.
FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("LETHE_MAX_REQUEST_BODY_BYTES", 10 * 1024 * 1024)
LETHE_MAX_UPLOAD_FILE_BYTES = env_int("LETHE_MAX_UPLOAD_FILE_BYTES", 20 * 1024**3)
LETHE_MAX_ARCHIVE_EXPANDED_BYTES = env_int("LETHE_MAX_ARCHIVE_EXPANDED_BYTES", 40 * 1024**3)
LETHE_MAX_ARCHIVE_MEMBERS = env_int("LETHE_MAX_ARCHIVE_MEMBERS", 1000)
# Stored files with no Blob row (a registration rolled back or its process died) are swept
# once older than this, at executor start and by `manage.py runs reap`.
LETHE_ORPHAN_BLOB_GRACE_SECONDS = env_int("LETHE_ORPHAN_BLOB_GRACE_SECONDS", 3600)
LETHE_MAX_IMPORT_LINE_BYTES = env_int("LETHE_MAX_IMPORT_LINE_BYTES", 64 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "versions.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.errors.error_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SPECTACULAR_SETTINGS = {
    "TITLE": "Lethe API",
    "DESCRIPTION": "Version control for prompts and unlearned checkpoints, with A/B safety evaluation.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "core.api.schema.add_error_responses"],
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "jobs.models.RunStatus",
        "RoleEnum": "versions.models.Role",
        "CheckpointKindEnum": "versions.models.CheckpointKind",
        "DatasetKindEnum": "versions.models.DatasetKind",
        "OutcomeEnum": "evals.models.Outcome",
        "ModalityEnum": "evals.models.Modality",
        "ExpectedEnum": "evals.models.Expected",
        # A label's owner (owner_kind on labels, kind on label searches and gate answers).
        "OwnerKindEnum": [("prompt", "prompt"), ("model", "model")],
    },
}

# Runs (see docs/deploy.md): "inprocess" (worker threads in this process) or "celery".
LETHE_EXECUTOR = env_str("LETHE_EXECUTOR", "inprocess")
LETHE_INPROCESS_WORKERS = env_int("LETHE_INPROCESS_WORKERS", 1)
LETHE_HEARTBEAT_SECONDS = float(env_str("LETHE_HEARTBEAT_SECONDS", "5"))
LETHE_HEARTBEAT_TIMEOUT_SECONDS = float(env_str("LETHE_HEARTBEAT_TIMEOUT_SECONDS", "120"))
# A queued run at least this old whose task the broker does not hold is sent again by `runs reap`.
LETHE_QUEUE_LOST_SECONDS = float(env_str("LETHE_QUEUE_LOST_SECONDS", "60"))
# Extra run kinds for workers and tests, "module:function,..." (jobs.registry.register_run_handlers_from_spec).
LETHE_EXTRA_RUN_HANDLERS = env_str("LETHE_EXTRA_RUN_HANDLERS", "")
LETHE_RUN_LOG_MAX_CHARS = env_int("LETHE_RUN_LOG_MAX_CHARS", 20000)

# Webhooks: delivered by background sender threads, retried with doubling backoff.
LETHE_WEBHOOK_TIMEOUT_SECONDS = float(env_str("LETHE_WEBHOOK_TIMEOUT_SECONDS", "5"))
LETHE_WEBHOOK_MAX_ATTEMPTS = env_int("LETHE_WEBHOOK_MAX_ATTEMPTS", 5)
LETHE_WEBHOOK_BACKOFF_SECONDS = float(env_str("LETHE_WEBHOOK_BACKOFF_SECONDS", "2"))
LETHE_WEBHOOK_SWEEP_SECONDS = float(env_str("LETHE_WEBHOOK_SWEEP_SECONDS", "30"))
LETHE_WEBHOOK_SENDERS = env_int("LETHE_WEBHOOK_SENDERS", 2)

# Outgoing requests (see docs/deploy.md, "Endpoints and egress"). Judge and served-model
# endpoints are named profiles: JSON {name: profile} in LETHE_ENDPOINTS, or in the file
# LETHE_ENDPOINTS_FILE names. Requests never reach loopback, private, link-local or metadata
# addresses unless their network is listed in LETHE_EGRESS_ALLOW_NETWORKS (comma-separated).
_endpoints_json, _endpoints_file = env_str("LETHE_ENDPOINTS"), env_str("LETHE_ENDPOINTS_FILE")
if _endpoints_json and _endpoints_file:
    raise ImproperlyConfigured("Set LETHE_ENDPOINTS or LETHE_ENDPOINTS_FILE, not both")
try:
    LETHE_ENDPOINTS = json.loads(Path(_endpoints_file).read_text(encoding="utf-8") if _endpoints_file else (_endpoints_json or "{}"))
except (OSError, ValueError) as _exc:
    raise ImproperlyConfigured(f"{'LETHE_ENDPOINTS_FILE' if _endpoints_file else 'LETHE_ENDPOINTS'} is not readable JSON: {_exc}") from None
if not isinstance(LETHE_ENDPOINTS, dict):
    raise ImproperlyConfigured('LETHE_ENDPOINTS must be a JSON object {"name": {"base_url": ...}}')
LETHE_EGRESS_ALLOW_NETWORKS = env_list("LETHE_EGRESS_ALLOW_NETWORKS")
for _network in LETHE_EGRESS_ALLOW_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"LETHE_EGRESS_ALLOW_NETWORKS: {_network!r} is not a network such as 127.0.0.0/8 ({_exc})") from None
# Local models that judges load (hf-classifier, causal-LM judges) are named relative to this directory.
LETHE_MODEL_DIR = env_str("LETHE_MODEL_DIR", "")

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Every process that submits runs (web, and workers: a finished run may start the next ones)
# must name the queue the workers consume.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "gpu")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Evaluation defaults: non-inferiority margins (an evaluation may set its own) and import size.
# The failure-to-help margin covers over-refusals and non-answers on benign cases.
LETHE_EVAL_FAILURE_TO_HELP_MARGIN = float(env_str("LETHE_EVAL_FAILURE_TO_HELP_MARGIN", "0.05"))
LETHE_EVAL_PERPLEXITY_RATIO_MARGIN = float(env_str("LETHE_EVAL_PERPLEXITY_RATIO_MARGIN", "1.10"))
LETHE_MAX_SUITE_IMPORT_BYTES = env_int("LETHE_MAX_SUITE_IMPORT_BYTES", 50 * 1024 * 1024)

# Device for torch work: "auto" picks CUDA when present.
LETHE_DEVICE = env_str("LETHE_DEVICE", "auto")

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("LETHE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("LETHE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

# ---------------------------------------------------------------- accounts, abuse and request limits
# (docs/security.md, docs/deploy.md "Throttles and the cache")

# Every password set anywhere (lethe_user create, the admin, changepassword, the demo user)
# passes these.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Every password check (the sign-in page, the admin's, anything calling authenticate()) counts
# failures and refuses a locked username or address before checking the password.
AUTHENTICATION_BACKENDS = ["versions.authentication.ThrottledModelBackend"]

# The cache holds the throttles' counters. One process (runserver, the CLI) needs nothing; with
# several processes (gunicorn workers, several machines) set LETHE_CACHE_URL=redis://... so they
# count together.
LETHE_CACHE_URL = env_str("LETHE_CACHE_URL", "")
if LETHE_CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": LETHE_CACHE_URL, "KEY_PREFIX": "lethe"}}
elif LETHE_CACHE_URL:
    raise ImproperlyConfigured(f"LETHE_CACHE_URL must be a redis://, rediss:// or unix:// URL, got {LETHE_CACHE_URL!r}")
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "lethe"}}

# Failed sign-ins and API authentications (bad passwords, bad bearer tokens, stale or forged
# session cookies) within a window, per client address and per username; past either limit the
# address or username is refused (429 with Retry-After on the API) until the window ends.
LETHE_AUTH_FAILURE_WINDOW_SECONDS = env_int("LETHE_AUTH_FAILURE_WINDOW_SECONDS", 900)
LETHE_AUTH_FAILURES_PER_USERNAME = env_int("LETHE_AUTH_FAILURES_PER_USERNAME", 10)
LETHE_AUTH_FAILURES_PER_ADDRESS = env_int("LETHE_AUTH_FAILURES_PER_ADDRESS", 30)
REST_FRAMEWORK.update(
    {
        "DEFAULT_AUTHENTICATION_CLASSES": [
            "versions.authentication.ApiTokenAuthentication",
            "versions.authentication.ThrottledSessionAuthentication",
        ],
        # Proxies in front of Lethe that append to X-Forwarded-For: 0 trusts only the connection's
        # address (a client cannot pick its own by sending the header).
        "NUM_PROXIES": env_int("LETHE_NUM_PROXIES", 0),
        "DEFAULT_THROTTLE_RATES": {"token_create": env_str("LETHE_TOKEN_CREATE_RATE", "20/hour")},
        # JSON nested no deeper than LETHE_MAX_JSON_DEPTH, bodies no larger than
        # DATA_UPLOAD_MAX_MEMORY_SIZE, text strictly UTF-8: refused with the JSON error body.
        "DEFAULT_PARSER_CLASSES": [
            "core.api.parsers.JSONParser",
            "rest_framework.parsers.FormParser",
            "core.api.parsers.MultiPartParser",
        ],
    }
)
LETHE_MAX_JSON_DEPTH = env_int("LETHE_MAX_JSON_DEPTH", 64)

# Content-Security-Policy of every response: scripts, styles, images and requests from this
# origin only (plotly.js is one of our static files).
LETHE_CONTENT_SECURITY_POLICY = env_str(
    "LETHE_CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1, "core.middleware.ContentSecurityPolicyMiddleware")
MIDDLEWARE.insert(MIDDLEWARE.index("django.contrib.sessions.middleware.SessionMiddleware"), "core.middleware.StrictFormEncodingMiddleware")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LETHE_LOG_LEVEL", "WARNING")},
}


# ---------------------------------------------------------------- UI: offline and fast (issue 18)
# Nothing a page needs comes from another host: our CSS/JS, plotly.js (static/vendor/plotly, the
# basic bundle of the plotly.js version the plotly package ships; never a CDN) and Swagger UI /
# Redoc (from drf-spectacular-sidecar) are all static files here. collectstatic gives each a
# content-hashed name and a gzip copy; WhiteNoise serves the hashed names with a ten-year
# immutable Cache-Control, so a browser fetches plotly.js once per release. Serving therefore
# needs `manage.py collectstatic` first (make serve, the demo command, the Dockerfile and the test
# session run it); with DEBUG on, runserver serves the sources.
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES["staticfiles"] = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}
INSTALLED_APPS.append("drf_spectacular_sidecar")
SPECTACULAR_SETTINGS.update({"SWAGGER_UI_DIST": "SIDECAR", "SWAGGER_UI_FAVICON_HREF": "SIDECAR", "REDOC_DIST": "SIDECAR"})

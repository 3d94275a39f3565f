"""Settings shared by every environment; each value can come from the environment.

`local` (the default, for `make run`), `test` and `production` build on this module.
"""

import ipaddress
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from .environment import env

BASE_DIR = Path(__file__).resolve().parent.parent.parent


SECRET_KEY = env.str("SECRET_KEY", default="")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", cast=str.strip, default=[])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", cast=str.strip, default=[])

INSTALLED_APPS = [
    # Django's admin, opened to members of the "admins" role only (incidents/admin_site.py).
    "incidents.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    # Trigram search index on declaration titles (a no-op on SQLite, where search scans instead).
    "django.contrib.postgres",
    "django_htmx",
    "axes",
    "incidents",
]

MIDDLEWARE = [
    # First: the proxy's scheme header counts only from the configured proxy (PORTAL_TRUSTED_PROXIES).
    "incidents.http.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Counts API requests by status (for /metrics) once every other middleware has answered.
    "incidents.metrics.api_request_metrics",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before anything reads a body: refuses oversized ones and anonymous uploads unread (incidents/uploads.py).
    "incidents.uploads.RequestBodyLimitMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, so that it sees the final outcome of authentication.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "incidents.context_processors.portal_roles",
                "incidents.context_processors.single_sign_on",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env.str("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'portal.sqlite3'}"),
        # A process keeps its connection (checked before each request or task reuses it). With a lifetime, the
        # first declaration after a quiet spell opened new connections in the web and the worker process on its way
        # to AWS: ~65 ms from click to StartIncident instead of ~35 here, more with TLS to a remote database.
        # DATABASE_CONN_MAX_AGE=N closes a connection after N seconds; 0 opens one per request (behind PgBouncer).
        conn_max_age=env("DATABASE_CONN_MAX_AGE", cast=int, default=None),
        conn_health_checks=True,
    )
}
POSTGRESQL_OPTIONS = {
    # An idle connection kept for hours probes its peer each minute, so a database that went away (failover, a
    # NAT's idle timeout) is noticed while idle, and the health check reconnects instead of waiting on a dead socket.
    "keepalives": 1,
    "keepalives_idle": 60,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    # Parameters travel apart from the SQL, and a statement a connection has run 5 times is prepared: PostgreSQL
    # parses and plans it once instead of on every request (a declaration's queries cost PostgreSQL 30 % less CPU).
    # DATABASE_PREPARED_STATEMENTS=0 behind a pooler in transaction mode that cannot keep them (PgBouncer < 1.21,
    # or without max_prepared_statements). incidents/prepared_statements.py keeps them safe across migrations.
    "server_side_binding": True,
    "prepare_threshold": 5 if env.bool("DATABASE_PREPARED_STATEMENTS", default=True) else None,
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).update(POSTGRESQL_OPTIONS)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # Axes first: it refuses a locked-out login before the password is even checked.
    "axes.backends.AxesStandaloneBackend",
    # Django's password check, for the named break-glass accounts only while single sign-on is configured.
    "incidents.sso.LocalAccountBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "incidents:declare"
LOGOUT_REDIRECT_URL = "login"

# Login throttling: five failures for one username from one address lock it for 15 minutes.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.int("AXES_COOLOFF_MINUTES", default=15) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The person's address as the audit trail records it (through the configured proxy): behind a proxy, the connection's
# address is the proxy's, and five wrong passwords from anyone would lock a username for everyone.
AXES_CLIENT_IP_CALLABLE = "incidents.http.client_ip"
# Refusals at the identity provider's callback are audited, not counted as password guesses (incidents/sso.py).
AXES_WHITELIST_CALLABLE = "incidents.sso.exempt_from_lockout"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Content Security Policy: no inline script or style anywhere; htmx is served from static/.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
# --- The proxy in front, and the operators' pages -------------------------------------------------------


def _networks(var: str, default: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    try:
        return [ipaddress.ip_network(item) for item in env.list(var, cast=str.strip, default=default)]
    except ValueError as error:
        raise ImproperlyConfigured(
            f"{var} must be IP addresses or networks (CIDR, e.g. 10.0.0.0/16) separated by commas: {error}"
        ) from error


# How many proxies stand in front of gunicorn, each appending to X-Forwarded-For (0: clients connect directly, and
# no forwarding header is believed). Their headers count only from PORTAL_TRUSTED_PROXIES (incidents/http.py).
PORTAL_PROXY_HOPS = env.int("PORTAL_PROXY_HOPS", default=0)
if PORTAL_PROXY_HOPS < 0:
    raise ImproperlyConfigured("PORTAL_PROXY_HOPS must be 0 (no proxy) or the number of proxies in front.")
PORTAL_TRUSTED_PROXIES = _networks("PORTAL_TRUSTED_PROXIES", ["127.0.0.1/32", "::1/128"])
PORTAL_PROXY_CLIENT_HEADER = env.str("PORTAL_PROXY_CLIENT_HEADER", default="X-Forwarded-For")
PORTAL_PROXY_PROTO_HEADER = env.str("PORTAL_PROXY_PROTO_HEADER", default="X-Forwarded-Proto")
# Django believes this header from anyone; incidents.http.TrustedProxyMiddleware drops it unless the proxy sent it.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + PORTAL_PROXY_PROTO_HEADER.upper().replace("-", "_"), "https") if PORTAL_PROXY_HOPS else None
)
# The operators' pages (the readiness report): a bearer token, or a request from one of these networks.
PORTAL_OPERATOR_TOKEN = env.str("PORTAL_OPERATOR_TOKEN", default="")
if PORTAL_OPERATOR_TOKEN and len(PORTAL_OPERATOR_TOKEN) < 24:
    raise ImproperlyConfigured("PORTAL_OPERATOR_TOKEN must be at least 24 characters (e.g. `openssl rand -hex 32`).")
PORTAL_OPERATOR_NETWORKS = _networks("PORTAL_OPERATOR_NETWORKS", ["127.0.0.0/8", "::1/128"])

# --- Celery -----------------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Local mode only (portal.settings.local): queue through files when no Redis answers.
PORTAL_EMBEDDED_BROKER = False
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# At-least-once delivery: a crashed worker's task comes back; the task itself is idempotent.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Every countdown, backoff and time limit below stays far under this (see reliability guide).
PORTAL_VISIBILITY_TIMEOUT = env.int("PORTAL_VISIBILITY_TIMEOUT", default=3600)
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
    "visibility_timeout": PORTAL_VISIBILITY_TIMEOUT,
    "socket_timeout": 2,
    "socket_connect_timeout": 1,
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": PORTAL_VISIBILITY_TIMEOUT}
CELERY_VISIBILITY_TIMEOUT = PORTAL_VISIBILITY_TIMEOUT
# Publishing must never hang a web request (the form answers within 2 s with the broker down): give up fast and
# let the sweeper dispatch later.
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "incidents.tasks.start_declaration": {"queue": "declarations"},
    "incidents.tasks.sync_response_plans": {"queue": "default"},
    "incidents.tasks.attach_pending_files": {"queue": "declarations"},
    "incidents.tasks.send_incident_action": {"queue": "declarations"},
    "incidents.tasks.sweep_declarations": {"queue": "default"},
    "incidents.tasks.record_worker_heartbeat": {"queue": "default"},
    "incidents.tasks.publish_audit_head": {"queue": "default"},
    "incidents.tasks.refresh_incident": {"queue": "default"},
    "incidents.tasks.refresh_open_incidents": {"queue": "default"},
}
# How often beat mirrors AWS's response plans into the portal (seconds).
PORTAL_PLAN_SYNC_INTERVAL = env.int("PORTAL_PLAN_SYNC_INTERVAL", default=15 * 60)
CELERY_BEAT_SCHEDULE = {
    "sync-response-plans": {
        "task": "incidents.tasks.sync_response_plans",
        "schedule": PORTAL_PLAN_SYNC_INTERVAL,
        # A sync that waited longer than one interval is superseded by the next one: do not pile them up.
        "options": {"expires": PORTAL_PLAN_SYNC_INTERVAL},
    },
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes every database connection before and after each task unless this is set: a new
# PostgreSQL connection (about 6 ms here) in front of every StartIncident. Connections are reused instead, and
# Django retires old or broken ones at each task's start (portal/celery.py), as it does for web requests.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)

# --- Cache (shared by every process: the rate limits count here) --------------------------------------
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env.str("CACHE_REDIS_URL", default=REDIS_URL),
        "KEY_PREFIX": "portal",
        # A slow cache must not stall requests: the rate limit fails open when Redis does not answer.
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    },
    # Rendered page fragments ({% cache ... using="fragments" %}), in each process's memory: their keys carry what
    # they show (e.g. the plans' last change), so no process serves a stale one, and the declare page does not
    # depend on Redis answering (incidents are declared while other systems fail).
    "fragments": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "fragments",
        "OPTIONS": {"MAX_ENTRIES": 100},
    },
    # Each process's own memory, for what must work while Redis does not: the rate limits' counters when the shared
    # cache cannot be reached, the readiness report's last AWS answer.
    "local": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "local",
        "OPTIONS": {"MAX_ENTRIES": 10_000},
    },
}

# --- Rate limits, JSON API -------------------------------------------------------------------------
# Each a number of requests per window: N/s, N/m, N/h or N/d. Per token, and per person across all their tokens.
PORTAL_API_RATE_LIMIT = env.str("PORTAL_API_RATE_LIMIT", default="60/m")
PORTAL_API_PERSON_RATE_LIMIT = env.str("PORTAL_API_PERSON_RATE_LIMIT", default="120/m")
# Active (neither revoked nor expired) API tokens one person may hold.
PORTAL_API_MAX_TOKENS = env.int("PORTAL_API_MAX_TOKENS", default=5)
# Declarations one person may make from the declare page.
PORTAL_DECLARE_RATE_LIMIT = env.str("PORTAL_DECLARE_RATE_LIMIT", default="20/h")
# The largest valid StartIncident request is about 130 KB (100 related items, 10,000 characters of rawData).
PORTAL_API_MAX_BODY_BYTES = env.int("PORTAL_API_MAX_BODY_BYTES", default=512 * 1024)

# --- AWS --------------------------------------------------------------------------------------------
# boto3 reads credentials and AWS_ENDPOINT_URL_SSM_INCIDENTS / AWS_ENDPOINT_URL_S3 itself; the region is
# AWS_REGION (or botocore's own AWS_DEFAULT_REGION / profile when unset).
AWS_REGION = env("AWS_REGION", default=None)
PORTAL_S3_BUCKET = env.str("PORTAL_S3_BUCKET", default="incident-portal-attachments")
PORTAL_TRIGGER_SOURCE = env.str("PORTAL_TRIGGER_SOURCE", default="com.example.incident-portal")
# Absolute base of links written into AWS (the declaration's URL in triggerDetails.rawData).
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000")
AWS_CONNECT_TIMEOUT = env.int("AWS_CONNECT_TIMEOUT", default=3)
AWS_READ_TIMEOUT = env.int("AWS_READ_TIMEOUT", default=10)
AWS_MAX_ATTEMPTS = env.int("AWS_MAX_ATTEMPTS", default=3)
# Celery-level retries of a declaration after botocore's own attempts ran out.
PORTAL_START_MAX_RETRIES = env.int("PORTAL_START_MAX_RETRIES", default=5)
PORTAL_START_RETRY_BACKOFF_MAX = env.int("PORTAL_START_RETRY_BACKOFF_MAX", default=60)
# Who to call when an incident could not be started, named on the declaration's page (e.g. "the SRE on call,
# +1 555 0100, or #incident-response").
PORTAL_ESCALATION_CONTACT = env.str("PORTAL_ESCALATION_CONTACT", default="your on-call incident manager")

# --- The audit trail: settings/audit_trail.py ----------------------------------------------------------
from .audit_trail import *  # noqa: E402, F403
from .audit_trail import PORTAL_AUDIT_HEAD_INTERVAL, audit_keys  # noqa: E402, F401

# `make bench` only: serve a bare view to measure every figure against.
PORTAL_BENCH_VIEWS = env.bool("PORTAL_BENCH_VIEWS", default=False)

# --- History, export and attachments ----------------------------------------------------------------
PORTAL_HISTORY_PAGE_SIZE = env.int("PORTAL_HISTORY_PAGE_SIZE", default=50)
# Rows fetched per round trip by the streamed CSV export (server-side cursor on PostgreSQL).
PORTAL_EXPORT_CHUNK_SIZE = env.int("PORTAL_EXPORT_CHUNK_SIZE", default=2000)
# Presigned attachment links live at most five minutes; they are made on each click, never embedded.
PORTAL_DOWNLOAD_URL_SECONDS = min(env.int("PORTAL_DOWNLOAD_URL_SECONDS", default=300), 300)

# --- Reliability: outbox sweeper, global rate limit, heartbeat ---------------------------------
# The sweeper re-dispatches declarations whose message may be lost. Both thresholds stay far below the visibility
# timeout, so the sweeper (not Redis's slow redelivery) is what rescues work; "starting" must outlast one attempt
# (task time limit plus the longest backoff), or the sweeper would re-send work that is still running.
PORTAL_SWEEP_INTERVAL = env.float("PORTAL_SWEEP_INTERVAL", default=30)
PORTAL_SWEEP_QUEUED_AFTER = env.float("PORTAL_SWEEP_QUEUED_AFTER", default=60)
PORTAL_SWEEP_STARTING_AFTER = env.float("PORTAL_SWEEP_STARTING_AFTER", default=600)
PORTAL_SWEEP_BATCH = env.int("PORTAL_SWEEP_BATCH", default=200)
if max(PORTAL_SWEEP_QUEUED_AFTER, PORTAL_SWEEP_STARTING_AFTER) >= PORTAL_VISIBILITY_TIMEOUT:
    raise ImproperlyConfigured("PORTAL_SWEEP_*_AFTER must stay below PORTAL_VISIBILITY_TIMEOUT.")
# StartIncident calls per second across every worker (AWS's quota is per account, Celery's rate_limit per worker),
# counted in Redis; "database" keeps the count in a row instead (local mode on the embedded broker, without Redis).
PORTAL_RATE_LIMIT_STORE = "redis"
PORTAL_RATE_LIMIT_REDIS_URL = env.str("PORTAL_RATE_LIMIT_REDIS_URL", default=CELERY_BROKER_URL)
PORTAL_START_RATE_LIMIT_PER_SECOND = env.float("PORTAL_START_RATE_LIMIT_PER_SECOND", default=5)
PORTAL_START_RATE_LIMIT_BURST = env.int("PORTAL_START_RATE_LIMIT_BURST", default=5)
# A worker waits at most this long for a slot, then retries the task later instead of hogging its process.
PORTAL_START_RATE_LIMIT_MAX_WAIT = env.float("PORTAL_START_RATE_LIMIT_MAX_WAIT", default=20)
PORTAL_ATTACH_MAX_RETRIES = env.int("PORTAL_ATTACH_MAX_RETRIES", default=5)
# Reading incidents back from AWS (the read budget, the watched pages, beat's round): settings/incident_following.py
from .incident_following import *  # noqa: E402, F403
from .incident_following import PORTAL_INCIDENT_REFRESH_INTERVAL  # noqa: E402

# Workers write a heartbeat to Redis (or to this file, on the embedded broker); /healthz/ready reports them down when it
# is older than the max age.
PORTAL_HEARTBEAT_FILE = ""
PORTAL_HEARTBEAT_INTERVAL = env.float("PORTAL_HEARTBEAT_INTERVAL", default=15)
PORTAL_HEARTBEAT_MAX_AGE = env.float("PORTAL_HEARTBEAT_MAX_AGE", default=60)
PORTAL_HEALTH_TIMEOUT = env.float("PORTAL_HEALTH_TIMEOUT", default=2)
# The readiness report asks AWS at most this often per process, whoever polls it (0: on every request).
PORTAL_HEALTH_AWS_CACHE_SECONDS = env.float("PORTAL_HEALTH_AWS_CACHE_SECONDS", default=30)
CELERY_BEAT_SCHEDULE |= {
    "sweep-declarations": {"task": "incidents.tasks.sweep_declarations", "schedule": PORTAL_SWEEP_INTERVAL},
    "worker-heartbeat": {"task": "incidents.tasks.record_worker_heartbeat", "schedule": PORTAL_HEARTBEAT_INTERVAL},
    "refresh-open-incidents": {
        "task": "incidents.tasks.refresh_open_incidents",
        "schedule": PORTAL_INCIDENT_REFRESH_INTERVAL,
        "options": {"expires": PORTAL_INCIDENT_REFRESH_INTERVAL},
    },
    "publish-audit-head": {
        "task": "incidents.tasks.publish_audit_head",
        "schedule": PORTAL_AUDIT_HEAD_INTERVAL,
        "options": {"expires": PORTAL_AUDIT_HEAD_INTERVAL},
    },
}

# --- Uploads ----------------------------------------------------------------------------------------
PORTAL_MAX_FILE_BYTES = env.int("PORTAL_MAX_FILE_BYTES", default=10 * 1024 * 1024)
PORTAL_MAX_FILES = env.int("PORTAL_MAX_FILES", default=10)
PORTAL_ALLOWED_FILE_EXTENSIONS = env.list(
    "PORTAL_ALLOWED_FILE_EXTENSIONS",
    cast=str.strip,
    default=["txt", "log", "json", "csv", "pdf", "png", "jpg", "jpeg", "gif", "har", "yaml", "yml", "zip", "gz"],
)
# The declare page warns about declarations of the same plan made within this many minutes.
PORTAL_DUPLICATE_WINDOW_MINUTES = env.int("PORTAL_DUPLICATE_WINDOW_MINUTES", default=60)
# How far back a declarer may say the impact started (the declare page's "Impact started at", the API's
# impactStartedAt): older impact belongs in the incident's timeline, not in its start.
PORTAL_IMPACT_START_MAX_DAYS = env.int("PORTAL_IMPACT_START_MAX_DAYS", default=3)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# The form's own fields (a hundred related items are ~130 KB); files are counted apart.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# A file part stops being stored once it passes PORTAL_MAX_FILE_BYTES; Django's own handlers keep what comes before.
FILE_UPLOAD_HANDLERS = [
    "incidents.uploads.FileSizeLimitUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2000
DATA_UPLOAD_MAX_NUMBER_FILES = PORTAL_MAX_FILES + 5

# One JSON object per line (declaration id, client token, state, attempt…), for log search; LOG_FORMAT=plain for
# people reading a terminal.
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "portal.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "botocore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}

# --- Single sign-on (OpenID Connect, mozilla-django-oidc; incidents/sso.py): settings/single_sign_on.py -------
from .single_sign_on import *  # noqa: E402, F403
from .single_sign_on import PORTAL_SSO_ENABLED, PORTAL_SSO_ISSUER, sso_form_action  # noqa: E402

if PORTAL_SSO_ENABLED:
    AUTHENTICATION_BACKENDS.append("incidents.sso.ProviderBackend")
    SECURE_CSP["form-action"] = sso_form_action(PORTAL_SSO_ISSUER)

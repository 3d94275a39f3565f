"""`make run`: one machine, SQLite by default, the sandbox standing in for AWS."""

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

from .base import *  # noqa: F403
from .base import BASE_DIR, CELERY_BROKER_URL, audit_keys, env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="local-only-not-secret-" + str(BASE_DIR))
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
PORTAL_LOCAL_MODE = True
# A development key for the audit chain: `make run` needs no configuration (production requires its own).
PORTAL_AUDIT_KEYS = audit_keys(env.str("PORTAL_AUDIT_KEYS", default="local:local-only-not-secret-audit-chain-key"))
PORTAL_AUDIT_HEADS_BUCKET = env.str("PORTAL_AUDIT_HEADS_BUCKET", default="incident-portal-audit-heads")
LOGGING["handlers"]["console"]["formatter"] = env.str("LOG_FORMAT", default="plain")  # noqa: F405

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    (BASE_DIR / "var").mkdir(exist_ok=True)
    # Writers take the lock when the transaction begins, so audit events chain one after another.
    DATABASES["default"].setdefault("OPTIONS", {}).update(  # noqa: F405
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )

# AWS is the sandbox that `make run` starts (on SANDBOX_PORT), for every process in local mode: the ones `make run`
# starts and a management command run by hand beside it (`manage.py sync_response_plans`). boto3 reads these from
# the environment; whatever the environment already sets wins.
SANDBOX_URL = f"http://127.0.0.1:{env.int('SANDBOX_PORT', default=4566)}"
AWS_REGION = env.str("AWS_REGION", default="us-east-1")
os.environ.setdefault("AWS_ENDPOINT_URL_SSM_INCIDENTS", SANDBOX_URL)
os.environ.setdefault("AWS_ENDPOINT_URL_S3", SANDBOX_URL)
if not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
    os.environ.update(AWS_ACCESS_KEY_ID="sandbox", AWS_SECRET_ACCESS_KEY="sandbox")  # noqa: S106 - the sandbox takes any


def _redis_answers(url: str) -> bool:
    """Whether anything listens where the broker should be (a refused connection answers at once)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        return True
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=1).close()
    except OSError:
        return False
    return True


# Without Redis, `make run` (run_local) falls back to the embedded broker and tells its processes so; a command run
# by hand beside it (`manage.py sweep_declarations`) finds the same by itself.
if env.str("PORTAL_EMBEDDED_BROKER", default=""):
    PORTAL_EMBEDDED_BROKER = env.bool("PORTAL_EMBEDDED_BROKER")
else:
    PORTAL_EMBEDDED_BROKER = not _redis_answers(CELERY_BROKER_URL)
if PORTAL_EMBEDDED_BROKER:
    # No Redis answered: queue through files on disk so that one machine still works end to end, and keep what
    # else lives in Redis on this machine too (the StartIncident rate limit, the worker heartbeat, the cache).
    BROKER_DIR = Path(env.str("PORTAL_EMBEDDED_BROKER_DIR", default=str(BASE_DIR / "var" / "broker")))
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        # Where kombu keeps its exchange bindings (by default a `control/` folder wherever the process started).
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    BROKER_DIR.mkdir(parents=True, exist_ok=True)
    PORTAL_RATE_LIMIT_STORE = "database"
    PORTAL_HEARTBEAT_FILE = env.str("PORTAL_HEARTBEAT_FILE", default=str(BASE_DIR / "var" / "worker-heartbeat"))
    # One web process in local mode, so an in-memory cache still counts the API rate limit correctly.
    CACHES["default"] = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}  # noqa: F405

# `make run SSO=1` signs in through a local provider; the demo accounts keep working beside it.
PORTAL_LOCAL_LOGIN_ACCOUNTS = env.list("PORTAL_LOCAL_LOGIN_ACCOUNTS", cast=str.strip, default=["*"])

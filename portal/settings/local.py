"""`make run`: one machine, SQLite by default, the sandbox standing in for AWS."""

from .base import *  # noqa: F403
from .base import BASE_DIR, audit_keys, env

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

if env.bool("PORTAL_EMBEDDED_BROKER", default=False):
    # No Redis answered: queue through files on disk so that one machine still works end to end.
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BASE_DIR / "var" / "broker"),
        "data_folder_out": str(BASE_DIR / "var" / "broker"),
        # Where kombu keeps its exchange bindings (by default a `control/` folder wherever the process started).
        "control_folder": str(BASE_DIR / "var" / "broker" / "control"),
        "store_processed": False,
    }
    (BASE_DIR / "var" / "broker").mkdir(parents=True, exist_ok=True)
    # One web process in local mode, so an in-memory cache still counts the API rate limit correctly.
    CACHES["default"] = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}  # noqa: F405

"""pytest: PostgreSQL and Redis are real; AWS is the sandbox started by the test fixtures."""

import os
import tempfile
import uuid

import dj_database_url

from .base import *  # noqa: F403
from .base import POSTGRESQL_OPTIONS, audit_keys, env

SECRET_KEY = "test-only-not-secret"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
DATABASES = {
    "default": dj_database_url.parse(env.str("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/test"))
}
# As production talks to PostgreSQL (server-side binding and prepared statements change what SQL is accepted),
# keeping what the URL itself sets (the test worker's short deadlock_timeout: tests/conftest.py).
DATABASES["default"].setdefault("OPTIONS", {}).update(POSTGRESQL_OPTIONS)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/15")
# The cache shares the test run's own Redis database (CACHE_REDIS_URL to move it), never the developer's.
CACHES["default"]["LOCATION"] = env.str("CACHE_REDIS_URL", default=CELERY_BROKER_URL)  # noqa: F405
# A prefix of the run's own, handed to the processes it starts through the environment: the rate limits count per
# person id, and each run's new test database gives its people the ids the last run's had.
CACHES["default"]["KEY_PREFIX"] = os.environ.setdefault(  # noqa: F405
    "PORTAL_TEST_CACHE_PREFIX", f"portal-test-{uuid.uuid4().hex[:12]}"
)
# Tests (and the chaos scenarios) declare far faster than a person; the limit's own tests set a small one.
PORTAL_DECLARE_RATE_LIMIT = env.str("PORTAL_DECLARE_RATE_LIMIT", default="10000/m")
PORTAL_LOCAL_MODE = False
PORTAL_AUDIT_KEYS = audit_keys(env.str("PORTAL_AUDIT_KEYS", default="test:test-only-not-secret-audit-chain-key"))
# Created in the sandbox by the test session (tests/conftest.py); tests that publish heads use buckets of their own.
PORTAL_AUDIT_HEADS_BUCKET = env.str("PORTAL_AUDIT_HEADS_BUCKET", default="incident-portal-audit-heads")
PORTAL_START_RETRY_BACKOFF_MAX = 1
PORTAL_START_MAX_RETRIES = env.int("PORTAL_START_MAX_RETRIES", default=2)
PORTAL_RATE_LIMIT_REDIS_URL = env.str("PORTAL_RATE_LIMIT_REDIS_URL", default=CELERY_BROKER_URL)
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
# prometheus-client's multiprocess mode, as production runs it: the test process and the workers and servers it
# starts (which inherit this environment) count into one fresh directory, which /metrics adds up. Set here, before
# anything imports prometheus_client, which reads it once.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="portal-test-metrics-")

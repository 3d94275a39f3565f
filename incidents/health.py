"""Health of the parts a declaration depends on, for the operators' readiness report (/healthz/ready) and the worker
heartbeat.

Each check answers ok or not with a fixed, generic reason: exception texts can carry host names or credentials.
"""

import logging
import os
import time
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.core.cache import caches
from django.db import connection

from .aws import client as aws
from .selectors.audit import audit_role_privileges

HEARTBEAT_KEY = "portal:worker-heartbeat"
AWS_CHECK_KEY = "health:aws"
logger = logging.getLogger(__name__)


def _redis() -> redis.Redis:
    timeout = settings.PORTAL_HEALTH_TIMEOUT
    return redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=timeout, socket_connect_timeout=timeout)


def _uses_redis() -> bool:
    """False on `make run`'s embedded file broker, where nothing of the portal needs Redis."""
    return settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://", "unix://"))


def worker_heartbeat_record() -> None:
    """Run by a worker when it is ready and then on a beat schedule: proves that beat, the broker and a worker all
    work. Kept in Redis, or in a file (PORTAL_HEARTBEAT_FILE) on the embedded broker, where there is no Redis."""
    if settings.PORTAL_HEARTBEAT_FILE:
        path = Path(settings.PORTAL_HEARTBEAT_FILE)
        path.parent.mkdir(parents=True, exist_ok=True)
        written = path.with_name(f"{path.name}.{os.getpid()}")
        written.write_text(repr(time.time()))
        written.replace(path)  # whole or not at all: a reader never sees half a number
        return
    _redis().set(HEARTBEAT_KEY, repr(time.time()), ex=int(settings.PORTAL_HEARTBEAT_MAX_AGE * 10))


def _worker_heartbeat() -> float | None:
    """When a worker last recorded its heartbeat (time.time()), or None when none has."""
    if settings.PORTAL_HEARTBEAT_FILE:
        try:
            return float(Path(settings.PORTAL_HEARTBEAT_FILE).read_text())
        except FileNotFoundError:
            return None
    raw = _redis().get(HEARTBEAT_KEY)
    return None if raw is None else float(raw)


def _check_database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True}


def _check_redis() -> dict[str, Any]:
    if not _uses_redis():
        return {"ok": True, "in_use": False}
    _redis().ping()
    return {"ok": True}


def _check_worker() -> dict[str, Any]:
    recorded = _worker_heartbeat()
    if recorded is None:
        return {"ok": False, "reason": "no worker heartbeat recorded"}
    age = max(0.0, time.time() - recorded)
    if age > settings.PORTAL_HEARTBEAT_MAX_AGE:
        return {"ok": False, "reason": "worker heartbeat too old", "age_seconds": round(age, 1)}
    return {"ok": True, "age_seconds": round(age, 1)}


def _check_aws() -> dict[str, Any]:
    """AWS's answer to ListResponsePlans, asked at most once per PORTAL_HEALTH_AWS_CACHE_SECONDS in each process:
    a monitor polling every second must not become a stream of calls against the account's API quota."""
    remembered = caches["local"].get(AWS_CHECK_KEY)
    if remembered is not None:
        answer, checked_at = remembered
        return {**answer, "checked_seconds_ago": round(max(0.0, time.time() - checked_at), 1)}
    try:
        aws.ping(timeout=settings.PORTAL_HEALTH_TIMEOUT)
    except aws.AwsError as error:
        # The error code (e.g. ConnectionError, AccessDeniedException) helps operators and reveals no secret.
        logger.warning("health check aws failed: %s", error.code)
        result: dict[str, Any] = {"ok": False, "reason": error.code}
    else:
        result = {"ok": True}
    if settings.PORTAL_HEALTH_AWS_CACHE_SECONDS > 0:
        caches["local"].set(AWS_CHECK_KEY, (result, time.time()), timeout=settings.PORTAL_HEALTH_AWS_CACHE_SECONDS)
    return result


CHECKS = {"database": _check_database, "redis": _check_redis, "worker": _check_worker, "aws": _check_aws}


def health_report() -> tuple[bool, dict[str, Any]]:
    checks: dict[str, Any] = {}
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            checks[name] = check()
        except Exception as exc:  # any failure is "not ok"; only its type is reported
            checks[name] = {"ok": False, "reason": type(exc).__name__}
            # Operators see which part failed in the logs too; the exception text stays out (it may hold secrets).
            logger.warning("health check %s failed: %s", name, type(exc).__name__)
        checks[name]["ms"] = round((time.monotonic() - started) * 1000)
    healthy = all(check["ok"] for check in checks.values())
    return healthy, {"status": "ok" if healthy else "unavailable", "checks": checks, "warnings": _warnings()}


def _warnings() -> list[str]:
    """What an operator should fix though nothing is down (never a reason to take the portal out of service)."""
    try:
        excess = audit_role_privileges().excess
    except Exception as exc:  # the database check above reports a database that does not answer
        logger.warning("health warning check failed: %s", type(exc).__name__)
        return []
    if excess:
        return ["the database role may do more than INSERT and SELECT audit events: " + "; ".join(excess)]
    return []

"""A rate limit shared by every worker process and host, kept in Redis.

Celery's own `rate_limit` counts per worker; AWS's StartIncident quota is per account. This is a GCRA token bucket
(the algorithm behind redis-cell and Stripe's limiter): one Lua script, atomic in Redis, using Redis's clock so that
workers with skewed clocks agree. A caller *reserves* the next free slot and sleeps until it, so nothing spins.

Without Redis (`make run` on its embedded broker: one machine), the same bucket lives in a database row instead
(PORTAL_RATE_LIMIT_STORE = "database"), moved under a row lock, with the machine's one clock.
"""

import functools
import time

import redis
from django.conf import settings
from django.db import DatabaseError, transaction

from .. import metrics
from ..models import RateLimitBucket

# KEYS[1]: the bucket. ARGV: emission interval (s), burst, longest wait a caller accepts (s).
# Returns the seconds to wait before sending, or -1 when the wait would be longer than the caller accepts.
_RESERVE = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - (burst - 1) * interval - now
if wait < 0 then wait = 0 end
if wait > max_wait then return '-1' end
local new_tat = tat + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return tostring(wait)
"""


class RateLimitBusy(Exception):
    """The shared limit has no slot within the wait a caller accepts; try again later."""


class RateLimiterUnavailable(Exception):
    """The store that keeps the shared limit (Redis, or the database in local mode) did not answer."""


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(
        settings.PORTAL_RATE_LIMIT_REDIS_URL, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30
    )


def _in_database() -> bool:
    return settings.PORTAL_RATE_LIMIT_STORE == "database"


def warm_up() -> None:
    """Make the client and load the script now: redis-py's first client in a process costs ~0.1 s here (type checks
    of its event listeners), which the first StartIncident of every new worker process would otherwise wait for."""
    if not _in_database():
        _redis().script_load(_RESERVE)


def reset_connections() -> None:
    """Forget the cached connection (tests that point the limiter at another Redis)."""
    _redis.cache_clear()


def rate_limit_wait(*, name: str, per_second: float, burst: int, max_wait: float) -> None:
    """Block until this caller may make one call under the shared limit `name`.

    Raises RateLimitBusy when no slot is free within `max_wait` seconds, and RateLimiterUnavailable when the limit's
    store cannot be reached: then the call is not made (and the caller retries) rather than risking AWS's quota.
    """
    if per_second <= 0:
        return
    interval, burst = 1.0 / per_second, max(burst, 1)
    try:
        if _in_database():
            wait = _reserve_in_database(name=name, interval=interval, burst=burst, max_wait=max_wait)
        else:
            script = _redis().register_script(_RESERVE)
            wait = float(script(keys=[f"portal:ratelimit:{name}"], args=[interval, burst, max_wait]))
    except (redis.RedisError, DatabaseError) as exc:
        raise RateLimiterUnavailable(f"The {name} rate limit's store did not answer: {type(exc).__name__}") from exc
    if wait < 0:
        metrics.RATE_LIMIT_REFUSALS.labels(limit=name).inc()
        raise RateLimitBusy(f"More than {max_wait:g} s of {name} calls are already scheduled.")
    metrics.RATE_LIMIT_WAIT_SECONDS.labels(limit=name).observe(wait)
    if wait:
        time.sleep(wait)


def _reserve_in_database(*, name: str, interval: float, burst: int, max_wait: float) -> float:
    """The Lua script's reservation, in one short transaction on the bucket's row (its lock orders the callers);
    the caller sleeps after the commit, never while holding the lock."""
    with transaction.atomic():
        bucket, _ = RateLimitBucket.objects.select_for_update().get_or_create(name=name)
        now = time.time()
        next_arrival = max(bucket.next_arrival, now)
        wait = max(0.0, next_arrival - (burst - 1) * interval - now)
        if wait > max_wait:
            return -1
        bucket.next_arrival = next_arrival + interval
        bucket.save(update_fields=["next_arrival"])
    return wait


def start_incident_slot() -> None:
    """One StartIncident HTTP attempt (botocore's own retries included) under the portal-wide limit."""
    rate_limit_wait(
        name="start-incident",
        per_second=settings.PORTAL_START_RATE_LIMIT_PER_SECOND,
        burst=settings.PORTAL_START_RATE_LIMIT_BURST,
        max_wait=settings.PORTAL_START_RATE_LIMIT_MAX_WAIT,
    )


def aws_read_slot() -> None:
    """One HTTP attempt of an incident read (GetIncidentRecord, ListRelatedItems, ListTimelineEvents, …) under the
    portal-wide read budget: the refreshes of every open incident share it, whoever asked for them."""
    rate_limit_wait(
        name="aws-read",
        per_second=settings.PORTAL_AWS_READ_RATE,
        burst=settings.PORTAL_AWS_READ_BURST,
        max_wait=settings.PORTAL_AWS_READ_MAX_WAIT,
    )

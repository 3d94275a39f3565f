"""Counts requests against fixed-window rate limits: the API's per token and per person, declarations per person.

The counters live in the shared cache (Redis), so every web process counts against the same limit. When it cannot
be reached, each process counts in its own memory instead (the "local" cache): the limit then holds per process —
N gunicorn workers let through up to N times the limit — which is far better than no limit while Redis is down.
"""

import logging
import math
import re
import time

from django.core.cache import cache, caches
from django.core.cache.backends.base import BaseCache
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

RATE_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def rate_limit_parse(text: str, *, setting: str = "PORTAL_API_RATE_LIMIT") -> tuple[int, int]:
    """ "60/m" → (60 requests, per 60 seconds). Units: s, m, h, d. `setting` names the value in the error."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*([smhd])\s*", text or "")
    if not match or int(match[1]) < 1:
        raise ImproperlyConfigured(f"{setting} must look like 60/m (requests/s|m|h|d), not {text!r}.")
    return int(match[1]), RATE_PERIODS[match[2]]


def _count(store: BaseCache, base: str, *, limit: int, period: int, now: float) -> int | None:
    """One request against the window at `base` in `store`: None when allowed, else the seconds until it closes.
    A window opens with the key's first request and lasts one period."""
    store.add(f"{base}:opened", now, timeout=period)
    store.add(f"{base}:count", 0, timeout=period)
    if store.incr(f"{base}:count") <= limit:
        return None
    opened = store.get(f"{base}:opened") or now
    return max(1, math.ceil(opened + period - now))


def rate_limit_hit(*, key: str, rate: str, setting: str) -> int | None:
    """Count one request against `key` under `rate` (the value of the setting named `setting`, e.g. "60/m").

    Returns None when the request is allowed, else the seconds until requests under `key` are allowed again."""
    limit, period = rate_limit_parse(rate, setting=setting)
    now = time.time()
    base = f"rate:{key}:{limit}/{period}"
    try:
        return _count(cache, base, limit=limit, period=period, now=now)
    except Exception:  # the shared cache did not answer (any client error): count in this process instead
        logger.warning("rate limit %s counted in this process only: the shared cache is unreachable", setting)
    return _count(caches["local"], base, limit=limit, period=period, now=now)

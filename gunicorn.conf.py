"""gunicorn's settings for the portal; gunicorn reads this file from the directory it starts in.

Command-line options still win, e.g. `gunicorn portal.wsgi --workers 9`.
"""

import multiprocessing
import os

wsgi_app = "portal.wsgi"
# Only this machine by default: the proxy in front (README, Running it in production) is what the world reaches.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Forwarding headers are the portal's to judge, against its own list of proxies (PORTAL_PROXY_HOPS,
# PORTAL_TRUSTED_PROXIES: incidents/http.py); gunicorn believes none (by default it would, from 127.0.0.1).
forwarded_allow_ips = ""
# Sync workers: the request path is short and CPU-bound, and the buffering proxy in front absorbs slow clients.
# 2 × cores + 1 (5 on two cores) measured fastest for declarations here, ahead of gthread (README, Performance).
workers = int(os.environ.get("GUNICORN_WORKERS", 2 * multiprocessing.cpu_count() + 1))
# A sync worker that sends nothing for this long is killed and restarted. Every page answers in well under a
# second, but a CSV export of the whole history streams for as long as it takes (about 15 s for a million rows on
# a fast 2-core machine, several times that on a slow one): the default 30 s would cut large exports off mid-file.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 300))
graceful_timeout = 30
# Requests queue in the kernel while every worker is busy, rather than being refused.
backlog = 2048
# The access log is the proxy's; the portal's own structured log names every step of a declaration.
accesslog = None


def child_exit(server, worker) -> None:
    """A worker that exits leaves its metric files in PROMETHEUS_MULTIPROC_DIR: its counters keep counting in the
    totals, but its live gauges (prometheus-client's multiprocess_mode="live…") must go (incidents/metrics.py)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker) -> None:
    """Each worker imports and connects now what its first declaration would otherwise wait for
    (incidents/warmup.py)."""
    from incidents import warmup  # gunicorn reads this file before Django is set up

    warmup.web_process()

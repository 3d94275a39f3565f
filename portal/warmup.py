"""Set-up that a new process would otherwise do while its first declaration waits.

Django imports its URLconf (and with it every view) and builds its reverse map on the first request or reverse(),
and opens the process's database connection on its first query; Celery builds its task registry, imports its
broker transport, looks up its result backend and declares the queue on the first publish; boto3 reads its service
models when the first client is made; redis-py's first client in a process costs ~0.1 s. After a deploy or a
worker restart, the first declarations paid for all of that: up to 0.7 s more from the click to StartIncident on
this machine. gunicorn's `post_worker_init` (gunicorn.conf.py) and Celery's `worker_process_init`
(portal/celery.py) call these once per process, after the fork, so no connection is ever shared between processes.
A failure here is logged and the process starts anyway: the request and task paths handle an unreachable database,
broker or AWS themselves.
"""

import logging

from django.conf import settings
from django.urls import reverse

logger = logging.getLogger(__name__)


def web_process() -> None:
    _urls()
    _database()
    try:
        _publisher()
    except Exception as exc:  # Redis is down: the first declaration's publish fails and the sweeper takes over
        logger.warning("Celery's broker was not reachable at start (%s); publishing will connect on first use", exc)


def worker_process() -> None:
    from incidents import aws, ratelimit

    _urls()  # StartIncident's request carries the declaration's URL
    _database()
    try:
        aws.warm_up()
    except Exception as exc:  # a configuration error: the first task reports it where it matters
        logger.warning("AWS clients could not be built at start: %s", exc)
    try:
        ratelimit.warm_up()
    except Exception as exc:  # Redis is down: the first StartIncident waits for it and retries
        logger.warning("The StartIncident rate limiter's Redis was not reachable at start: %s", exc)


def _urls() -> None:
    """Import the URLconf, and every view with it, and build the reverse map the first reverse() would build."""
    reverse("incidents:declaration-detail", args=[1])


def _database() -> None:
    """Open the connection the process then keeps (CONN_MAX_AGE); not when each request opens its own anyway."""
    from django.db import connection

    if connection.settings_dict["CONN_MAX_AGE"] == 0:
        return
    try:
        connection.ensure_connection()
    except Exception as exc:  # the database is down: the first request or task connects, or reports it
        logger.warning("The database was not reachable at start (%s); the first query will connect", exc)


def _publisher() -> None:
    from portal.celery import app

    app.finalize(auto=True)
    app.backend  # noqa: B018 - looked up by every first apply_async, results or not (scans installed packages)
    with app.producer_or_acquire() as producer:
        producer.connection.ensure_connection(max_retries=1, interval_start=0)
        declarations = settings.CELERY_TASK_ROUTES["incidents.tasks.start_declaration"]["queue"]
        producer.maybe_declare(app.amqp.queues[declarations])

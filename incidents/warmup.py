"""Set-up that a new process would otherwise do while its first declaration waits.

Django imports its URLconf (and every view with it) on the first request or reverse() and opens the process's
database connection on its first query; Celery imports its task modules and broker transport on the first publish;
boto3 reads its service models when the first client is made; redis-py's first client in a process costs ~0.1 s.
After a deploy or a worker restart the first declarations paid for all of that. gunicorn's `post_worker_init`
(gunicorn.conf.py) and the worker's `worker_process_init` (incidents/tasks.py) call these once per process, after
the fork, so no connection is ever shared between processes. A failure here is logged and the process starts
anyway: the request and task paths handle an unreachable database, broker or AWS themselves.
"""

import gc
import logging
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.db import connection
from django.template import TemplateSyntaxError, engines
from django.urls import reverse

from . import validators
from .aws import client as aws
from .aws import ratelimit
from .services.declarations import START_TASK

logger = logging.getLogger(__name__)


def web_process() -> None:
    _urls()
    _templates()
    validators.warm_up()
    _database()
    try:
        _publisher()
    except Exception as exc:  # Redis is down: the first declaration's publish fails and the sweeper takes over
        logger.warning("Celery's broker was not reachable at start (%s); publishing will connect on first use", exc)
    freeze_heap()


def worker_process() -> None:
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
    freeze_heap()


def freeze_heap() -> None:
    """Collect once, then keep what the process has set up out of the garbage collector's sight (`gc.freeze`).

    A warmed process holds 120–170 thousand objects (modules, models, botocore's service models), nearly all kept
    until it exits. Python's full collection walks all of them: under load it took 100–250 ms here, a pause for
    every request or task in that process, about once a minute. Frozen, they are never walked again (reference
    counting still frees them) and a full collection only walks what was made since."""
    gc.collect()
    gc.freeze()


def _urls() -> None:
    """Import the URLconf, and every view with it, and build the reverse map the first reverse() would build."""
    reverse("incidents:declaration-detail", args=[1])


def _database() -> None:
    """Open the process's database connection, which it then keeps (CONN_MAX_AGE); with DATABASE_CONN_MAX_AGE=0
    (a connection per request, as behind PgBouncer) there is nothing to keep."""
    if connection.settings_dict["CONN_MAX_AGE"] == 0:
        return
    try:
        connection.ensure_connection()
    except Exception as exc:  # the database is down: the first request or task connects, or reports it
        logger.warning("The database was not reachable at start (%s); the first query will connect", exc)


def _templates() -> None:
    """Compile the portal's own templates (Django's cached loader keeps them): ~20 ms that a new process's first
    pages would otherwise wait for."""
    for engine in engines.all():
        for directory in map(Path, engine.dirs):
            for path in sorted(directory.rglob("*.html")):
                try:
                    engine.get_template(path.relative_to(directory).as_posix())
                except TemplateSyntaxError as exc:  # the page that uses it reports it, as it would have anyway
                    logger.warning("Template %s does not compile: %s", path, exc)


def _publisher() -> None:
    """What the first publish would do: import the task modules, look up the result backend, connect to the broker
    and declare the declarations' queue."""
    app = current_app
    app.loader.import_default_modules()
    app.backend  # noqa: B018 - looked up by every first apply_async, results or not (scans installed packages)
    with app.producer_or_acquire() as producer:
        producer.connection.ensure_connection(max_retries=1, interval_start=0)
        declarations = settings.CELERY_TASK_ROUTES[START_TASK]["queue"]
        producer.maybe_declare(app.amqp.queues[declarations])

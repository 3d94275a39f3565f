"""Set-up that a new process would otherwise do while its first declaration waits.

Django imports its URLconf (and with it every view) and builds its reverse map on the first request or reverse(),
and opens the process's database connection on its first query; Celery builds its task registry, imports its
broker transport, looks up its result backend and declares the queue on the first publish; boto3 reads its service
models when the first client is made; redis-py's first client in a process costs ~0.1 s. After a deploy or a
worker restart, the first declarations paid for all of that: up to 0.7 s more from the click to StartIncident on
this machine. Smaller first uses are done here too: the link validator's patterns, the templates, the statements
the portal builds once per process (`portal.database`; the reads run for rows that cannot exist), Celery's task
modules. Last, the process's start-up objects are frozen out of the garbage collector's walks (`freeze_heap`).
gunicorn's `post_worker_init` (gunicorn.conf.py) and Celery's `worker_process_init` (portal/celery.py) call these
once per process, after the fork, so no connection is ever shared between processes.
A failure here is logged and the process starts anyway: the request and task paths handle an unreachable database,
broker or AWS themselves.
"""

import gc
import logging
from importlib import import_module
from pathlib import Path

from django.conf import settings
from django.urls import reverse

logger = logging.getLogger(__name__)


def web_process() -> None:
    from incidents import validators

    _urls()
    _templates()
    validators.warm_up()
    if _database():
        _statements(_declare_statements)
    try:
        _publisher()
    except Exception as exc:  # Redis is down: the first declaration's publish fails and the sweeper takes over
        logger.warning("Celery's broker was not reachable at start (%s); publishing will connect on first use", exc)
    freeze_heap()


def worker_process() -> None:
    from incidents import aws, ratelimit

    _urls()  # StartIncident's request carries the declaration's URL
    if _database():
        _statements(_start_statements)
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

    A warmed process holds 120–170 thousand objects (modules, models, botocore's service models, compiled
    statements), nearly all kept until it exits. Python's full collection walks all of them: under load it took
    100–250 ms here, a pause for every request or task in that process, about once a minute. Frozen, they are
    never walked again (plain reference counting still frees them) and a full collection only walks what was made
    since."""
    gc.collect()
    gc.freeze()


def _urls() -> None:
    """Import the URLconf, and every view with it, and build the reverse map the first reverse() would build."""
    reverse("incidents:declaration-detail", args=[1])


def _database() -> bool:
    """Open the process's database connection, which it then keeps (CONN_MAX_AGE). False when the database cannot
    be reached: the first request or task connects, or reports it, and builds its statements itself."""
    from django.db import connection

    try:
        connection.ensure_connection()
    except Exception as exc:  # the database is down: the first request or task connects, or reports it
        logger.warning("The database was not reachable at start (%s); the first query will connect", exc)
        return False
    return True


def _statements(prepare) -> None:
    """Build and run `prepare`'s statements on the process's connection. With CONN_MAX_AGE=0 (each request opens its
    own connection, as behind PgBouncer) that connection is closed again afterwards."""
    from django.db import connection

    try:
        prepare()
    except Exception as exc:  # the first request or task builds and runs them itself
        logger.warning("The statements of %s could not be prepared at start: %s", prepare.__name__, exc)
    finally:
        if connection.settings_dict["CONN_MAX_AGE"] == 0:
            connection.close()


def _templates() -> None:
    """Compile the portal's own templates (each engine's DIRS; Django's cached loader keeps them): ~20 ms that a
    new process's first pages would otherwise wait for."""
    from django.template import TemplateSyntaxError, engines

    for engine in engines.all():
        for directory in map(Path, engine.dirs):
            for path in sorted(directory.rglob("*.html")):
                try:
                    engine.get_template(path.relative_to(directory).as_posix())
                except TemplateSyntaxError as exc:  # the page that uses it reports it, as it would have anyway
                    logger.warning("Template %s does not compile: %s", path, exc)


def _declare_statements() -> None:
    """What a declare POST runs before its publish, with a session, a person and a plan that cannot exist: the
    session, the person and the plan lookup (`portal.database`), and the INSERTs of a declaration, its related items
    and audit events."""
    from django.contrib.auth import get_backends

    from incidents import selectors, services

    import_module(settings.SESSION_ENGINE).SessionStore(session_key="warm-up session key").load()
    for backend in get_backends():
        if hasattr(backend, "get_user"):  # the ones that read a session's person (not django-axes's)
            backend.get_user(-1)
    selectors.warm_up_declare()
    services.warm_up_declare()


def _start_statements() -> None:
    """The worker's reads of a declaration it starts, for one that cannot exist, and the INSERT of its audit
    events."""
    from incidents import selectors, services

    selectors.warm_up_start()
    services.warm_up_start()


def _publisher() -> None:
    from portal.celery import app

    app.finalize(auto=True)
    app.loader.import_default_modules()  # the task modules, which the first publish would import
    app.backend  # noqa: B018 - looked up by every first apply_async, results or not (scans installed packages)
    app.amqp.send_task_message  # noqa: B018 - built by the first apply_async (imports Celery's event dispatcher)
    with app.producer_or_acquire() as producer:
        producer.connection.ensure_connection(max_retries=1, interval_start=0)
        declarations = settings.CELERY_TASK_ROUTES["incidents.tasks.start_declaration"]["queue"]
        producer.maybe_declare(app.amqp.queues[declarations])

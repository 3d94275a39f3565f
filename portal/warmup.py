"""Set-up that a new process would otherwise do while its first declaration waits.

Django imports its URLconf (and with it every view) on the first request; Celery builds its task registry, imports
its broker transport, looks up its result backend and declares the queue on the first publish; boto3 reads its
service models when the first client is made. After a deploy or a worker restart, the first declarations paid for
all of that: up to 0.7 s more from the click to StartIncident on this machine. gunicorn's `post_worker_init`
(gunicorn.conf.py) and Celery's `worker_process_init` (portal/celery.py) call these once per process, after the
fork, so no connection is ever shared between processes. A failure here is logged and the process starts anyway:
the request and task paths handle an unreachable broker or AWS themselves.
"""

import logging
from importlib import import_module

from django.conf import settings

logger = logging.getLogger(__name__)


def web_process() -> None:
    import_module(settings.ROOT_URLCONF)
    try:
        _publisher()
    except Exception as exc:  # Redis is down: the first declaration's publish fails and the sweeper takes over
        logger.warning("Celery's broker was not reachable at start (%s); publishing will connect on first use", exc)


def worker_process() -> None:
    from incidents import aws

    try:
        aws.warm_up()
    except Exception as exc:  # a configuration error: the first task reports it where it matters
        logger.warning("AWS clients could not be built at start: %s", exc)


def _publisher() -> None:
    from portal.celery import app

    app.finalize(auto=True)
    app.backend  # noqa: B018 - looked up by every first apply_async, results or not (scans installed packages)
    with app.producer_or_acquire() as producer:
        producer.connection.ensure_connection(max_retries=1, interval_start=0)
        declarations = settings.CELERY_TASK_ROUTES["incidents.tasks.start_declaration"]["queue"]
        producer.maybe_declare(app.amqp.queues[declarations])

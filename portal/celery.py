import os

from celery import Celery
from celery.signals import task_prerun, worker_init, worker_process_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")

app = Celery("portal")
# Every CELERY_* Django setting configures the app (CELERY_TASK_ACKS_LATE → task_acks_late, …).
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def _retire_old_database_connections(sender=None, **kwargs) -> None:
    # What Django does at each web request: drop connections past CONN_MAX_AGE or left broken by an error.
    # Not for tasks run eagerly inside a caller's transaction (as Celery's own fixup also spares them).
    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@worker_init.connect
def _warm_up_each_child(**kwargs) -> None:
    # Connected as the worker starts rather than at import: Celery's Django fixup connects its own
    # worker_process_init receiver at that moment, which closes whatever database connection a child inherited.
    # Connected after it, the warm-up's connection is the child's own and stays open for its first task.
    worker_process_init.connect(_warm_up, weak=False, dispatch_uid="portal.warm_up")


def _warm_up(**kwargs) -> None:
    from portal import warmup

    warmup.worker_process()


@worker_ready.connect
def _freeze_main_process(**kwargs) -> None:
    # The main process receives every task and hands it to a child: a full collection of its start-up objects
    # (~100 ms under load here) held up every declaration waiting to be handed over (portal/warmup.py).
    from portal import warmup

    warmup.freeze_heap()

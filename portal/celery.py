import os

from celery import Celery
from celery.signals import task_prerun
from django.db import close_old_connections

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
    close_old_connections()

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")

app = Celery("portal")
# Every CELERY_* Django setting configures the app (CELERY_TASK_ACKS_LATE → task_acks_late, …).
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

"""Celery tasks: thin interfaces that load by primary key and call one service."""

import logging
import os
import random

from celery import shared_task
from celery.signals import worker_init, worker_process_init, worker_process_shutdown, worker_ready
from django.conf import settings
from prometheus_client import multiprocess

from . import health, warmup
from .aws.client import AwsError
from .models import Declaration, IncidentAction
from .services.action_sending import ActionRetryable, incident_action_send
from .services.attachments import AttachmentRetryable, declaration_attach_pending_files
from .services.audit import audit_head_publish
from .services.incident_refresh import incident_refresh, incidents_refresh_due
from .services.plans import response_plans_sync
from .services.starting import StartRetryable, declaration_start
from .services.sweeper import declarations_sweep

logger = logging.getLogger(__name__)


def retry_countdown(retries: int) -> float:
    """Exponential backoff with full jitter, capped well below the broker's visibility timeout."""
    cap = min(settings.PORTAL_START_RETRY_BACKOFF_MAX, settings.PORTAL_VISIBILITY_TIMEOUT / 10)
    return random.uniform(0, min(cap, 2**retries))


@shared_task(bind=True, max_retries=None, acks_late=True, reject_on_worker_lost=True)
def start_declaration(self, declaration_id: int) -> None:
    """Call StartIncident for one declaration; a second delivery of the same message does nothing."""
    max_retries = settings.PORTAL_START_MAX_RETRIES
    # Chosen before the attempt, so that a failed one records when the next comes (the declaration's page says it).
    countdown = retry_countdown(self.request.retries)
    try:
        declaration_start(
            declaration_id=declaration_id, final_attempt=self.request.retries >= max_retries, retry_in=countdown
        )
    except StartRetryable as exc:
        raise self.retry(exc=exc, countdown=countdown) from exc
    except Declaration.DoesNotExist:
        # Declarations are never deleted by the portal; a message for a missing row has nothing left to do.
        logger.warning("declaration %s does not exist; message dropped", declaration_id)


@shared_task(bind=True, max_retries=None, acks_late=True, reject_on_worker_lost=True)
def send_incident_action(self, action_id: int) -> None:
    """Send one incident action (a note, related items, an update, resolving) to AWS, retried like StartIncident;
    a second delivery of the same message does nothing."""
    countdown = retry_countdown(self.request.retries)
    try:
        incident_action_send(
            action_id=action_id,
            final_attempt=self.request.retries >= settings.PORTAL_START_MAX_RETRIES,
            retry_in=countdown,
        )
    except ActionRetryable as exc:
        raise self.retry(exc=exc, countdown=countdown) from exc
    except IncidentAction.DoesNotExist:
        logger.warning("incident action %s does not exist; message dropped", action_id)


@shared_task(bind=True, max_retries=None, acks_late=True, reject_on_worker_lost=True)
def attach_pending_files(self, declaration_id: int) -> None:
    """Upload the files S3 refused at declaration time and add them to the incident."""
    final = self.request.retries >= settings.PORTAL_ATTACH_MAX_RETRIES
    try:
        declaration_attach_pending_files(declaration_id=declaration_id, final_attempt=final)
    except AttachmentRetryable as exc:
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries)) from exc


@shared_task(acks_late=True, ignore_result=True)
def sweep_declarations() -> int:
    """The outbox sweeper, run by beat: re-dispatch what sits queued or starting for too long."""
    return declarations_sweep().total


@shared_task(ignore_result=True, expires=60)
def record_worker_heartbeat() -> None:
    health.worker_heartbeat_record()


@shared_task(ignore_result=True)
def publish_audit_head() -> None:
    """Beat's periodic publication of the audit chain's head to the write-once bucket; a failed run is logged and
    the next one publishes the head as it is then."""
    try:
        published = audit_head_publish()
    except AwsError as exc:
        logger.warning("audit head not published: %s", exc)
        return
    if published is not None and published.new:
        logger.info("audit head published: event %d to s3://%s/%s", published.event_id, published.bucket, published.key)


@shared_task(acks_late=True, ignore_result=True)
def sync_response_plans() -> None:
    """Beat's periodic mirror of AWS's response plans; a failed run is logged and the next one tries again."""
    try:
        result = response_plans_sync()
    except AwsError as exc:
        logger.warning("response plan sync failed: %s", exc)
        return
    logger.info(
        "response plans synced: %d new, %d changed, %d deleted in AWS, %d unchanged",
        len(result.created),
        len(result.updated),
        len(result.deleted),
        result.unchanged,
    )


@shared_task(ignore_result=True)
def refresh_incident(declaration_id: int) -> None:
    """Read one incident back from AWS for its declaration's page; a failed read is stored and shown, not retried
    (the page's next poll or beat's next round asks again)."""
    try:
        outcome = incident_refresh(declaration_id=declaration_id)
    except Declaration.DoesNotExist:
        return
    if outcome.error is not None:
        logger.info("incident of declaration %s: %s (%s)", declaration_id, outcome.outcome, outcome.error.code)


@shared_task(ignore_result=True)
def refresh_open_incidents() -> int:
    """Beat's round over the open incidents, within the AWS read budget."""
    return len(incidents_refresh_due())


# --- The worker's processes ----------------------------------------------------------------------------------


@worker_init.connect
def _warm_up_each_child(**kwargs) -> None:
    # Connected as the worker starts rather than at import: Celery's Django fixup connects its own
    # worker_process_init receiver before this, which closes whatever database connection a child inherited.
    # Connected after it, the warm-up's connection is the child's own and stays open for its first task.
    worker_process_init.connect(_warm_up_child, weak=False, dispatch_uid="incidents.warm_up")


def _warm_up_child(**kwargs) -> None:
    warmup.worker_process()


@worker_ready.connect
def _heartbeat_when_ready(**kwargs) -> None:
    # /healthz/ready reports the worker up as soon as it consumes, not only after beat's first heartbeat (up to
    # PORTAL_HEARTBEAT_INTERVAL later, or never where beat is not running yet).
    try:
        health.worker_heartbeat_record()
    except Exception as exc:  # the broker's store is down: beat's heartbeats report it when it is back
        logger.warning("The worker could not record its heartbeat when ready: %s", type(exc).__name__)


@worker_process_shutdown.connect
def _forget_live_metrics_of_child(pid: int | None = None, **kwargs) -> None:
    # As gunicorn.conf.py's child_exit does for web workers: a dead process's live gauges must not be added up.
    if pid is not None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)


@worker_ready.connect
def _freeze_main_process(**kwargs) -> None:
    # The main process receives every task and hands it to a child: a full collection of its start-up objects
    # held up every declaration waiting to be handed over (incidents/warmup.py).
    warmup.freeze_heap()

"""The outbox sweeper: the declaration row, not the broker, is the source of truth, so whatever a lost message
left behind is handed to the workers again."""

import functools
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .. import metrics
from ..models import AttachmentState, Declaration, IncidentAction, RelatedItem
from .actions import incident_action_dispatch
from .attachments import attachments_dispatch
from .audit import audit_record
from .declarations import declaration_dispatch

logger = logging.getLogger(__name__)


@dataclass
class SweepResult:
    queued: list[int] = field(default_factory=list)
    starting: list[int] = field(default_factory=list)
    attachments: list[int] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.queued) + len(self.starting) + len(self.attachments) + len(self.actions)


def declarations_sweep(*, now: datetime | None = None) -> SweepResult:
    """Re-dispatch work whose message may be lost: the declaration row, not the broker, is the source of truth.

    Picks declarations queued but never (or too long ago) handed to a worker, declarations starting for too long
    (a lost worker or a Redis restart took their message), started incidents with files still pending, and incident
    actions (notes, items, updates, resolving) still queued with no attempt for as long.
    `SKIP LOCKED` lets any number of sweepers (and workers) run at once without waiting on or repeating each other.
    """
    now = now or timezone.now()
    queued_before = now - timedelta(seconds=settings.PORTAL_SWEEP_QUEUED_AFTER)
    starting_before = now - timedelta(seconds=settings.PORTAL_SWEEP_STARTING_AFTER)
    result = SweepResult()
    with transaction.atomic():
        stuck = list(
            Declaration.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                Q(
                    state=Declaration.State.QUEUED,
                    created_at__lt=queued_before,
                )
                & (Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=queued_before))
                | Q(state=Declaration.State.STARTING, updated_at__lt=starting_before)
            )
            .order_by("created_at", "id")[: settings.PORTAL_SWEEP_BATCH]
        )
        for declaration in stuck:
            if declaration.state == Declaration.State.QUEUED:
                since = declaration.dispatched_at or declaration.created_at
                result.queued.append(declaration.pk)
            else:
                since = declaration.updated_at
                result.starting.append(declaration.pk)
            audit_record(
                action="declaration.redispatched",
                declaration=declaration,
                details={
                    "state": declaration.state,
                    "attempt": declaration.attempts,
                    "client_token": declaration.client_token,
                    "stuck_since": since,
                },
            )
        # Claimed: the next sweep leaves them alone until the threshold passes again.
        Declaration.objects.filter(pk__in=[d.pk for d in stuck]).update(dispatched_at=now, updated_at=now)
        for declaration_id in result.queued + result.starting:
            transaction.on_commit(functools.partial(declaration_dispatch, declaration_id=declaration_id))

        waiting = (
            RelatedItem.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                attachment_state=AttachmentState.PENDING,
                declaration__state=Declaration.State.STARTED,
                declaration__updated_at__lt=queued_before,
            )
            .values_list("declaration_id", flat=True)
        )
        result.attachments = sorted(set(waiting))
        Declaration.objects.filter(pk__in=result.attachments).update(updated_at=now)
        for declaration_id in result.attachments:
            transaction.on_commit(functools.partial(attachments_dispatch, declaration_id=declaration_id))
        _actions_sweep(result, now=now, queued_before=queued_before)
    for kind, redispatched in (
        ("queued", result.queued),
        ("starting", result.starting),
        ("attachments", result.attachments),
        ("actions", result.actions),
    ):
        metrics.SWEEPER_REDISPATCHES.labels(kind=kind).inc(len(redispatched))
    if result.total:
        logger.info(
            "sweeper re-dispatched %s queued, %s starting, %s with pending files, %s incident actions",
            len(result.queued),
            len(result.starting),
            len(result.attachments),
            len(result.actions),
            extra={"event": "declarations.swept", "count": result.total},
        )
    return result


def _actions_sweep(result: SweepResult, *, now: datetime, queued_before: datetime) -> None:
    """Incident actions still queued whose message may be lost (never handed over, or no attempt for a while)."""
    stuck = list(
        IncidentAction.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("declaration")
        .filter(state=IncidentAction.State.QUEUED, created_at__lt=queued_before)
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=queued_before))
        .order_by("created_at", "id")[: settings.PORTAL_SWEEP_BATCH]
    )
    for action in stuck:
        audit_record(
            action="incident_action.redispatched",
            declaration=action.declaration,
            details={
                "action": action.pk,
                "kind": action.kind,
                "attempt": action.attempts,
                "client_token": action.client_token,
                "stuck_since": action.dispatched_at or action.created_at,
            },
        )
    result.actions = [action.pk for action in stuck]
    IncidentAction.objects.filter(pk__in=result.actions).update(dispatched_at=now, updated_at=now)
    for action_id in result.actions:
        transaction.on_commit(functools.partial(incident_action_dispatch, action_id=action_id))

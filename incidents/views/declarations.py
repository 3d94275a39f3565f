"""A declaration's page: its live status, what was sent to AWS and answered, its files and its audit trail;
retrying a failed one; downloading an attached file."""

import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from .. import roles
from ..aws.client import incident_manager_region
from ..errors import PortalError
from ..http import PortalRequest, client_ip, htmx_target
from ..models import IMPACT_DESCRIPTIONS, AttachmentState, Declaration, Impact, RelatedItem
from ..selectors.audit import declaration_audit_trail
from ..selectors.declarations import declaration_final_within, declaration_get_for
from ..selectors.incident_actions import incident_actions_unread
from ..selectors.incidents import IncidentView, incident_snapshot_of, incident_view
from ..services import declarations as declaration_services
from ..services.attachments import related_item_download_url
from ..services.incident_refresh import incident_refresh_request
from .access import declarer_required
from .incident_actions import incident_actions_context

AWS_CONSOLE_URL = "https://console.aws.amazon.com/systems-manager/incidents/home"
# The status is asked for every FAST_POLL for the first FAST_POLL_FOR seconds of a declaration (the worker usually has
# the incident started within a few hundred milliseconds), then every SLOW_POLL until it is final (issue 22 item 5).
FAST_POLL, FAST_POLL_FOR, SLOW_POLL = "150ms", 3.0, "1s"
# The page a person lands on right after declaring (the declaration younger than this, not final yet) waits up to
# LANDING_WAIT for the worker's answer before rendering, once: "Started" is then there on arrival, usually within the
# first ~100 ms, instead of a poll later. Bounded so that a busy worker costs a web worker at most this, once.
LANDING_FOR, LANDING_WAIT = 1.0, 0.3
# Until the worker's first read of a started incident (or a read the page asked for) has landed.
INCIDENT_FIRST_READ_POLL = 2
# The console's host in each AWS partition (the ARN's second field).
CONSOLE_HOSTS = {
    "aws": "console.aws.amazon.com",
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}


def incident_console_urls(arn: str, *, region: str) -> dict[str, str]:
    """Where an incident record is in the AWS console: the record itself in its region, and Incident Manager's
    home there (the one address AWS documents, kept as the way in when the record's own page moves).
    arn:PARTITION:ssm-incidents::ACCOUNT:incident-record/PLAN/ID — Incident Manager's ARNs leave the region out,
    so it is the region the portal called (an ARN that names one wins)."""
    parts = arn.split(":", 5)
    unknown = {"incident": AWS_CONSOLE_URL, "home": AWS_CONSOLE_URL, "region": "", "account": ""}
    if len(parts) != 6 or parts[1] not in CONSOLE_HOSTS:
        return unknown
    _arn, partition, _service, arn_region, account, _resource = parts
    region = arn_region or region
    if not region:
        return unknown
    host = f"https://{region}.{CONSOLE_HOSTS[partition]}"
    return {
        "incident": f"{host}/systems-manager/incidents/incident/{quote(arn, safe='')}/overview?region={region}",
        "home": f"{host}/systems-manager/incidents/home?region={region}",
        "region": region,
        "account": account,
    }


@dataclass(frozen=True)
class FailureExplanation:
    """A failure as a person reads it: what happened, whether retrying can help, what to do meanwhile."""

    what: str
    retry: str
    retry_helps: bool


_THROTTLED = {"ThrottlingException", "TooManyRequestsException"}
_AWS_DOWN = {"InternalServerException", "ServiceUnavailable", "ServiceUnavailableException"}
_PORTAL_LIMIT = {"PortalRateLimited", "RateLimiterUnavailable"}


def failure_explanation(*, code: str, attempts: int, final: bool) -> FailureExplanation:
    """The plain sentence for an AWS error code (AWS's own text is shown under it)."""
    gave_up = f"The portal gave up after {attempts} attempt{'s' if attempts != 1 else ''}. " if final else ""
    if code in ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation"):
        return FailureExplanation(
            "AWS refused: the portal is not allowed to start incidents with this response plan.",
            "Retrying will not help until an AWS administrator lets the portal's role call "
            "ssm-incidents:StartIncident on this plan.",
            retry_helps=False,
        )
    if code == "ResourceNotFoundException":
        return FailureExplanation(
            "AWS no longer knows this response plan: it was deleted or renamed in Incident Manager.",
            "Retrying will not help. Declare again with another plan, and tell a portal admin.",
            retry_helps=False,
        )
    if code == "ValidationException":
        return FailureExplanation(
            "AWS refused the request as invalid, so no incident was started.",
            "Retrying sends the same request and will fail the same way; a portal admin needs to look at it.",
            retry_helps=False,
        )
    if code in _THROTTLED:
        what = "AWS is throttling: too many requests to Incident Manager right now."
    elif code in _AWS_DOWN or code.startswith("5"):
        what = "Incident Manager had an internal error or was unavailable."
    elif code == "ConnectionError":
        what = "The portal could not reach AWS (the connection failed or timed out)."
    elif code == "PortalRateLimited":
        what = "The portal holds its calls to AWS under AWS's rate limit, and no slot came free in time."
    elif code == "RateLimiterUnavailable":
        what = "The portal's shared rate limiter (Redis) could not be reached, so the call to AWS was held back."
    else:
        return FailureExplanation(
            "The incident was not started because of an unexpected error.",
            "Retrying may help; if it fails again, a portal admin needs to look at it.",
            retry_helps=True,
        )
    return FailureExplanation(
        what,
        gave_up + ("Retrying can help once AWS answers again." if final else "This usually passes by itself."),
        retry_helps=True,
    )


@dataclass(frozen=True)
class RetryingNow:
    """A failed attempt with another one coming: what failed, and when the worker tries again."""

    attempt: int
    code: str
    message: str
    explanation: FailureExplanation
    next_attempt_at: datetime | None


def _retrying_now(declaration: Declaration, audit_events) -> RetryingNow | None:
    """From the audit trail: the last attempt failed and the worker will try again (the state is still starting)."""
    if declaration.state != Declaration.State.STARTING or not audit_events:
        return None
    last = audit_events[-1]
    if last.action != "declaration.attempt_failed":
        return None
    details = last.details or {}
    at = details.get("next_attempt_at")
    return RetryingNow(
        attempt=details.get("attempt", declaration.attempts),
        code=details.get("code", ""),
        message=details.get("message", ""),
        explanation=failure_explanation(code=details.get("code", ""), attempts=declaration.attempts, final=False),
        next_attempt_at=datetime.fromisoformat(at) if at else None,
    )


@declarer_required
def declaration_detail(request: PortalRequest, declaration_id: int) -> HttpResponse:
    declaration = declaration_get_for(user=request.user, declaration_id=declaration_id)
    if declaration is None:
        raise Http404("No declaration with that number is visible to you.")
    if _just_declared(request, declaration) and declaration_final_within(
        declaration_id=declaration.pk, seconds=LANDING_WAIT
    ):
        declaration.refresh_from_db()
    related_items = list(declaration.related_items.defer("pending_content"))
    files = [item for item in related_items if item.kind == RelatedItem.Kind.FILE]
    files_pending = sum(item.attachment_state == AttachmentState.PENDING for item in files)
    audit_events = list(declaration_audit_trail(declaration=declaration))
    keep_polling = not declaration.is_final or files_pending > 0
    snapshot = incident_refresh_request(declaration=declaration, snapshot=incident_snapshot_of(declaration=declaration))
    incident = incident_view(snapshot=snapshot)
    context = {
        "declaration": declaration,
        "aws_request_json": _pretty_json(declaration.aws_request),
        "aws_response_json": _pretty_json(declaration.aws_response),
        "related_items": related_items,
        # Files reach the incident after it started when S3 was down: keep polling until each has landed.
        "files_pending": files_pending,
        "keep_polling": keep_polling,
        "status_poll_delay": _status_poll_delay(declaration),
        "incident": incident,
        "incident_poll": _incident_poll(declaration, incident, status_polling=keep_polling),
        # A file's state changes only while polling; the answer that stops it carries their final states too.
        "refresh_items": bool(files),
        "audit_events": audit_events,
        "retrying": _retrying_now(declaration, audit_events),
        "failure": failure_explanation(code=declaration.failure_code, attempts=declaration.attempts, final=True)
        if declaration.state == Declaration.State.FAILED
        else None,
        "escalation_contact": settings.PORTAL_ESCALATION_CONTACT,
        "impact_description": IMPACT_DESCRIPTIONS[declaration.effective_impact],
        "impact_label": Impact(declaration.effective_impact).label,
        "console_url": AWS_CONSOLE_URL,
        "console": _console_urls(declaration),
        "portal_url": request.build_absolute_uri(declaration.get_absolute_url()),
        "can_retry": declaration.state == declaration.State.FAILED
        and (roles.is_manager(request.user) or declaration.declared_by_id == request.user.pk),
        "steps": _state_steps(declaration),
    }
    if htmx_target(request) == "status":
        # The live status: re-rendered without its polling trigger once the declaration is final and no file is
        # waiting; the audit trail and the related items ride along out of band.
        return render(request, "incidents/declaration_detail.html#status", {**context, "refresh_audit": True})
    if htmx_target(request) == "incident":
        return render(request, "incidents/declaration_incident.html", context)
    context.update(incident_actions_context(request, declaration))
    return render(request, "incidents/declaration_detail.html", context)


def _just_declared(request: PortalRequest, declaration: Declaration) -> bool:
    """The full page, right after declaring (its polls never wait)."""
    age = (timezone.now() - declaration.created_at).total_seconds()
    return not request.htmx and not declaration.is_final and age < LANDING_FOR


def _status_poll_delay(declaration: Declaration) -> str:
    age = (timezone.now() - declaration.created_at).total_seconds()
    return FAST_POLL if not declaration.is_final and age < FAST_POLL_FOR else SLOW_POLL


def _incident_poll(declaration: Declaration, incident: IncidentView | None, *, status_polling: bool) -> int | None:
    """Seconds until the incident section asks again; None: it does not (the status's polls carry it, or the incident
    is resolved, or there is none)."""
    if status_polling or declaration.state != Declaration.State.STARTED:
        return None
    if incident is None:
        return INCIDENT_FIRST_READ_POLL
    resolved = incident.record is not None and not incident.is_open
    if not resolved and (incident.refresh_pending or (incident.record is None and not incident.last_read_failed)):
        return INCIDENT_FIRST_READ_POLL
    last_attempt = max((moment for moment in (incident.read_at, incident.failed_at) if moment), default=None)
    if incident_actions_unread(declaration=declaration, since=last_attempt):
        # A note, items, a change or resolving on its way (a note on a resolved incident too): the worker reads the
        # incident back once it is sent (services/action_sending.py).
        return INCIDENT_FIRST_READ_POLL
    if resolved:
        return None  # a responder who reopens it is seen on the next visit
    return settings.PORTAL_INCIDENT_POLL_SECONDS


def _console_urls(declaration: Declaration) -> dict[str, str]:
    """The incident record in the console; until there is one, Incident Manager in the portal's region (where to
    declare by hand while the portal cannot)."""
    region = incident_manager_region()
    if declaration.incident_record_arn:
        return incident_console_urls(declaration.incident_record_arn, region=region)
    urls = incident_console_urls(declaration.response_plan.arn, region=region)
    return {**urls, "incident": urls["home"]}


def _state_steps(declaration: Declaration) -> list[dict]:
    """The journey queued → starting → started (or failed), each step done, current or still to come."""
    State = Declaration.State
    last = ("Failed", "failed") if declaration.state == State.FAILED else ("Started", "started")
    names = [("Queued", State.QUEUED), ("Starting", State.STARTING), last]
    position = {State.QUEUED: 0, State.STARTING: 1, State.STARTED: 2, State.FAILED: 2}[State(declaration.state)]
    steps = []
    for index, (label, key) in enumerate(names):
        if index < position or (index == position and declaration.state == State.STARTED):
            status = "done"
        elif index == position:
            status = "failed" if declaration.state == State.FAILED else "current"
        else:
            status = "todo"
        steps.append({"label": label, "key": key, "status": status})
    return steps


@require_POST
@declarer_required
def declaration_retry(request: PortalRequest, declaration_id: int) -> HttpResponse:
    declaration = declaration_get_for(user=request.user, declaration_id=declaration_id)
    if declaration is None:
        raise Http404("No declaration with that number is visible to you.")
    if not (roles.is_manager(request.user) or declaration.declared_by_id == request.user.pk):
        raise PermissionDenied
    try:
        declaration_services.declaration_retry(
            declaration=declaration, actor=request.user, ip_address=client_ip(request)
        )
    except PortalError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Queued again with the same client token; AWS will not start it twice.")
    return redirect(declaration)


def _pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) if value is not None else ""


@require_http_methods(["GET"])
@declarer_required
def related_item_download(request: PortalRequest, declaration_id: int, item_id: int) -> HttpResponse:
    """Checks who is asking, then redirects to a presigned S3 link that expires within minutes."""
    declaration = declaration_get_for(user=request.user, declaration_id=declaration_id)
    if declaration is None:
        raise Http404("No declaration with that number is visible to you.")
    item = get_object_or_404(RelatedItem, pk=item_id, declaration=declaration, kind=RelatedItem.Kind.FILE)
    try:
        url = related_item_download_url(item=item, actor=request.user, ip_address=client_ip(request))
    except PortalError as exc:
        raise Http404(str(exc)) from exc
    response = redirect(url)
    response["Cache-Control"] = "no-store"
    return response

"""The portal's one door to AWS: every boto3 client, call and error translation lives here.

Clients read the standard configuration (AWS_REGION, the credentials chain, AWS_ENDPOINT_URL_SSM_INCIDENTS,
AWS_ENDPOINT_URL_S3), so the same code talks to real AWS or to the project's sandbox.
"""

import functools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError
from django.conf import settings

from .. import metrics
from . import ratelimit

# Errors worth another attempt: AWS asked us to slow down, or failed on its side.
RETRYABLE_ERROR_CODES = frozenset(
    {"ThrottlingException", "TooManyRequestsException", "InternalServerException", "ServiceUnavailable"}
)


@dataclass(frozen=True)
class AwsError(Exception):
    """A failed AWS call, reduced to what the portal needs to decide and to tell people."""

    code: str
    message: str
    retryable: bool
    status: int | None = None
    request_id: str = ""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class StartIncidentResult:
    incident_record_arn: str
    request_id: str


# --- The service model: the source of truth for limits and patterns ---------------------------------


@functools.cache
def _start_incident_shape():
    model = botocore.session.get_session().get_service_model("ssm-incidents")
    return model.operation_model("StartIncident").input_shape


@functools.cache
def start_incident_limits() -> dict[str, Any]:
    """Limits of StartIncident's input, read from botocore's service model (not copied by hand)."""
    shape = _start_incident_shape()
    item = shape.members["relatedItems"].member
    value = item.members["identifier"].members["value"]
    trigger = shape.members["triggerDetails"]
    return {
        "arn_pattern": shape.members["responsePlanArn"].metadata["pattern"],
        "arn_max_length": value.members["arn"].metadata["max"],
        "title_max_length": shape.members["title"].metadata["max"],
        "impact_min": shape.members["impact"].metadata["min"],
        "impact_max": shape.members["impact"].metadata["max"],
        "client_token_max_length": shape.members["clientToken"].metadata["max"],
        "related_items_max": shape.members["relatedItems"].metadata["max"],
        "related_item_title_max_length": item.members["title"].metadata["max"],
        "url_max_length": value.members["url"].metadata["max"],
        "trigger_source_max_length": trigger.members["source"].metadata["max"],
        "trigger_raw_data_max_length": trigger.members["rawData"].metadata["max"],
    }


@functools.cache
def incident_action_limits() -> dict[str, int]:
    """Limits of what the portal sends to a started incident (UpdateIncidentRecord, CreateTimelineEvent)."""
    model = botocore.session.get_session().get_service_model("ssm-incidents")
    update = model.operation_model("UpdateIncidentRecord").input_shape.members
    event = model.operation_model("CreateTimelineEvent").input_shape.members
    return {
        "summary_max_length": update["summary"].metadata["max"],
        "event_data_max_length": event["eventData"].metadata["max"],
    }


# --- Clients -----------------------------------------------------------------------------------------

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def incident_manager_region() -> str:
    """The region the portal starts incidents in (incident-record ARNs carry none): where the console shows them."""
    return _client("ssm-incidents").meta.region_name or ""


def _client(service: str):
    # boto3 clients are thread-safe, sessions are not: build each client once per process, under a lock.
    with _clients_lock:
        if service not in _clients:
            config = Config(
                connect_timeout=settings.AWS_CONNECT_TIMEOUT,
                read_timeout=settings.AWS_READ_TIMEOUT,
                retries={"mode": "standard", "total_max_attempts": settings.AWS_MAX_ATTEMPTS},
                s3={"addressing_style": "path"},
                # SigV4 presigned links carry their own short expiry (X-Amz-Expires), checked by S3.
                signature_version="s3v4" if service == "s3" else None,
            )
            client = boto3.session.Session().client(service, config=config, region_name=settings.AWS_REGION or None)
            _observe(client)
            if service == "ssm-incidents":
                # Every HTTP attempt, botocore's own retries included, takes a slot of the portal-wide limit.
                client.meta.events.register("before-send.ssm-incidents.StartIncident", _start_incident_slot)
            _clients[service] = client
        return _clients[service]


def _start_incident_slot(**_kwargs) -> None:
    ratelimit.start_incident_slot()


def _reader():
    """The ssm-incidents client that reads incidents for the declaration pages: each of its HTTP attempts (botocore's
    retries included) takes a slot of the read budget (PORTAL_AWS_READ_RATE), apart from StartIncident's."""
    with _clients_lock:
        if "ssm-incidents:reader" not in _clients:
            config = Config(
                connect_timeout=settings.AWS_CONNECT_TIMEOUT,
                read_timeout=settings.AWS_READ_TIMEOUT,
                retries={"mode": "standard", "total_max_attempts": settings.AWS_MAX_ATTEMPTS},
            )
            client = boto3.session.Session().client(
                "ssm-incidents", config=config, region_name=settings.AWS_REGION or None
            )
            _observe(client)
            client.meta.events.register("before-send.ssm-incidents", _read_slot)
            _clients["ssm-incidents:reader"] = client
        return _clients["ssm-incidents:reader"]


def _read_slot(**_kwargs) -> None:
    ratelimit.aws_read_slot()


def _observe(client) -> None:
    """Count every call the client makes, by operation and outcome, and time it (incidents/metrics.py), through
    botocore's own events: each API call emits before-call, then after-call with AWS's answer (an error's too) or
    after-call-error when no answer came (a connection error, a busy rate limit)."""
    client.meta.events.register("before-call", _call_started)
    client.meta.events.register("after-call", _call_answered)
    client.meta.events.register("after-call-error", _call_failed)


def _call_started(*, model, context, **_kwargs) -> None:
    context["portal_call"] = (model.service_model.service_name, model.name, time.monotonic())


def _call_answered(*, http_response, parsed, context, **_kwargs) -> None:
    status = http_response.status_code
    outcome = "success" if status < 300 else parsed.get("Error", {}).get("Code") or f"HTTP{status}"
    _call_finished(context, outcome)


def _call_failed(*, exception, context, **_kwargs) -> None:
    _call_finished(context, _translate(exception).code)


def _call_finished(context: dict[str, Any], outcome: str) -> None:
    if "portal_call" not in context:
        return
    service, operation, started = context.pop("portal_call")
    metrics.AWS_CALLS.labels(service=service, operation=operation, outcome=outcome).inc()
    metrics.AWS_CALL_SECONDS.labels(service=service, operation=operation).observe(time.monotonic() - started)


def warm_up() -> None:
    """Build the clients now: botocore reads its service models when a client is made (0.1–0.3 s here), which the
    first StartIncident of every new worker process would otherwise wait for."""
    for service in ("ssm-incidents", "s3"):
        _client(service)
    _reader()


def reset_clients() -> None:
    """Forget cached clients, so that changed endpoints or credentials take effect (tests, forks)."""
    with _clients_lock:
        _clients.clear()


def _translate(exc: Exception) -> AwsError:
    if isinstance(exc, ratelimit.RateLimitBusy):
        return AwsError(code="PortalRateLimited", message=str(exc), retryable=True)
    if isinstance(exc, ratelimit.RateLimiterUnavailable):
        return AwsError(
            code="RateLimiterUnavailable", message="The shared rate limiter is unreachable.", retryable=True
        )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        metadata = exc.response.get("ResponseMetadata", {})
        code = error.get("Code", "Unknown")
        status = metadata.get("HTTPStatusCode")
        return AwsError(
            code=code,
            message=error.get("Message") or code,
            retryable=code in RETRYABLE_ERROR_CODES or (status is not None and status >= 500),
            status=status,
            request_id=metadata.get("RequestId", ""),
        )
    # Refused, timed out, or closed before any answer (the call may or may not have happened: the same
    # client token makes the next attempt safe either way).
    if isinstance(exc, ConnectionError | HTTPClientError):
        return AwsError(code="ConnectionError", message=f"Could not reach AWS: {exc}", retryable=True)
    return AwsError(code=type(exc).__name__, message=str(exc), retryable=False)


# --- ssm-incidents -----------------------------------------------------------------------------------


def start_incident(request: dict[str, Any]) -> StartIncidentResult:
    """Call StartIncident with a complete request (its clientToken included) and return the record ARN."""
    try:
        response = _client("ssm-incidents").start_incident(**request)
    except (ClientError, BotoCoreError, ratelimit.RateLimitBusy, ratelimit.RateLimiterUnavailable) as exc:
        raise _translate(exc) from exc
    return StartIncidentResult(
        incident_record_arn=response["incidentRecordArn"],
        request_id=response.get("ResponseMetadata", {}).get("RequestId", ""),
    )


# Reading an incident: each call goes through _reader() and so counts against the read budget.
_READ_ERRORS = (ClientError, BotoCoreError, ratelimit.RateLimitBusy, ratelimit.RateLimiterUnavailable)


def get_incident_record(arn: str) -> dict[str, Any]:
    """GetIncidentRecord's incidentRecord (timestamps as aware datetimes, as botocore parses them)."""
    try:
        return _reader().get_incident_record(arn=arn)["incidentRecord"]
    except _READ_ERRORS as exc:
        raise _translate(exc) from exc


def list_related_items(arn: str, *, max_pages: int = 5) -> list[dict[str, Any]]:
    """The incident's related items, every page up to `max_pages` of 100 (the portal's and everyone else's)."""
    items: list[dict[str, Any]] = []
    try:
        pages = (
            _reader()
            .get_paginator("list_related_items")
            .paginate(incidentRecordArn=arn, PaginationConfig={"PageSize": 100, "MaxItems": 100 * max_pages})
        )
        for page in pages:
            items.extend(page.get("relatedItems", []))
    except _READ_ERRORS as exc:
        raise _translate(exc) from exc
    return items


def list_timeline_events(arn: str, *, limit: int) -> tuple[list[dict[str, Any]], bool]:
    """The newest `limit` (at most 100) timeline events, newest first, in one call; and whether older ones exist."""
    try:
        response = _reader().list_timeline_events(
            incidentRecordArn=arn, sortBy="EVENT_TIME", sortOrder="DESCENDING", maxResults=min(limit, 100)
        )
    except _READ_ERRORS as exc:
        raise _translate(exc) from exc
    return response.get("eventSummaries", []), bool(response.get("nextToken"))


def get_timeline_event(arn: str, event_id: str) -> dict[str, Any]:
    """One timeline event with its eventData (ListTimelineEvents leaves the data out)."""
    try:
        return _reader().get_timeline_event(incidentRecordArn=arn, eventId=event_id)["event"]
    except _READ_ERRORS as exc:
        raise _translate(exc) from exc


def get_response_plan_engagements(arn: str) -> list[str]:
    """Who a response plan engages (contact ARNs), read within the read budget."""
    try:
        return _reader().get_response_plan(arn=arn).get("engagements", [])
    except _READ_ERRORS as exc:
        raise _translate(exc) from exc


def list_response_plans() -> Iterator[dict[str, Any]]:
    """Every response plan the caller can see, over all pages: {arn, name, displayName}."""
    try:
        paginator = _client("ssm-incidents").get_paginator("list_response_plans")
        for page in paginator.paginate():
            yield from page.get("responsePlanSummaries", [])
    except (ClientError, BotoCoreError) as exc:
        raise _translate(exc) from exc


def get_response_plan(arn: str) -> dict[str, Any]:
    try:
        response = _client("ssm-incidents").get_response_plan(arn=arn)
    except (ClientError, BotoCoreError) as exc:
        raise _translate(exc) from exc
    response.pop("ResponseMetadata", None)
    return response


# --- S3 ----------------------------------------------------------------------------------------------


def upload_attachment(*, bucket: str, key: str, body: IO[bytes], content_type: str) -> None:
    """Store an attachment privately, encrypted at rest."""
    try:
        _client("s3").upload_fileobj(
            body,
            bucket,
            key,
            ExtraArgs={"ContentType": content_type, "ServerSideEncryption": "AES256"},
        )
    except (ClientError, BotoCoreError) as exc:
        raise _translate(exc) from exc


def presigned_download_url(*, bucket: str, key: str, file_name: str, expires_in: int = 300) -> str:
    """A short-lived link to one attachment; the bucket itself stays private. Signed here, without a call to AWS:
    only a configuration error (no credentials, say) makes it fail."""
    try:
        return _client("s3").generate_presigned_url(
            "get_object",
            Params={
                "Bucket": bucket,
                "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{file_name}"',
            },
            ExpiresIn=expires_in,
        )
    except BotoCoreError as exc:
        raise _translate(exc) from exc


# --- The audit chain's published heads (a bucket with Object Lock) -----------------------------------


def put_write_once(*, bucket: str, key: str, body: bytes, retain_until: datetime, mode: str) -> bool:
    """Store an object that nobody can change or delete until `retain_until` (Object Lock, `mode` COMPLIANCE or
    GOVERNANCE), unless the key already exists. Returns False when it did: the same object is published once."""
    try:
        _client("s3").put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            # Written only if the key is new: a second writer cannot even add a newer version over it.
            IfNoneMatch="*",
            ObjectLockMode=mode,
            ObjectLockRetainUntilDate=retain_until,
            # S3 requires a checksum with an Object Lock retention.
            ChecksumAlgorithm="SHA256",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
            return False
        raise _translate(exc) from exc
    except BotoCoreError as exc:
        raise _translate(exc) from exc
    return True


def list_every_version(*, bucket: str, prefix: str) -> Iterator[str]:
    """The key of every stored version under `prefix`, current or not (a version hidden behind a delete marker or
    a newer version is still listed), over all pages."""
    try:
        paginator = _client("s3").get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for version in page.get("Versions", []):
                yield version["Key"]
    except (ClientError, BotoCoreError) as exc:
        raise _translate(exc) from exc


# --- Late attachments and health ---------------------------------------------------------


def add_related_item(*, incident_record_arn: str, item: dict[str, Any], client_token: str) -> None:
    """Add one related item to an open incident; the token makes a repeated call harmless."""
    try:
        _client("ssm-incidents").update_related_items(
            incidentRecordArn=incident_record_arn,
            relatedItemsUpdate={"itemToAdd": item},
            clientToken=client_token,
        )
    except (ClientError, BotoCoreError) as exc:
        raise _translate(exc) from exc


def update_incident_record(*, request: dict[str, Any]) -> None:
    """UpdateIncidentRecord with a complete request (arn, clientToken and the fields to change)."""
    try:
        _client("ssm-incidents").update_incident_record(**request)
    except (ClientError, BotoCoreError) as exc:
        raise _translate(exc) from exc


def create_timeline_event(*, request: dict[str, Any]) -> str:
    """CreateTimelineEvent with a complete request (its clientToken included); returns the event's id."""
    try:
        response = _client("ssm-incidents").create_timeline_event(**request)
    except (ClientError, BotoCoreError) as exc:
        raise _translate(exc) from exc
    return response["eventId"]


def ping(*, timeout: float) -> None:
    """The cheapest signed ssm-incidents call, with one short attempt: raises AwsError when AWS is unreachable."""
    with _clients_lock:
        key = f"ping:{timeout}"
        if key not in _clients:
            config = Config(
                connect_timeout=timeout, read_timeout=timeout, retries={"mode": "standard", "total_max_attempts": 1}
            )
            _clients[key] = boto3.session.Session().client(
                "ssm-incidents", config=config, region_name=settings.AWS_REGION or None
            )
            _observe(_clients[key])
        client = _clients[key]
    try:
        client.list_response_plans(maxResults=1)
    except (ClientError, BotoCoreError) as exc:
        raise _translate(exc) from exc

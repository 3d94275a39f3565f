"""An in-memory emulator of AWS Systems Manager Incident Manager (ssm-incidents, API 2018-05-10).

Two layers, both driven by botocore's own service model so they cannot drift from what clients send:

* ``RestJsonProtocol`` turns an HTTP request into ``(operation, params)`` using each operation's
  ``http.method``/``http.requestUri`` and each member's ``location``, and turns results and errors back
  into rest-json responses shaped by the output/error shapes.
* ``IncidentsEmulator`` holds the state (response plans, incident records, related items, timeline events,
  tags, idempotency tokens) behind one lock and implements the operations.

Behaviours AWS leaves undocumented are chosen here and listed in sandbox/README.md.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import unquote

import botocore.session
from botocore import xform_name
from botocore.model import NoShapeFoundError, OperationModel, ServiceModel, Shape

from .validation import validate

SERVICE_NAME = "ssm-incidents"
ACCOUNT_ID = "123456789012"
ARN_PREFIX = f"arn:aws:ssm-incidents::{ACCOUNT_ID}:"
# Who the sandbox pretends every caller is (the real service records the caller's STS identity).
CALLER_ARN = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/IncidentPortalSandboxRole/sandbox-session"
# Who a responder acting in the console is (the control API's /_sandbox/responder/... routes act as this person).
RESPONDER_ARN = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/IncidentResponder/responder-session"
# The timeline event types a caller may create: "Currently Incident Manager supports only the Custom Event and Note
# types" (CreateTimelineEvent's eventType in the API reference); the service writes its own types beside them.
CREATABLE_EVENT_TYPES = ("Custom Event", "Note")
# The source the service records for incidents started by hand (console, CLI, SDK without triggerDetails).
CUSTOM_SOURCE = "aws.ssm-incidents.custom"
# List* page size when the caller sends no maxResults. AWS does not document its default; a small one makes
# clients that forget to follow nextToken fail visibly in development.
DEFAULT_PAGE_SIZE = 25


@functools.cache
def service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model(SERVICE_NAME)


class ServiceError(Exception):
    """An error the service answers with; ``code`` names an error shape (e.g. ``ConflictException``)."""

    def __init__(self, code: str, message: str, **fields: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields


def not_found(resource_type: str, identifier: str) -> ServiceError:
    label = resource_type.replace("_", " ").lower()
    return ServiceError(
        "ResourceNotFoundException",
        f"The {label} {identifier} does not exist.",
        resourceIdentifier=identifier,
        resourceType=resource_type,
    )


def validation_error(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


# ---------------------------------------------------------------------------------------------------------
# Wire protocol
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class RestJsonProtocol:
    """rest-json request parsing, routing and response serialisation for one service model."""

    def __init__(self, model: ServiceModel):
        self.model = model
        self._routes: list[tuple[str, re.Pattern[str], OperationModel]] = []
        for name in model.operation_names:
            operation = model.operation_model(name)
            path_template = operation.http["requestUri"].split("?", 1)[0]
            self._routes.append((operation.http["method"], self._path_regex(path_template), operation))
        # Literal paths before templated ones, so "/tags/{arn}" can never shadow a fixed path.
        self._routes.sort(key=lambda route: "(?P<" in route[1].pattern)

    @staticmethod
    def _path_regex(template: str) -> re.Pattern[str]:
        regex = ""
        for part in re.split(r"(\{[^}]+\})", template):
            if part.startswith("{"):
                label = part[1:-1]
                # {name+} is a greedy label that may contain "/"; plain labels are one path segment.
                if label.endswith("+"):
                    regex += f"(?P<{label[:-1]}>.+)"
                else:
                    regex += f"(?P<{label}>[^/]+)"
            else:
                regex += re.escape(part)
        return re.compile(f"^{regex}/?$")

    def match(self, method: str, raw_path: str) -> tuple[OperationModel, dict[str, str]] | None:
        """Find the operation for METHOD + raw (still percent-encoded) path; returns it with URI labels."""
        for route_method, regex, operation in self._routes:
            if route_method != method:
                continue
            found = regex.match(raw_path)
            if found:
                return operation, {key: unquote(value) for key, value in found.groupdict().items()}
        return None

    # -- requests ------------------------------------------------------------------------------------------

    def parse_request(
        self,
        operation: OperationModel,
        uri_params: dict[str, str],
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> dict[str, Any]:
        """Collect the input members from wherever the model says they travel (member names as keys).

        Values are only converted from their wire spelling (query/header strings to numbers etc.); checking
        them against the model is ``validate``'s job, so a bad value produces a ValidationException that
        names the member instead of a parse failure.
        """
        shape = operation.input_shape
        if shape is None:
            return {}
        headers = {key.lower(): value for key, value in headers.items()}
        params: dict[str, Any] = {}
        body_members: dict[str, str] = {}  # wire name -> member name
        consumed_query: set[str] = set()
        payload_member = shape.serialization.get("payload")
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            wire_name = member.serialization.get("name", name)
            if location == "uri":
                if wire_name in uri_params:
                    params[name] = self._from_string(member, uri_params[wire_name])
            elif location == "querystring":
                if member.type_name == "map":
                    continue  # filled below from whatever the named members leave over
                consumed_query.add(wire_name)
                if wire_name in query:
                    if member.type_name == "list":
                        params[name] = [self._from_string(member.member, v) for v in query[wire_name]]
                    else:
                        params[name] = self._from_string(member, query[wire_name][0])
            elif location == "header":
                if member.type_name == "map":
                    prefix = wire_name.lower()
                    found = {k[len(prefix) :]: v for k, v in headers.items() if k.startswith(prefix)}
                    if found:
                        params[name] = found
                elif wire_name.lower() in headers:
                    params[name] = self._from_header(member, headers[wire_name.lower()])
            elif location is None and name != payload_member:
                body_members[wire_name] = name
        for name, member in shape.members.items():
            if member.serialization.get("location") == "querystring" and member.type_name == "map":
                leftover = {k: v for k, v in query.items() if k not in consumed_query}
                if leftover:
                    is_list = member.value.type_name == "list"
                    params[name] = {k: (v if is_list else v[0]) for k, v in leftover.items()}

        if payload_member:
            member = shape.members[payload_member]
            if body:
                if member.type_name == "structure":
                    params[payload_member] = self._json_body(body)
                elif member.type_name == "string":
                    params[payload_member] = body.decode("utf-8")
                else:
                    params[payload_member] = body
        elif body.strip():
            document = self._json_body(body)
            for wire_name, value in document.items():
                # Unknown wire names are kept under their own name so validation reports them.
                params[body_members.get(wire_name, wire_name)] = value
        return params

    @staticmethod
    def _json_body(body: bytes) -> dict[str, Any]:
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise validation_error(f"Could not parse the request body as JSON: {exc}") from None
        if not isinstance(document, dict):
            raise validation_error("The request body must be a JSON object.")
        return document

    @staticmethod
    def _from_string(shape: Shape, text: str) -> Any:
        kind = shape.type_name
        try:
            if kind in ("integer", "long"):
                return int(text)
            if kind in ("float", "double"):
                return float(text)
        except ValueError:
            return text
        if kind == "boolean" and text in ("true", "false"):
            return text == "true"
        return text

    def _from_header(self, shape: Shape, text: str) -> Any:
        if shape.type_name == "timestamp":
            # Header timestamps default to RFC 7231 HTTP dates.
            try:
                return parsedate_to_datetime(text).timestamp()
            except (TypeError, ValueError):
                return text
        if shape.type_name == "string" and shape.serialization.get("jsonvalue"):
            try:
                return json.loads(base64.b64decode(text))
            except (binascii.Error, ValueError):
                return text
        return self._from_string(shape, text)

    def validate(self, operation: OperationModel, params: dict[str, Any]) -> dict[str, Any]:
        if operation.input_shape is None:
            return {}
        return validate(operation.input_shape, params)

    # -- responses -----------------------------------------------------------------------------------------

    def serialize_response(self, operation: OperationModel, output: dict[str, Any], request_id: str) -> Response:
        status = operation.http.get("responseCode", 200)
        headers = {"x-amzn-RequestId": request_id}
        shape = operation.output_shape
        if shape is None:
            return Response(status, headers)
        body: dict[str, Any] = {}
        payload_member = shape.serialization.get("payload")
        self._check_output(shape, output)
        for name, value in output.items():
            if value is None:
                continue
            member = shape.members[name]
            location = member.serialization.get("location")
            wire_name = member.serialization.get("name", name)
            if location == "header":
                headers[wire_name] = self._to_header(member, value)
            elif location == "statusCode":
                status = int(value)
            elif name == payload_member:
                body = self._to_wire(member, value)
            else:
                body[wire_name] = self._to_wire(member, value)
        if status == 204 and not body:
            return Response(status, headers)
        headers["Content-Type"] = "application/json"
        return Response(status, headers, json.dumps(body).encode())

    def serialize_error(self, error: ServiceError, request_id: str) -> Response:
        try:
            shape = self.model.shape_for(error.code)
            status = shape.metadata["error"]["httpStatusCode"]
            extra = {
                name: self._to_wire(shape.members[name], value)
                for name, value in error.fields.items()
                if value is not None and name in shape.members
            }
        except (NoShapeFoundError, KeyError):  # an error code outside the model is served as a plain 400
            status, extra = 400, {}
        body = {"message": error.message, **extra}
        headers = {
            "x-amzn-RequestId": request_id,
            "x-amzn-ErrorType": error.code,
            "Content-Type": "application/json",
        }
        return Response(status, headers, json.dumps(body).encode())

    def _check_output(self, shape: Shape, value: dict[str, Any]) -> None:
        """Refuse to send an output the model would not allow -- that is a sandbox bug, surfaced as a 500."""
        unknown = set(value) - set(shape.members)
        missing = [name for name in shape.required_members if value.get(name) is None]
        if unknown or missing:
            raise RuntimeError(f"{shape.name}: unknown members {sorted(unknown)}, missing {missing}")

    def _to_wire(self, shape: Shape, value: Any) -> Any:
        kind = shape.type_name
        if kind == "structure":
            self._check_output(shape, value)
            return {
                shape.members[name].serialization.get("name", name): self._to_wire(shape.members[name], item)
                for name, item in value.items()
                if item is not None
            }
        if kind == "list":
            return [self._to_wire(shape.member, item) for item in value]
        if kind == "map":
            return {key: self._to_wire(shape.value, item) for key, item in value.items()}
        if kind == "timestamp":
            # rest-json bodies carry timestamps as epoch seconds; millisecond precision like AWS.
            return round(float(value), 3)
        return value

    @staticmethod
    def _to_header(shape: Shape, value: Any) -> str:
        if shape.type_name == "timestamp":
            return formatdate(float(value), usegmt=True)
        if shape.type_name == "boolean":
            return "true" if value else "false"
        return str(value)


# ---------------------------------------------------------------------------------------------------------
# State and operations
# ---------------------------------------------------------------------------------------------------------


def _paginate(items: list[Any], params: dict[str, Any], operation: str) -> tuple[list[Any], str | None]:
    """Page through a list that the caller has already sorted.

    The token is an opaque base64 offset bound to the operation; items inserted between pages can shift
    what the next page starts with, as with many AWS list APIs.
    """
    offset = 0
    token = params.get("nextToken")
    if token:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
            if decoded["op"] != operation:
                raise ValueError
            offset = int(decoded["offset"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise validation_error("The nextToken is not valid for this operation.") from None
    size = params.get("maxResults", DEFAULT_PAGE_SIZE)
    page = items[offset : offset + size]
    next_token = None
    if offset + size < len(items):
        next_token = base64.urlsafe_b64encode(json.dumps({"op": operation, "offset": offset + size}).encode()).decode()
    return page, next_token


def _fingerprint(params: dict[str, Any]) -> str:
    """What a clientToken is bound to: the request minus the token itself."""
    return json.dumps({k: v for k, v in params.items() if k != "clientToken"}, sort_keys=True, default=str)


class IncidentsEmulator:
    """In-memory ssm-incidents state. Every public method is safe to call from many threads."""

    def __init__(self, clock=time.time):
        self._clock = clock
        self._lock = threading.RLock()
        self._caller = CALLER_ARN  # who the operation running under the lock is performed by
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.plans: dict[str, dict[str, Any]] = {}  # arn -> GetResponsePlanOutput-shaped dict
            self.incidents: dict[str, dict[str, Any]] = {}  # arn -> IncidentRecord-shaped dict
            self.related_items: dict[str, list[dict[str, Any]]] = {}  # incident arn -> RelatedItem dicts
            self.timeline: dict[str, list[dict[str, Any]]] = {}  # incident arn -> TimelineEvent dicts
            self.tags: dict[str, dict[str, str]] = {}  # resource arn -> tags
            # (operation, clientToken) -> (request fingerprint, result, resource arn). Kept for the lifetime of
            # the process (or until reset): AWS does not document how long it remembers a token.
            self.tokens: dict[tuple[str, str], tuple[str, dict[str, Any], str | None]] = {}
            self._sequence = 0  # tie-breaker so records created in the same millisecond keep their order

    # -- dispatch ------------------------------------------------------------------------------------------

    def handle(self, operation: str, params: dict[str, Any], *, caller: str = CALLER_ARN) -> dict[str, Any]:
        """Run one validated operation as `caller` (an STS identity ARN); returns its output members or raises
        ServiceError."""
        handler = getattr(self, f"op_{xform_name(operation)}", None)
        if handler is None:
            raise validation_error(f"The operation {operation} is not implemented by the sandbox.")
        with self._lock:
            self._caller = caller
            try:
                return self._handle(operation, handler, params)
            finally:
                self._caller = CALLER_ARN

    def _handle(self, operation: str, handler, params: dict[str, Any]) -> dict[str, Any]:
        """handle()'s work, under its lock: a repeated clientToken answers as the first call did."""
        token = params.get("clientToken")
        key = (operation, token)
        if token is not None and key in self.tokens:
            fingerprint, result, resource = self.tokens[key]
            if fingerprint != _fingerprint(params):
                raise ServiceError(
                    "ConflictException",
                    f"The clientToken {token} was already used for a {operation} request with different parameters.",
                    resourceIdentifier=resource,
                    resourceType=self._resource_type(resource),
                )
            return copy.deepcopy(result)
        result = handler(copy.deepcopy(params))
        if token is not None:
            resource = result.get("incidentRecordArn") or result.get("arn") or params.get("arn")
            resource = resource or params.get("incidentRecordArn")
            self.tokens[(operation, token)] = (_fingerprint(params), copy.deepcopy(result), resource)
        return result

    @staticmethod
    def _resource_type(arn: str | None) -> str | None:
        if arn and ":response-plan/" in arn:
            return "RESPONSE_PLAN"
        if arn and ":incident-record/" in arn:
            return "INCIDENT_RECORD"
        return None

    def _now(self) -> float:
        return round(self._clock(), 3)

    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    def _plan(self, arn: str) -> dict[str, Any]:
        plan = self.plans.get(arn)
        if plan is None:
            raise not_found("RESPONSE_PLAN", arn)
        return plan

    def _incident(self, arn: str) -> dict[str, Any]:
        record = self.incidents.get(arn)
        if record is None:
            raise not_found("INCIDENT_RECORD", arn)
        return record

    def _add_event(self, incident_arn: str, event_type: str, data: dict[str, Any], references=None) -> None:
        now = self._now()
        event = {
            "eventId": str(uuid.uuid4()),
            "eventTime": now,
            "eventType": event_type,
            "eventUpdatedTime": now,
            "incidentRecordArn": incident_arn,
            "eventData": json.dumps(data),
        }
        if references:
            event["eventReferences"] = references
        self.timeline.setdefault(incident_arn, []).append(event)

    # -- response plans ------------------------------------------------------------------------------------

    def op_create_response_plan(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = f"{ARN_PREFIX}response-plan/{params['name']}"
        if arn in self.plans:
            raise ServiceError(
                "ConflictException",
                f"A response plan named {params['name']} already exists.",
                resourceIdentifier=arn,
                resourceType="RESPONSE_PLAN",
            )
        plan = {"arn": arn}
        for name in (
            "name",
            "displayName",
            "incidentTemplate",
            "chatChannel",
            "engagements",
            "actions",
            "integrations",
        ):
            if name in params:
                plan[name] = params[name]
        self.plans[arn] = plan
        if params.get("tags"):
            self.tags[arn] = dict(params["tags"])
        return {"arn": arn}

    def op_get_response_plan(self, params: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(self._plan(params["arn"]))

    def op_list_response_plans(self, params: dict[str, Any]) -> dict[str, Any]:
        plans = sorted(self.plans.values(), key=lambda plan: plan["name"])
        page, next_token = _paginate(plans, params, "ListResponsePlans")
        summaries = [{key: plan[key] for key in ("arn", "name", "displayName") if key in plan} for plan in page]
        return {"responsePlanSummaries": summaries, "nextToken": next_token}

    def op_update_response_plan(self, params: dict[str, Any]) -> dict[str, Any]:
        plan = self._plan(params["arn"])
        template = plan["incidentTemplate"]
        renamed = {
            "incidentTemplateTitle": "title",
            "incidentTemplateImpact": "impact",
            "incidentTemplateSummary": "summary",
            "incidentTemplateDedupeString": "dedupeString",
            "incidentTemplateNotificationTargets": "notificationTargets",
            "incidentTemplateTags": "incidentTags",
        }
        for name, template_name in renamed.items():
            if name in params:
                value = params[name]
                # An empty string/list/map clears the optional template field.
                if value in ("", [], {}) and template_name not in ("title",):
                    template.pop(template_name, None)
                else:
                    template[template_name] = value
        for name in ("displayName", "engagements", "actions", "integrations"):
            if name in params:
                plan[name] = params[name]
        if "chatChannel" in params:
            if "empty" in params["chatChannel"]:
                plan.pop("chatChannel", None)
            else:
                plan["chatChannel"] = params["chatChannel"]
        return {}

    def op_delete_response_plan(self, params: dict[str, Any]) -> dict[str, Any]:
        # The model declares no ResourceNotFoundException here: deleting an unknown plan succeeds.
        self.plans.pop(params["arn"], None)
        self.tags.pop(params["arn"], None)
        return {}

    # -- incident records ----------------------------------------------------------------------------------

    def op_start_incident(self, params: dict[str, Any]) -> dict[str, Any]:
        plan = self._plan(params["responsePlanArn"])
        template = plan["incidentTemplate"]
        for item in params.get("relatedItems", []):
            if "generatedId" in item:
                raise validation_error(
                    "generatedId is assigned by the service and must not be sent with StartIncident."
                )

        dedupe = template.get("dedupeString", "")
        if dedupe:
            for record in self.incidents.values():
                if record["status"] == "OPEN" and record["dedupeString"] == dedupe:
                    # Folded into the open incident: its ARN comes back, nothing new is created, and the
                    # request's related items are not merged (AWS does not document either way).
                    return {"incidentRecordArn": record["arn"]}

        now = self._now()
        arn = f"{ARN_PREFIX}incident-record/{plan['name']}/{uuid.uuid4()}"
        trigger = params.get("triggerDetails") or {}
        source = {"createdBy": self._caller, "source": trigger.get("source", CUSTOM_SOURCE)}
        if trigger.get("triggerArn"):
            source["resourceArn"] = trigger["triggerArn"]
        record = {
            "arn": arn,
            "title": params.get("title", template["title"]),
            "impact": params.get("impact", template["impact"]),
            "status": "OPEN",
            "summary": template.get("summary"),
            "dedupeString": dedupe,
            "creationTime": now,
            "lastModifiedTime": now,
            "lastModifiedBy": self._caller,
            "incidentRecordSource": source,
            "notificationTargets": copy.deepcopy(template.get("notificationTargets")),
            "chatChannel": copy.deepcopy(plan.get("chatChannel")),
            "automationExecutions": [],
        }
        self.incidents[arn] = {k: v for k, v in record.items() if v is not None}
        self.incidents[arn]["_sequence"] = self._next_sequence()
        self.related_items[arn] = [self._new_related_item(item) for item in params.get("relatedItems", [])]
        if template.get("incidentTags"):
            self.tags[arn] = dict(template["incidentTags"])
        self._add_event(arn, "SSM Incident Record Update", {"action": "create", "title": record["title"]})
        return {"incidentRecordArn": arn}

    @staticmethod
    def _new_related_item(item: dict[str, Any]) -> dict[str, Any]:
        stored = copy.deepcopy(item)
        stored["generatedId"] = f"related-item/{item['identifier']['type']}/{uuid.uuid4().hex.upper()}"
        return stored

    @staticmethod
    def _public(record: dict[str, Any]) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in record.items() if not k.startswith("_")}

    def op_get_incident_record(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"incidentRecord": self._public(self._incident(params["arn"]))}

    def op_list_incident_records(self, params: dict[str, Any]) -> dict[str, Any]:
        predicates = [self._filter_predicate(item) for item in params.get("filters", [])]
        records = [r for r in self.incidents.values() if all(matches(r) for matches in predicates)]
        # Newest first, like the console.
        records.sort(key=lambda r: (r["creationTime"], r["_sequence"]), reverse=True)
        page, next_token = _paginate(records, params, "ListIncidentRecords")
        keys = ("arn", "creationTime", "impact", "incidentRecordSource", "resolvedTime", "status", "title")
        summaries = [{k: copy.deepcopy(r[k]) for k in keys if k in r} for r in page]
        return {"incidentRecordSummaries": summaries, "nextToken": next_token}

    @staticmethod
    def _filter_predicate(item: dict[str, Any]):
        """One ListIncidentRecords filter as a predicate; filters are ANDed. Checked even when nothing is stored."""
        key, condition = item["key"], item["condition"]
        if key in ("creationTime", "resolvedTime"):
            if "before" not in condition and "after" not in condition:
                raise validation_error(f"Filter '{key}' takes a 'before' or 'after' condition.")

            def in_range(record: dict[str, Any]) -> bool:
                value = record.get(key)
                if value is None:
                    return False
                return ("before" not in condition or value < condition["before"]) and (
                    "after" not in condition or value > condition["after"]
                )

            return in_range
        if key in ("impact", "status", "createdBy"):
            kind = "integerValues" if key == "impact" else "stringValues"
            wanted = (condition.get("equals") or {}).get(kind)
            if wanted is None:
                raise validation_error(f"Filter '{key}' takes an 'equals' condition with {kind}.")

            def equals(record: dict[str, Any]) -> bool:
                actual = record["incidentRecordSource"]["createdBy"] if key == "createdBy" else record[key]
                return actual in wanted

            return equals
        raise validation_error(
            f"Unsupported filter key '{key}'; use creationTime, resolvedTime, impact, status or createdBy."
        )

    def op_update_incident_record(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self._incident(params["arn"])
        changed: dict[str, Any] = {}
        for name in ("title", "summary", "impact", "notificationTargets"):
            if name in params:
                record[name] = params[name]
                changed[name] = params[name]
        if "chatChannel" in params:
            if "empty" in params["chatChannel"]:
                record.pop("chatChannel", None)
            else:
                record["chatChannel"] = params["chatChannel"]
            changed["chatChannel"] = params["chatChannel"]
        now = self._now()
        if "status" in params and params["status"] != record["status"]:
            record["status"] = params["status"]
            changed["status"] = params["status"]
            if params["status"] == "RESOLVED":
                record["resolvedTime"] = now
            else:
                record.pop("resolvedTime", None)
        record["lastModifiedTime"] = now
        record["lastModifiedBy"] = self._caller
        self._add_event(record["arn"], "SSM Incident Record Update", {"action": "update", "changed": changed})
        return {}

    def op_delete_incident_record(self, params: dict[str, Any]) -> dict[str, Any]:
        # No ResourceNotFoundException in the model: deleting an unknown record succeeds.
        arn = params["arn"]
        for store in (self.incidents, self.related_items, self.timeline, self.tags):
            store.pop(arn, None)
        return {}

    # -- related items -------------------------------------------------------------------------------------

    def op_list_related_items(self, params: dict[str, Any]) -> dict[str, Any]:
        # The model lists no ResourceNotFoundException for this operation; the sandbox still answers an
        # unknown incident with one (404), because an empty list would hide a wrong ARN.
        arn = params["incidentRecordArn"]
        self._incident(arn)
        page, next_token = _paginate(self.related_items[arn], params, "ListRelatedItems")
        return {"relatedItems": copy.deepcopy(page), "nextToken": next_token}

    def op_update_related_items(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["incidentRecordArn"]
        record = self._incident(arn)
        items = self.related_items[arn]
        update = params["relatedItemsUpdate"]
        if "itemToAdd" in update:
            new = update["itemToAdd"]
            if "generatedId" in new:
                raise validation_error("generatedId is assigned by the service and must not be sent.")
            existing = next((i for i in items if i["identifier"] == new["identifier"]), None)
            if existing is not None:
                # Adding an identifier that is already there only refreshes its title (idempotent add).
                if "title" in new:
                    existing["title"] = new["title"]
                stored = existing
            else:
                stored = self._new_related_item(new)
                items.append(stored)
            self._add_event(
                arn,
                "SSM Related Item",
                {"action": "add", "identifier": new["identifier"]},
                [{"relatedItemId": stored["generatedId"]}],
            )
        else:
            identifier = update["itemToRemove"]
            remaining = [i for i in items if i["identifier"] != identifier]
            if len(remaining) == len(items):
                raise ServiceError(
                    "ResourceNotFoundException",
                    f"The incident record {arn} has no related item {json.dumps(identifier)}.",
                    resourceIdentifier=arn,
                    resourceType="INCIDENT_RECORD",
                )
            self.related_items[arn] = remaining
            self._add_event(arn, "SSM Related Item", {"action": "remove", "identifier": identifier})
        record["lastModifiedTime"] = self._now()
        record["lastModifiedBy"] = self._caller
        return {}

    # -- timeline ------------------------------------------------------------------------------------------

    def op_list_timeline_events(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["incidentRecordArn"]
        self._incident(arn)
        predicates = [self._event_predicate(item) for item in params.get("filters", [])]
        # Events of the same instant keep the order they were written in (newest last, or first when descending).
        ordered = sorted(enumerate(self.timeline.get(arn, [])), key=lambda pair: (pair[1]["eventTime"], pair[0]))
        if params.get("sortOrder") == "DESCENDING":
            ordered.reverse()
        events = [event for _, event in ordered if all(matches(event) for matches in predicates)]
        page, next_token = _paginate(events, params, "ListTimelineEvents")
        summaries = [{k: copy.deepcopy(v) for k, v in e.items() if k != "eventData"} for e in page]
        return {"eventSummaries": summaries, "nextToken": next_token}

    @staticmethod
    def _event_predicate(item: dict[str, Any]):
        """One ListTimelineEvents filter; the API reference names the keys eventTime, eventType and eventReference.
        Filters are ANDed; the values of one filter are ORed."""
        key, condition = item["key"], item["condition"]
        if key == "eventTime":
            if "before" not in condition and "after" not in condition:
                raise validation_error("Filter 'eventTime' takes a 'before' or 'after' condition.")
            return lambda event: (
                ("before" not in condition or event["eventTime"] < condition["before"])
                and ("after" not in condition or event["eventTime"] > condition["after"])
            )
        if key in ("eventType", "eventReference"):
            wanted = (condition.get("equals") or {}).get("stringValues")
            if wanted is None:
                raise validation_error(f"Filter '{key}' takes an 'equals' condition with stringValues.")
            if key == "eventType":
                return lambda event: event["eventType"] in wanted
            return lambda event: any(
                value in wanted for reference in event.get("eventReferences", []) for value in reference.values()
            )
        raise validation_error(f"Unsupported filter key '{key}'; use eventTime, eventType or eventReference.")

    def op_get_timeline_event(self, params: dict[str, Any]) -> dict[str, Any]:
        for event in self.timeline.get(params["incidentRecordArn"], []):
            if event["eventId"] == params["eventId"]:
                return {"event": copy.deepcopy(event)}
        raise not_found("TIMELINE_EVENT", params["eventId"])

    def op_create_timeline_event(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["incidentRecordArn"]
        self._incident(arn)
        if params["eventType"] not in CREATABLE_EVENT_TYPES:
            raise validation_error(
                f"Value '{params['eventType']}' at 'eventType' failed to satisfy constraint: you can create timeline "
                f"events of type {' and '.join(CREATABLE_EVENT_TYPES)} only."
            )
        event = {
            "eventId": str(uuid.uuid4()),
            "eventTime": params["eventTime"],
            "eventType": params["eventType"],
            "eventUpdatedTime": self._now(),
            "incidentRecordArn": arn,
            "eventData": params["eventData"],
        }
        if params.get("eventReferences"):
            event["eventReferences"] = params["eventReferences"]
        self.timeline.setdefault(arn, []).append(event)
        return {"eventId": event["eventId"], "incidentRecordArn": arn}

    # -- tags ----------------------------------------------------------------------------------------------

    def _taggable(self, arn: str) -> None:
        if arn not in self.plans and arn not in self.incidents:
            raise not_found(self._resource_type(arn) or "RESPONSE_PLAN", arn)

    def op_list_tags_for_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        self._taggable(params["resourceArn"])
        return {"tags": dict(self.tags.get(params["resourceArn"], {}))}

    def op_tag_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        self._taggable(params["resourceArn"])
        self.tags.setdefault(params["resourceArn"], {}).update(params["tags"])
        return {}

    def op_untag_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        self._taggable(params["resourceArn"])
        tags = self.tags.get(params["resourceArn"], {})
        for key in params["tagKeys"]:
            tags.pop(key, None)
        return {}

    # -- inspection helpers for tests ----------------------------------------------------------------------

    def incident_records(self) -> list[dict[str, Any]]:
        """All incident records, oldest first (a snapshot, safe to mutate)."""
        with self._lock:
            records = sorted(self.incidents.values(), key=lambda r: r["_sequence"])
            return [self._public(r) for r in records]

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-friendly data (served by GET /_sandbox/state)."""
        with self._lock:
            return {
                "responsePlans": copy.deepcopy(sorted(self.plans.values(), key=lambda p: p["name"])),
                "incidentRecords": [
                    {
                        **r,
                        "relatedItems": copy.deepcopy(self.related_items.get(r["arn"], [])),
                        "tags": dict(self.tags.get(r["arn"], {})),
                    }
                    for r in self.incident_records()
                ],
            }

"""A responder working an incident in the AWS console: the changes the portal did not make.

Tests (and `make run` demos) use it to see that the portal shows what happened outside it. Each action goes through
the emulator's own operations, validated against botocore's model like any request, and is recorded as made by
``RESPONDER_ARN`` (``lastModifiedBy``), not by the portal's role. None of it enters the call log: that log is what the
portal asked AWS for.

Served as ``POST /_sandbox/responder/<action>`` (sandbox/README.md) and as ``Sandbox.responder`` from Python.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from .ssm_incidents import RESPONDER_ARN, IncidentsEmulator, not_found, service_model, validation_error
from .validation import validate


class UnknownAction(Exception):
    """No responder action of that name."""


class Responder:
    def __init__(self, emulator: IncidentsEmulator):
        self.emulator = emulator

    def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        shape = service_model().operation_model(operation).input_shape
        return self.emulator.handle(operation, validate(shape, params), caller=RESPONDER_ARN)

    def add_timeline_event(
        self, arn: str, text: str, *, event_type: str = "Custom Event", event_time: float | None = None
    ) -> str:
        """A note on the timeline, as the console writes one; returns the event's id."""
        result = self._call(
            "CreateTimelineEvent",
            {
                "incidentRecordArn": arn,
                "eventTime": event_time if event_time is not None else time.time(),
                "eventType": event_type,
                "eventData": json.dumps({"content": text}) if event_type == "Custom Event" else text,
                "clientToken": str(uuid.uuid4()),
            },
        )
        return result["eventId"]

    def update(
        self, arn: str, *, title: str | None = None, impact: int | None = None, summary: str | None = None
    ) -> None:
        """Change the title, impact or summary (what is not given stays)."""
        changes = {name: value for name, value in (("title", title), ("impact", impact), ("summary", summary))}
        params = {name: value for name, value in changes.items() if value is not None}
        if not params:
            raise validation_error("Give at least one of title, impact and summary.")
        self._call("UpdateIncidentRecord", {"arn": arn, **params, "clientToken": str(uuid.uuid4())})

    def add_related_item(
        self, arn: str, *, url: str | None = None, resource_arn: str | None = None, title: str = ""
    ) -> None:
        """A link (OTHER + url) or an involved resource (INVOLVED_RESOURCE + arn)."""
        if (url is None) == (resource_arn is None):
            raise validation_error("Give exactly one of url and resource_arn.")
        identifier = (
            {"type": "OTHER", "value": {"url": url}}
            if url is not None
            else {"type": "INVOLVED_RESOURCE", "value": {"arn": resource_arn}}
        )
        item: dict[str, Any] = {"identifier": identifier}
        if title:
            item["title"] = title
        self._call(
            "UpdateRelatedItems",
            {"incidentRecordArn": arn, "relatedItemsUpdate": {"itemToAdd": item}, "clientToken": str(uuid.uuid4())},
        )

    def resolve(self, arn: str) -> None:
        self._call("UpdateIncidentRecord", {"arn": arn, "status": "RESOLVED", "clientToken": str(uuid.uuid4())})

    def start_runbook(self, arn: str, execution_arn: str | None = None) -> str:
        """A runbook (SSM Automation) execution started for the incident, as a plan's action or a responder does;
        no ssm-incidents operation starts one, so the record is changed directly. Returns the execution's ARN."""
        execution = execution_arn or f"arn:aws:ssm:us-east-1:123456789012:automation-execution/{uuid.uuid4()}"
        with self.emulator._lock:
            record = self.emulator.incidents.get(arn)
            if record is None:
                raise not_found("INCIDENT_RECORD", arn)
            record.setdefault("automationExecutions", []).append({"ssmExecutionArn": execution})
        return execution

    def act(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """One control-API request: POST /_sandbox/responder/<action> with a JSON body."""
        arn = body.get("arn")
        if not isinstance(arn, str):
            raise validation_error("'arn' (the incident record's ARN) is required.")
        if action == "timeline-event":
            event_id = self.add_timeline_event(
                arn,
                body.get("text", ""),
                event_type=body.get("eventType", "Custom Event"),
                event_time=body.get("eventTime"),
            )
            return {"eventId": event_id}
        if action == "update":
            self.update(arn, title=body.get("title"), impact=body.get("impact"), summary=body.get("summary"))
        elif action == "related-item":
            self.add_related_item(
                arn, url=body.get("url"), resource_arn=body.get("resourceArn"), title=body.get("title", "")
            )
        elif action == "resolve":
            self.resolve(arn)
        elif action == "runbook":
            return {"ssmExecutionArn": self.start_runbook(arn, body.get("ssmExecutionArn"))}
        else:
            raise UnknownAction(action)
        return {"ok": True}

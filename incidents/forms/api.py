"""The API's StartIncident request, checked with the declare form's fields, rules and messages."""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from .. import validators
from ..models import RelatedItem, ResponsePlan
from ..selectors.plans import response_plans_available_to
from ..services.attachments import RelatedItemInput
from .declare import DeclarationForm, RelatedItemForm, RelatedItemFormSet

# The item types a script may send, and the value member each one carries. Files need the web form (upload).
API_RELATED_ITEM_TYPES = {
    "OTHER": (RelatedItem.Kind.LINK, "url"),
    "INVOLVED_RESOURCE": (RelatedItem.Kind.RESOURCE, "arn"),
}

ITEM_TYPE_NOT_SUPPORTED = (
    "Send OTHER (a link, in value.url) or INVOLVED_RESOURCE (an AWS resource, in value.arn); "
    "files can be attached in the web form only."
)

TIMESTAMP_FORMAT = "Give an ISO 8601 date and time with a time zone, such as 2026-11-29T16:30:00Z."

TRIGGER_TIMESTAMP_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)

# Senders' clocks drift; a trigger a little in the future is plausible, one days ahead is a mistake.
TRIGGER_TIMESTAMP_MAX_SKEW = timedelta(days=1)


@dataclass(frozen=True)
class StartIncidentInput:
    response_plan: ResponsePlan
    title: str
    impact: int | None
    related_items: list[RelatedItemInput]
    trigger_details: dict[str, str] | None
    # The caller's clientToken / Idempotency-Key, scoped to the caller so that two callers never collide.
    idempotency_key: str | None
    fingerprint: str


class StartIncidentRequestForm:
    """A decoded JSON StartIncident request, checked with the declare form's own fields, rules and messages.

    Used like a Django form: `is_valid()`, then `errors` (one message per field path, such as
    `relatedItems[2].identifier.value.url`) or `cleaned`. `null` means the same as leaving an optional field out.
    """

    FIELDS = ("responsePlanArn", "title", "impact", "relatedItems", "clientToken", "triggerDetails")
    TRIGGER_FIELDS = ("source", "timestamp", "rawData", "triggerArn")

    def __init__(self, data: Any, *, user, idempotency_header: str | None = None):
        self.data = data
        self.user = user
        self.idempotency_header = idempotency_header
        self.errors: dict[str, str] = {}
        self.cleaned: StartIncidentInput | None = None

    def is_valid(self) -> bool:
        if self.cleaned is None and not self.errors:
            self._clean()
        return not self.errors

    # Structure ---------------------------------------------------------------------------------------

    def _error(self, path: str, message: str) -> None:
        self.errors.setdefault(path, message)

    def _object(self, value: Any, path: str, *, allowed: tuple[str, ...], required: tuple[str, ...] = ()):
        if not isinstance(value, dict):
            self._error(path or "body", "Must be a JSON object.")
            return None
        for key in value:
            if key not in allowed:
                self._error(_join(path, key), f"Unknown field. Allowed here: {', '.join(allowed)}.")
        for key in required:
            if value.get(key) is None:
                self._error(_join(path, key), "This field is required.")
        return value

    def _string(self, value: Any, path: str) -> str | None:
        if not isinstance(value, str):
            self._error(path, "Must be a string.")
            return None
        if "\x00" in value:
            # No field may hold one (PostgreSQL's text cannot), free text such as rawData included.
            self._error(path, "Null characters are not allowed.")
            return None
        return value

    def _check(self, check, value: Any, path: str) -> Any:
        """Run a shared validator or a declare-form field's `clean`; on failure, record its message at `path`."""
        try:
            result = check(value)
        except ValidationError as exc:
            self._error(path, " ".join(exc.messages))
            return None
        return value if result is None else result

    # Fields ------------------------------------------------------------------------------------------

    def _clean(self) -> None:
        data = self._object(self.data, "", allowed=self.FIELDS, required=("responsePlanArn",))
        if data is None:
            return
        plan = self._clean_plan(data.get("responsePlanArn"))
        title = self._clean_title(data.get("title"))
        impact = self._clean_impact(data.get("impact"))
        items = self._clean_items(data.get("relatedItems"))
        trigger = self._clean_trigger(data.get("triggerDetails"))
        key = self._clean_idempotency_key(data.get("clientToken"))
        if self.errors or plan is None:
            return
        canonical = {
            "responsePlanArn": plan.arn,
            "title": title,
            "impact": impact,
            "relatedItems": [[item.kind, item.title, item.value] for item in items],
            "triggerDetails": trigger,
        }
        fingerprint = hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()
        self.cleaned = StartIncidentInput(
            response_plan=plan,
            title=title,
            impact=impact,
            related_items=items,
            trigger_details=trigger,
            idempotency_key=key,
            fingerprint=fingerprint,
        )

    def _clean_plan(self, value: Any) -> ResponsePlan | None:
        if value is None or (arn := self._string(value, "responsePlanArn")) is None:
            return None
        if self._check(validators.validate_response_plan_arn, arn, "responsePlanArn") is None:
            return None
        plan = response_plans_available_to(user=self.user).filter(arn=arn).first()
        if plan is None:
            self._error(
                "responsePlanArn",
                "No response plan with this ARN is available to you (it may be hidden, deleted in AWS or not open "
                "to your team); GET /api/responsePlans lists the ones you may use.",
            )
        return plan

    def _clean_title(self, value: Any) -> str:
        if value is None or (title := self._string(value, "title")) is None:
            return ""
        return self._check(DeclarationForm.base_fields["title"].clean, title, "title") or ""

    def _clean_impact(self, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self._error("impact", "Must be a whole number from 1 (critical) to 5 (no impact).")
            return None
        return self._check(DeclarationForm.base_fields["impact"].clean, str(value), "impact")

    def _clean_items(self, value: Any) -> list[RelatedItemInput]:
        if value is None:
            return []
        if not isinstance(value, list):
            self._error("relatedItems", "Must be a list of related items.")
            return []
        if len(value) > validators.RELATED_ITEMS_MAX:
            self._error("relatedItems", RelatedItemFormSet.default_error_messages["too_many_forms"])
            return []
        items = []
        for index, raw in enumerate(value):
            item = self._clean_item(raw, f"relatedItems[{index}]")
            if item is not None:
                items.append(item)
        return items

    def _clean_item(self, raw: Any, path: str) -> RelatedItemInput | None:
        item = self._object(raw, path, allowed=("identifier", "title", "generatedId"), required=("identifier",))
        if item is None:
            return None
        if "generatedId" in item:
            self._error(f"{path}.generatedId", "Incident Manager assigns generatedId itself; leave it out.")
        title = ""
        if item.get("title") is not None and (text := self._string(item["title"], f"{path}.title")) is not None:
            title = self._check(RelatedItemForm.base_fields["title"].clean, text, f"{path}.title") or ""
        identifier = item.get("identifier")
        if identifier is None:
            return None
        path = f"{path}.identifier"
        identifier = self._object(identifier, path, allowed=("type", "value"), required=("type", "value"))
        if identifier is None or identifier.get("type") is None:
            return None
        item_type = self._string(identifier["type"], f"{path}.type")
        if item_type is None:
            return None
        if item_type not in API_RELATED_ITEM_TYPES:
            self._error(f"{path}.type", f"“{item_type}” cannot be sent here. {ITEM_TYPE_NOT_SUPPORTED}")
            return None
        kind, member = API_RELATED_ITEM_TYPES[item_type]
        value = identifier.get("value")
        if value is None or self._object(value, f"{path}.value", allowed=(member,), required=(member,)) is None:
            return None
        member_path = f"{path}.value.{member}"
        if value.get(member) is None or (text := self._string(value[member], member_path)) is None:
            return None
        text = text.strip()
        if not text:
            self._error(member_path, "This field is required.")
            return None
        try:
            validators.validate_related_item(kind=kind, value=text, title=title)
        except ValidationError as exc:
            for part, errors in exc.error_dict.items():
                self._error(
                    f"{path.removesuffix('.identifier')}.title" if part == "title" else member_path,
                    " ".join(message for error in errors for message in error.messages),
                )
            return None
        return RelatedItemInput(kind=kind, title=title, value=text)

    def _clean_trigger(self, value: Any) -> dict[str, str] | None:
        if value is None:
            return None
        path = "triggerDetails"
        trigger = self._object(value, path, allowed=self.TRIGGER_FIELDS, required=("source", "timestamp"))
        if trigger is None:
            return None
        cleaned: dict[str, str] = {}
        checks = {
            "source": validators.validate_trigger_source,
            "timestamp": _validate_trigger_timestamp,
            "rawData": validators.validate_trigger_raw_data,
            "triggerArn": validators.validate_trigger_arn,
        }
        for name, check in checks.items():
            if trigger.get(name) is None or (text := self._string(trigger[name], f"{path}.{name}")) is None:
                continue
            result = self._check(check, text, f"{path}.{name}")
            if result is not None:
                cleaned[name] = result
        return cleaned

    def _clean_idempotency_key(self, body_value: Any) -> str | None:
        body = header = None
        if body_value is not None and (body := self._string(body_value, "clientToken")) is not None:
            body = self._check(_validate_idempotency_key, body, "clientToken")
        if self.idempotency_header is not None:
            header = self._check(_validate_idempotency_key, self.idempotency_header, "Idempotency-Key")
        if body and header and body != header:
            self._error(
                "clientToken",
                "The Idempotency-Key header and clientToken differ; send one of them, or the same value in both.",
            )
        key = body or header
        if not key:
            return None
        # Keys are unique across callers in the database, so each is stored under its caller's id.
        return f"api:{self.user.pk}:{hashlib.sha256(key.encode()).hexdigest()}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _validate_idempotency_key(value: str) -> None:
    limit = validators.CLIENT_TOKEN_MAX_LENGTH
    if not 1 <= len(value) <= limit:
        raise ValidationError(f"Give 1 to {limit} characters, or leave it out (it has {len(value)}).")
    if not value.isascii() or not value.isprintable():
        raise ValidationError("Use printable ASCII characters only, such as a UUID.")


def _validate_trigger_timestamp(value: str) -> str:
    """The time in UTC (ISO 8601), as stored; RFC 3339 allows a lower-case t and z."""
    try:
        moment = datetime.fromisoformat(value.strip().upper())
    except ValueError:
        raise ValidationError(TIMESTAMP_FORMAT) from None
    if moment.tzinfo is None or "T" not in value.upper():
        raise ValidationError(TIMESTAMP_FORMAT)
    moment = moment.astimezone(UTC)
    if moment < TRIGGER_TIMESTAMP_EARLIEST:
        raise ValidationError("The trigger's time cannot be before 1970.")
    if moment > timezone.now() + TRIGGER_TIMESTAMP_MAX_SKEW:
        raise ValidationError("The trigger's time is more than a day in the future; check the sender's clock.")
    return moment.isoformat()

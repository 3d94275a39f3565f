"""What the API accepts, as pydantic models: they validate each request and generate the OpenAPI document, so the
two cannot drift. Every rule is the web form's own (`validators`, the declare form's fields), with
its wording; `validation_details()` reports each failure at its field path, such as
`relatedItems[2].identifier.value.url`."""

import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Self

from django.core.exceptions import ValidationError as DjangoValidationError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from .. import validators
from ..forms.declare import DeclarationForm
from ..models import RelatedItem as RelatedItemModel
from ..models import ResponsePlan
from ..selectors.plans import response_plans_available_to
from ..services.attachments import RelatedItemInput

REQUIRED = "This field is required."
ITEM_TYPE_NOT_SUPPORTED = (
    "Send OTHER (a link, in value.url) or INVOLVED_RESOURCE (an AWS resource, in value.arn); "
    "files can be attached in the web form only."
)
PLAN_NOT_AVAILABLE = (
    "No response plan with this ARN is available to you (it may be hidden, deleted in AWS or not open to your "
    "team); GET /api/responsePlans lists the ones you may use."
)
# pydantic's own checks of a JSON value's type, worded as the web form words them.
TYPE_MESSAGES = {
    "missing": REQUIRED,
    "string_type": "Must be a string.",
    "int_type": "Must be a whole number from 1 (critical) to 5 (no impact).",
    "bool_type": "Must be true or false.",
    "list_type": "Must be a list of related items.",
    "model_type": "Must be a JSON object.",
    "model_attributes_type": "Must be a JSON object.",
    "dict_type": "Must be a JSON object.",
}
ARN_LIMITS = {"maxLength": validators.ARN_MAX_LENGTH, "pattern": validators.ARN_RE.pattern}
ARN_SCHEMA = {"type": "string", **ARN_LIMITS}


def _invalid(message: str) -> PydanticCustomError:
    # The message travels in the context, so that braces in it are never read as a template.
    return PydanticCustomError("invalid", "{message}", {"message": message})


def errors_at(messages: dict[tuple[str, ...], str]) -> ValidationError:
    """Failures at places inside the model being validated; pydantic puts the model's own place in front."""
    return ValidationError.from_exception_data(
        "request", [InitErrorDetails(type=_invalid(text), loc=loc, input=None) for loc, text in messages.items()]
    )


def _checked(check: Callable[[Any], Any], value: Any) -> Any:
    """Run a shared rule (a validator or a form field's clean): its messages, its cleaned value."""
    try:
        result = check(value)
    except DjangoValidationError as exc:
        raise _invalid(" ".join(exc.messages)) from None
    return value if result is None else result


def rule(check: Callable[[Any], Any]) -> AfterValidator:
    return AfterValidator(lambda value: _checked(check, value))


def _no_null_characters(value: str) -> str:
    # No field may hold one (PostgreSQL's text cannot), free text such as rawData included.
    if "\x00" in value:
        raise _invalid("Null characters are not allowed.")
    # JSON's \ud800-\udfff escapes decode to lone surrogates when not written as a pair: no text can be stored or
    # sent with one (UTF-8 cannot encode it).
    if any("\ud800" <= character <= "\udfff" for character in value):
        raise _invalid("Invalid Unicode: a \\ud800–\\udfff escape must be one of a surrogate pair.")
    return value


def _required(value: str) -> str:
    if not value.strip():
        raise _invalid(REQUIRED)
    return value.strip()


Text = Annotated[StrictStr, AfterValidator(_no_null_characters)]


class Strict(BaseModel):
    """Unknown fields are refused by name, each with the fields allowed there; null is the same as leaving a field
    out (so a required one is reported as missing)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    REFUSED: ClassVar[dict[str, str]] = {}  # fields refused with a message of their own

    @model_validator(mode="before")
    @classmethod
    def _known_fields_only(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        allowed = [field.alias or name for name, field in cls.model_fields.items()]
        unknown: dict[tuple[str, ...], str] = {
            (key,): cls.REFUSED.get(key, f"Unknown field. Allowed here: {', '.join(allowed)}.")
            for key in data
            if key not in allowed
        }
        if unknown:
            raise errors_at(unknown)
        return {key: value for key, value in data.items() if value is not None}


# --- POST /api/startIncident ------------------------------------------------------------------------------


def _available_plan(value: Any, info: ValidationInfo) -> ResponsePlan:
    """The plan with this ARN among those the caller may use (the token's owner is request.user by now)."""
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", TYPE_MESSAGES["string_type"])
    _checked(validators.validate_response_plan_arn, _no_null_characters(value))
    user = (info.context or {})["request"].user
    plan = response_plans_available_to(user=user).filter(arn=value).first()
    if plan is None:
        raise _invalid(PLAN_NOT_AVAILABLE)
    return plan


AvailablePlan = Annotated[ResponsePlan, PlainValidator(_available_plan), WithJsonSchema(ARN_SCHEMA)]


class LinkValue(Strict):
    url: Annotated[Text, AfterValidator(_required)] = Field(
        description="An http:// or https:// address.",
        json_schema_extra={"maxLength": validators.URL_MAX_LENGTH, "format": "uri"},
    )


class LinkIdentifier(Strict):
    """An external link."""

    type: Literal["OTHER"]
    value: LinkValue


class ResourceValue(Strict):
    arn: Annotated[Text, AfterValidator(_required)] = Field(
        description="The resource's ARN.", json_schema_extra=ARN_LIMITS
    )


class ResourceIdentifier(Strict):
    """An AWS resource involved in the incident."""

    type: Literal["INVOLVED_RESOURCE"]
    value: ResourceValue


class RelatedItem(Strict):
    REFUSED = {"generatedId": "Incident Manager assigns generatedId itself; leave it out."}

    identifier: Annotated[LinkIdentifier | ResourceIdentifier, Field(discriminator="type")]
    title: Text | None = Field(
        None,
        description="What responders see for the item.",
        json_schema_extra={"maxLength": validators.RELATED_ITEM_TITLE_MAX_LENGTH},
    )

    @model_validator(mode="after")
    def _the_shared_rule(self) -> Self:
        """THE check of a related item, as the declare form and the service run it; each part at its field."""
        item = self.to_input()
        member = "url" if isinstance(self.identifier, LinkIdentifier) else "arn"
        try:
            validators.validate_related_item(kind=item.kind, value=item.value, title=item.title)
        except DjangoValidationError as exc:
            raise errors_at(
                {
                    ("title",) if part == "title" else ("identifier", "value", member): " ".join(
                        message for error in errors for message in error.messages
                    )
                    for part, errors in exc.error_dict.items()
                }
            ) from None
        return self

    def to_input(self) -> RelatedItemInput:
        if isinstance(self.identifier, LinkIdentifier):
            kind, value = RelatedItemModel.Kind.LINK, self.identifier.value.url
        else:
            kind, value = RelatedItemModel.Kind.RESOURCE, self.identifier.value.arn
        return RelatedItemInput(kind=kind, title=(self.title or "").strip(), value=value)


def at_most_items(value: Any) -> Any:
    # Counted before the items are checked one by one: 500 items get one message, not 500.
    if isinstance(value, list) and len(value) > validators.RELATED_ITEMS_MAX:
        raise _invalid(validators.MESSAGES["too_many_items"].format(limit=validators.RELATED_ITEMS_MAX))
    return value


class TriggerDetails(Strict):
    source: Annotated[Text, rule(validators.validate_trigger_source)] = Field(
        description="Who triggered it, reverse-DNS style (com.example.alerting); must not start with `aws.`.",
        json_schema_extra={"minLength": 1, "maxLength": validators.TRIGGER_SOURCE_MAX_LENGTH},
    )
    timestamp: Annotated[Text, rule(validators.validate_trigger_timestamp)] = Field(
        description="When it was triggered: ISO 8601 with a time zone, at most a day ahead.",
        json_schema_extra={"format": "date-time"},
    )
    raw_data: Annotated[Text, rule(validators.validate_trigger_raw_data)] | None = Field(
        None,
        alias="rawData",
        description="The trigger's raw data, e.g. the alarm's JSON.",
        json_schema_extra={"maxLength": validators.TRIGGER_RAW_DATA_MAX_LENGTH},
    )
    trigger_arn: Annotated[Text, rule(validators.validate_trigger_arn)] | None = Field(
        None,
        alias="triggerArn",
        description="The ARN of what triggered it, e.g. a CloudWatch alarm.",
        json_schema_extra=ARN_LIMITS,
    )

    @model_validator(mode="after")
    def _leaves_room_for_the_declarer(self) -> Self:
        try:
            validators.validate_trigger_fits(source=self.source, raw_data=self.raw_data or "")
        except DjangoValidationError as exc:
            raise errors_at({("rawData",): " ".join(exc.messages)}) from None
        return self


def _impact_start(value: str) -> str:
    """ISO 8601 with a zone, in the past and within PORTAL_IMPACT_START_MAX_DAYS, as the declare page checks it;
    in UTC."""
    return validators.validate_impact_started_at(validators.parse_timestamp(value)).isoformat()


ClientToken = Annotated[
    Text,
    rule(validators.validate_client_token),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": validators.CLIENT_TOKEN_MAX_LENGTH}),
]
Impact = Annotated[StrictInt, rule(lambda impact: DeclarationForm.base_fields["impact"].clean(str(impact)))]


class StartIncidentRequest(Strict):
    """The fields of AWS's StartIncident that a script may set."""

    response_plan: AvailablePlan = Field(
        alias="responsePlanArn",
        description="The ARN of the response plan that pre-defines summary, chat channels, SNS topics, runbooks, "
        "title and impact of the incident. It must be one of the plans `GET /api/responsePlans` lists for you.",
    )
    title: Annotated[Text, rule(DeclarationForm.base_fields["title"].clean)] | None = Field(
        None,
        description="Overwrites the response plan's title; leave out for the plan's.",
        json_schema_extra={"maxLength": validators.TITLE_MAX_LENGTH},
    )
    impact: Impact | None = Field(
        None,
        description="Overwrites the plan's impact: 1 critical (full application failure, many to all customers), "
        "2 high (partial failure, many customers), 3 medium (reduced service), 4 low (customers might not be "
        "impacted yet), 5 no impact (urgent action needed to avoid impact). Leave out for the plan's.",
        json_schema_extra={"minimum": 1, "maximum": 5},
    )
    related_items: Annotated[list[RelatedItem], BeforeValidator(at_most_items)] | None = Field(
        None,
        alias="relatedItems",
        description="Links and AWS resources for responders. Files can be attached in the web form only; "
        "`generatedId` is assigned by Incident Manager and refused here.",
        json_schema_extra={"maxItems": validators.RELATED_ITEMS_MAX},
    )
    client_token: ClientToken | None = Field(
        None,
        alias="clientToken",
        description="Makes the call idempotent, per caller: the same token with the same request returns the first "
        "declaration (200); with a different request, 409 CONFLICT. The `Idempotency-Key` header does the same; if "
        "both are sent they must be equal.",
    )
    trigger_details: TriggerDetails | None = Field(
        None,
        alias="triggerDetails",
        description="What caused the incident. AWS receives the timestamp and triggerArn as given; the source is "
        "always the portal's own, and rawData is the portal's JSON naming the declarer (the token's owner) and the "
        "declaration, with your source and rawData inside it as strings: "
        '`{"declaredBy", "declarationId", "declarationUrl", "caller": {"source", "rawData"}}`. Your source may not '
        "start with `aws.` nor be the portal's own.",
    )

    impact_started_at: Annotated[Text, rule(_impact_start)] | None = Field(
        None,
        alias="impactStartedAt",
        description="When customers began to be hurt, if before now: ISO 8601 with a time zone, in the past, at most "
        "PORTAL_IMPACT_START_MAX_DAYS (3) days back. Sent to AWS as the trigger's timestamp, so Incident Manager "
        "counts from it; stored in UTC. triggerDetails carries its own timestamp: send one or the other.",
        json_schema_extra={"format": "date-time"},
    )
    drill: StrictBool | None = Field(
        None,
        description="true: a drill, on a drill plan only (`GET /api/responsePlans` says which are); AWS receives the "
        "title with “[DRILL] ” in front. Left out or false: a real incident, on a plan that is not a drill plan.",
    )

    @model_validator(mode="after")
    def _one_start_and_the_right_plan(self) -> Self:
        """The same checks as the service, each at its field: one way of saying when it began; a drill on a drill
        plan and nothing else on one; a drill's title with room for the prefix."""
        messages: dict[tuple[str, ...], str] = {}
        if self.impact_started_at and self.trigger_details:
            messages[("impactStartedAt",)] = validators.IMPACT_START_AND_TRIGGER
        if self.response_plan.is_drill != bool(self.drill):
            messages[("responsePlanArn",)] = validators.DRILL_PLAN_ONLY if self.drill else validators.REAL_PLAN_ONLY
        if self.drill:
            try:
                validators.validate_title_length(self.title or "", drill=True)
            except DjangoValidationError as exc:
                messages[("title",)] = " ".join(exc.messages)
        if messages:
            raise errors_at(messages)
        return self

    def impact_start(self) -> datetime | None:
        return datetime.fromisoformat(self.impact_started_at) if self.impact_started_at else None

    def item_inputs(self) -> list[RelatedItemInput]:
        return [item.to_input() for item in self.related_items or []]

    def trigger(self) -> dict[str, str] | None:
        return self.trigger_details.model_dump(by_alias=True, exclude_none=True) if self.trigger_details else None

    def fingerprint(self) -> str:
        """A digest of what was asked for, so that a reused clientToken with other values is refused, not answered
        with an unrelated declaration. Spelling (field order, padding, explicit nulls) does not count."""
        canonical = {
            "responsePlanArn": self.response_plan.arn,
            "title": self.title or "",
            "impact": self.impact,
            "relatedItems": [[item.kind, item.title, item.value] for item in self.item_inputs()],
            "triggerDetails": self.trigger(),
        }
        # Only when sent, so that the digests of requests without them stay what they were.
        if self.impact_started_at or self.drill:
            canonical.update(impactStartedAt=self.impact_started_at, drill=bool(self.drill))
        return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def validation_details(errors: Iterable[dict[str, Any]]) -> dict[str, str]:
    """pydantic's failures (as ninja reports them: `loc` starts with where the value came from) as one message per
    field path, the first for each."""
    details: dict[str, str] = {}
    for error in errors:
        source, *loc = error["loc"]
        if source == "body":
            loc = loc[1:]  # the view's parameter name
        # A related item's identifier is told apart by its type; pydantic names the type in the place.
        loc = [part for part in loc if part not in ("OTHER", "INVOLVED_RESOURCE")]
        message = error["ctx"]["message"] if error["type"] == "invalid" else TYPE_MESSAGES.get(error["type"])
        if error["type"] == "union_tag_invalid":
            loc.append("type")
            message = f"“{error['ctx']['tag']}” cannot be sent here. {ITEM_TYPE_NOT_SUPPORTED}"
        elif error["type"] == "union_tag_not_found":
            loc.append("type")
            message = REQUIRED
        path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
        details.setdefault(path or "body", message or error["msg"])
    return details

"""What the API answers, as pydantic models read from the portal's models (ninja's resolvers fill what is not a
plain attribute); they also describe the answers in the OpenAPI document."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import Field, PlainSerializer, WithJsonSchema

from ..models import Declaration, IncidentAction, RelatedItem, ResponsePlan
from ..selectors.audit import declaration_audit_trail


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


DateTime = Annotated[
    datetime,
    PlainSerializer(iso_utc),
    WithJsonSchema({"type": "string", "format": "date-time", "description": "ISO 8601, UTC (Z)."}),
]


class DeclarationSummary(Schema):
    id: str = Field(pattern=r"^[0-9]+$", description="The declaration's id.")
    created_at: DateTime
    state: Literal[tuple(Declaration.State.values)] = Field(  # type: ignore[valid-type]
        description="queued → starting → started, or failed (with a reason)."
    )
    status_url: str = Field(description="Poll this for the outcome.")
    web_url: str = Field(description="The declaration's page in the portal.")
    drill: bool = Field(validation_alias="is_drill", description="A drill (on a drill plan), not a real incident.")

    @staticmethod
    def resolve_id(declaration: Declaration) -> str:
        return str(declaration.pk)

    @staticmethod
    def resolve_status_url(declaration: Declaration, context: dict[str, Any]) -> str:
        return context["request"].build_absolute_uri(f"/api/declarations/{declaration.pk}")

    @staticmethod
    def resolve_web_url(declaration: Declaration, context: dict[str, Any]) -> str:
        return context["request"].build_absolute_uri(declaration.get_absolute_url())


class PlanRef(Schema):
    arn: str
    name: str
    display_name: str = Field(validation_alias="label")


class Failure(Schema):
    code: str | None
    reason: str = Field(validation_alias="failure_reason")

    @staticmethod
    def resolve_code(declaration: Declaration) -> str | None:
        return declaration.failure_code or None


class RelatedItemOut(Schema):
    kind: Literal[tuple(RelatedItem.Kind.values)]  # type: ignore[valid-type]
    title: str
    value: str


class AuditEntry(Schema):
    at: DateTime = Field(validation_alias="created_at")
    actor: str = Field(validation_alias="actor_label")
    action: str


class IncidentActionOut(Schema):
    """Something asked of a started incident through the portal, and whether it reached AWS."""

    id: str = Field(pattern=r"^[0-9]+$")
    declaration_id: str = Field(pattern=r"^[0-9]+$")
    kind: Literal[tuple(IncidentAction.Kind.values)] = Field(  # type: ignore[valid-type]
        description="note, related_items, update (title, impact, summary) or resolve."
    )
    state: Literal[tuple(IncidentAction.State.values)] = Field(  # type: ignore[valid-type]
        description="queued → sent, or failed (with a reason)."
    )
    attempts: int = Field(ge=0, description="Attempts at the AWS calls so far.")
    requested_by: str = Field(validation_alias="requested_by.get_username")
    created_at: DateTime
    sent_at: DateTime | None
    failure: Failure | None = Field(description="Why it was not sent (state failed), else null.")
    status_url: str = Field(description="Poll this for the outcome.")

    @staticmethod
    def resolve_id(action: IncidentAction) -> str:
        return str(action.pk)

    @staticmethod
    def resolve_declaration_id(action: IncidentAction) -> str:
        return str(action.declaration_id)

    @staticmethod
    def resolve_failure(action: IncidentAction) -> IncidentAction | None:
        return action if action.state == IncidentAction.State.FAILED else None

    @staticmethod
    def resolve_status_url(action: IncidentAction, context: dict[str, Any]) -> str:
        path = f"/api/declarations/{action.declaration_id}/actions/{action.pk}"
        return context["request"].build_absolute_uri(path)


class DeclarationOut(DeclarationSummary):
    updated_at: DateTime
    started_at: DateTime | None
    impact_started_at: DateTime | None = Field(description="When the declarer said the impact began, if they did.")
    source: Literal[tuple(Declaration.Source.values)]  # type: ignore[valid-type]
    declared_by: str = Field(validation_alias="declared_by.get_username")
    response_plan: PlanRef
    title: str = Field(
        validation_alias="effective_title", description="The title in effect (the plan's when none was given)."
    )
    impact: int = Field(ge=1, le=5, validation_alias="effective_impact")
    incident_record_arn: str | None = Field(description="The Incident Manager record, once started.")
    failure: Failure | None = Field(description="Why it was not started (state failed), else null.")
    attempts: int = Field(ge=0, description="StartIncident calls made so far.")
    related_items: list[RelatedItemOut]
    audit: list[AuditEntry] = Field(description="The audit trail, oldest first.")
    actions: list[IncidentActionOut] = Field(description="Notes, items, changes and resolving asked of the incident.")

    @staticmethod
    def resolve_related_items(declaration: Declaration) -> list[RelatedItem]:
        # Never the bytes of a file still waiting for S3 (up to PORTAL_MAX_FILE_BYTES each): scripts poll this.
        return list(declaration.related_items.defer("pending_content"))

    @staticmethod
    def resolve_incident_record_arn(declaration: Declaration) -> str | None:
        return declaration.incident_record_arn or None

    @staticmethod
    def resolve_failure(declaration: Declaration) -> Declaration | None:
        return declaration if declaration.state == Declaration.State.FAILED else None

    @staticmethod
    def resolve_actions(declaration: Declaration) -> list[IncidentAction]:
        return list(declaration.actions.select_related("requested_by"))

    @staticmethod
    def resolve_audit(declaration: Declaration) -> list[Any]:
        return list(declaration_audit_trail(declaration=declaration))


class PlanTemplate(Schema):
    """What the incident gets when the request leaves title or impact out."""

    title: str = Field(validation_alias="template_title")
    impact: int = Field(ge=1, le=5, validation_alias="template_impact")
    summary: str = Field(validation_alias="template_summary")


class ResponsePlanOut(Schema):
    arn: str = Field(description="Use as responsePlanArn.")
    name: str
    display_name: str = Field(validation_alias="label")
    when_to_use: str
    drill: bool = Field(validation_alias="is_drill", description='A drill plan: declare with `"drill": true` only.')
    template: PlanTemplate

    @staticmethod
    def resolve_template(plan: ResponsePlan) -> ResponsePlan:
        return plan


class ResponsePlans(Schema):
    response_plans: list[ResponsePlanOut] = Field(description="The plans, in the portal's order.")

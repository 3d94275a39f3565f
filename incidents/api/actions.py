"""The JSON API's actions on a started incident: a note, related items, a change of title / impact / summary, and
resolving it. Each is queued (202) and sent by the worker, with the same idempotency rules as startIncident: the
same Idempotency-Key (or clientToken) with the same request answers the first action (200), with another request
409 CONFLICT. Registered on the API of `views.py` (imported by incidents/urls.py)."""

from collections.abc import Callable
from typing import Annotated, Any, Self

from django.http import HttpRequest, HttpResponse
from ninja import Header, Path
from ninja.decorators import decorate_view
from ninja.responses import Status
from pydantic import BeforeValidator, Field, model_validator

from .. import validators
from ..errors import PortalError
from ..forms.declare import DeclarationForm
from ..http import PersonRequest, client_ip
from ..models import Declaration, IncidentAction
from ..selectors.declarations import declaration_get_for
from ..selectors.incident_actions import incident_action_of
from ..services import actions as services
from .answers import IncidentActionOut
from .body import json_within_limit
from .envelope import COMMON_ERRORS, ApiError, answer, errors, success
from .inputs import ClientToken, Impact, RelatedItem, Strict, Text, at_most_items, errors_at, rule
from .views import MAX_ID, api, idempotency_key_for

IDEMPOTENCY_HELP = (
    "Makes the call idempotent, per caller: the same token with the same request returns the first action (200); "
    "with a different request, 409 CONFLICT. The `Idempotency-Key` header does the same."
)
NoteText = Annotated[Text, rule(validators.validate_note)]


class NoteRequest(Strict):
    text: NoteText = Field(
        description="The note, added to the incident's timeline as a custom event naming you.",
        json_schema_extra={"minLength": 1, "maxLength": validators.NOTE_MAX_LENGTH},
    )
    client_token: ClientToken | None = Field(None, alias="clientToken", description=IDEMPOTENCY_HELP)


class RelatedItemsRequest(Strict):
    related_items: Annotated[list[RelatedItem], BeforeValidator(at_most_items)] = Field(
        alias="relatedItems",
        description="Links and AWS resources to add, as in startIncident (files in the web form only).",
        json_schema_extra={"minItems": 1, "maxItems": validators.RELATED_ITEMS_MAX},
    )
    client_token: ClientToken | None = Field(None, alias="clientToken", description=IDEMPOTENCY_HELP)


class IncidentUpdateRequest(Strict):
    title: Annotated[Text, rule(DeclarationForm.base_fields["title"].clean)] | None = Field(
        None,
        description="The new title. A drill's goes to AWS with “[DRILL] ” in front, as its first one did, and so "
        f"may have at most {validators.DRILL_TITLE_MAX_LENGTH} characters.",
        json_schema_extra={"maxLength": validators.TITLE_MAX_LENGTH},
    )
    impact: Impact | None = Field(
        None,
        description="The new impact: 1 critical (full application failure, many to all customers), 2 high (partial "
        "failure, many customers), 3 medium (reduced service), 4 low (customers might not be impacted yet), 5 no "
        "impact (urgent action needed to avoid impact).",
        json_schema_extra={"minimum": 1, "maximum": 5},
    )
    summary: Annotated[Text, rule(validators.validate_summary)] | None = Field(
        None, description="The new summary.", json_schema_extra={"maxLength": validators.SUMMARY_MAX_LENGTH}
    )
    client_token: ClientToken | None = Field(None, alias="clientToken", description=IDEMPOTENCY_HELP)

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if not ((self.title or "").strip() or self.impact or (self.summary or "").strip()):
            raise errors_at({("title",): "Change at least one of the title, the impact or the summary."})
        return self


class ResolveRequest(Strict):
    note: NoteText = Field(
        description="The closing note, added to the timeline before the incident is resolved.",
        json_schema_extra={"minLength": 1, "maxLength": validators.NOTE_MAX_LENGTH},
    )
    client_token: ClientToken | None = Field(None, alias="clientToken", description=IDEMPOTENCY_HELP)


RESPONSES: dict[int, Any] = {202: answer(IncidentActionOut), 200: answer(IncidentActionOut)} | errors(
    "VALIDATION_ERROR", "NOT_FOUND", "CONFLICT", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE", *COMMON_ERRORS
)
OPENAPI_EXTRA = {
    "responses": {
        202: {"description": "Accepted and queued; poll `status_url`."},
        200: {"description": "A replay: this key already made this action from the same request."},
    }
}
ID = Path(..., description="The declaration's id.")
IDEMPOTENCY_KEY = Header(None, alias="Idempotency-Key", description="Same as clientToken.")
# The service's field names as the API spells them.
FIELDS = {"related_items": "relatedItems", "text": "text", "note": "note"}


def _act(
    request: PersonRequest,
    response: HttpResponse,
    *,
    declaration_id: int,
    client_token: str | None,
    idempotency_key: str | None,
    call: Callable,
) -> Status:
    """One action through its service, answered as startIncident answers: the body's clientToken or the
    Idempotency-Key header makes a repeat a replay."""
    key = idempotency_key_for(request, body=client_token, header=idempotency_key)
    declaration = _declaration(request, declaration_id)
    try:
        action, created = call(
            declaration=declaration, requested_by=request.user, idempotency_key=key, ip_address=client_ip(request)
        )
    except PortalError as exc:
        if exc.code == "forbidden":
            raise ApiError("FORBIDDEN", exc.message) from exc
        if exc.code == "conflict":
            raise ApiError("CONFLICT", exc.message) from exc
        field = FIELDS.get(exc.field or "", exc.field or "body")
        raise ApiError("VALIDATION_ERROR", exc.message, details={field: exc.message}) from exc
    response["Location"] = f"/api/declarations/{declaration.pk}/actions/{action.pk}"
    response["Idempotent-Replayed"] = str(not created).lower()
    return Status(202 if created else 200, success(action))


def _declaration(request: HttpRequest, declaration_id: int) -> Declaration:
    declaration = (
        declaration_get_for(user=request.user, declaration_id=declaration_id) if 0 < declaration_id <= MAX_ID else None
    )
    if declaration is None:
        raise ApiError("NOT_FOUND", f"No declaration {declaration_id} is visible to you.")
    return declaration


@api.post(
    "/declarations/{int:id}/notes",
    response=RESPONSES,
    operation_id="addNote",
    summary="Add a note to the incident's timeline",
    description="Queues a note for the started incident's timeline (CreateTimelineEvent, a custom event naming the "
    "token's owner). The declarer, managers and admins may act on a declaration.",
    openapi_extra=OPENAPI_EXTRA,
    url_name="declaration-notes",
)
@decorate_view(json_within_limit)
def note_add(
    request: PersonRequest,
    payload: NoteRequest,
    response: HttpResponse,
    id: int = ID,
    idempotency_key: ClientToken | None = IDEMPOTENCY_KEY,
) -> Status:
    def call(**common: Any) -> tuple[IncidentAction, bool]:
        return services.incident_note_add(text=payload.text, **common)

    return _act(
        request,
        response,
        declaration_id=id,
        client_token=payload.client_token,
        idempotency_key=idempotency_key,
        call=call,
    )


@api.post(
    "/declarations/{int:id}/relatedItems",
    response=RESPONSES,
    operation_id="addRelatedItems",
    summary="Add related items to the incident",
    description="Queues links and AWS resources for the started incident (UpdateRelatedItems, one call per item, "
    "each with a client token of its own).",
    openapi_extra=OPENAPI_EXTRA,
    url_name="declaration-related-items",
)
@decorate_view(json_within_limit)
def related_items_add(
    request: PersonRequest,
    payload: RelatedItemsRequest,
    response: HttpResponse,
    id: int = ID,
    idempotency_key: ClientToken | None = IDEMPOTENCY_KEY,
) -> Status:
    def call(**common: Any) -> tuple[IncidentAction, bool]:
        return services.incident_items_add(items=[item.to_input() for item in payload.related_items], **common)

    return _act(
        request,
        response,
        declaration_id=id,
        client_token=payload.client_token,
        idempotency_key=idempotency_key,
        call=call,
    )


@api.patch(
    "/declarations/{int:id}",
    response=RESPONSES,
    operation_id="updateIncident",
    summary="Change the incident's title, impact or summary",
    description="Queues UpdateIncidentRecord with the fields given (at least one); the others stay as they are.",
    openapi_extra=OPENAPI_EXTRA,
    url_name="declaration-update",
)
@decorate_view(json_within_limit)
def incident_update(
    request: PersonRequest,
    payload: IncidentUpdateRequest,
    response: HttpResponse,
    id: int = ID,
    idempotency_key: ClientToken | None = IDEMPOTENCY_KEY,
) -> Status:
    def call(**common: Any) -> tuple[IncidentAction, bool]:
        return services.incident_record_update(
            title=payload.title, impact=payload.impact, summary=payload.summary, **common
        )

    return _act(
        request,
        response,
        declaration_id=id,
        client_token=payload.client_token,
        idempotency_key=idempotency_key,
        call=call,
    )


@api.post(
    "/declarations/{int:id}/resolve",
    response=RESPONSES,
    operation_id="resolveIncident",
    summary="Resolve the incident with a closing note",
    description="Queues the closing note on the timeline (CreateTimelineEvent), then UpdateIncidentRecord with "
    "status RESOLVED. 409 CONFLICT when it is resolved (or being resolved) already.",
    openapi_extra=OPENAPI_EXTRA,
    url_name="declaration-resolve",
)
@decorate_view(json_within_limit)
def incident_resolve(
    request: PersonRequest,
    payload: ResolveRequest,
    response: HttpResponse,
    id: int = ID,
    idempotency_key: ClientToken | None = IDEMPOTENCY_KEY,
) -> Status:
    def call(**common: Any) -> tuple[IncidentAction, bool]:
        return services.incident_resolve(note=payload.note, **common)

    return _act(
        request,
        response,
        declaration_id=id,
        client_token=payload.client_token,
        idempotency_key=idempotency_key,
        call=call,
    )


@api.get(
    "/declarations/{int:id}/actions/{int:action_id}",
    response={200: answer(IncidentActionOut)} | errors("NOT_FOUND", *COMMON_ERRORS),
    operation_id="getIncidentAction",
    summary="An action's state: queued, sent or failed",
    url_name="declaration-action",
)
def incident_action_get(
    request: HttpRequest, id: int = ID, action_id: int = Path(..., description="The action's id.")
) -> dict[str, Any]:
    declaration = _declaration(request, id)
    action = incident_action_of(declaration=declaration, action_id=action_id) if 0 < action_id <= MAX_ID else None
    if action is None:
        raise ApiError("NOT_FOUND", f"No action {action_id} on declaration {id} is visible to you.")
    return success(action)

"""The JSON API's endpoints (django-ninja): each validates, calls one service or selector, and shapes the answer.

Every outcome is answered in the envelope (`envelope.py`), ninja's own failures (validation, authentication, an
unknown method) and unexpected crashes included.
"""

import functools
import hashlib
import logging
from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import URLPattern, path
from ninja import Header, NinjaAPI, Path
from ninja.decorators import decorate_view
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.responses import Status

from ..errors import PortalError
from ..http import PersonRequest, client_ip
from ..models import Declaration
from ..selectors.declarations import declaration_get_for
from ..selectors.plans import response_plans_available_to
from ..services.declarations import declaration_create
from .answers import DeclarationOut, DeclarationSummary, ResponsePlans
from .auth import BearerToken, unauthenticated
from .body import StrictJsonParser, json_within_limit
from .envelope import COMMON_ERRORS, ApiError, answer, errors, success
from .inputs import ClientToken, StartIncidentRequest, validation_details

logger = logging.getLogger(__name__)

# Postgres' bigint: larger ids cannot exist, and asking the database for one would be an error.
MAX_ID = 2**63 - 1


class PortalApi(NinjaAPI):
    def get_content_type(self) -> str:
        # JSON is UTF-8 by definition (RFC 8259); answers carry the bare media type, errors and successes alike.
        return "application/json"


api = PortalApi(
    title="Incident portal API",
    version="1.0.0",
    description="Declare incidents into AWS Systems Manager Incident Manager from scripts, through the same "
    "validation, queue, audit trail and roles as the web form. Authenticate with a personal API token "
    "(`Authorization: Bearer <token>`, created on the portal's API tokens page); it acts with its owner's current "
    "role. Each token may make a limited number of requests per minute (429 RATE_LIMITED with Retry-After beyond). "
    "Request fields follow AWS's StartIncident; answers use the envelope `{success, data}` or "
    "`{success: false, error: {code, message, details}}`.",
    auth=BearerToken(),
    parser=StrictJsonParser(),
    # The reference page is ours (views.reference): no Swagger UI from a CDN, which the CSP forbids.
    docs_url=None,
    openapi_url=None,  # served by reference.openapi_document, beside the page
    urls_namespace="incidents:api",
)


# --- Every failure in the envelope --------------------------------------------------------------------------


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return exc.response()


@api.exception_handler(NinjaValidationError)
def _invalid(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    details = validation_details(exc.errors)
    return ApiError("VALIDATION_ERROR", "Invalid request parameters; see details.", details=details).response()


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return unauthenticated().response()


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # ninja reports a body its parser refused as a bare 400; the parser's own ApiError says what is wrong.
    if isinstance(exc.__cause__, ApiError):
        return exc.__cause__.response()
    return ApiError("MALFORMED_REQUEST", str(exc)).response()


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return ApiError("NOT_FOUND", f"There is no API endpoint at {request.path}; see /api/docs/.").response()


@api.exception_handler(Exception)
def _crash(request: HttpRequest, exc: Exception) -> HttpResponse:
    # Logged in full for operators; the caller learns nothing about the internals.
    logger.error("API %s %s failed", request.method, request.path, exc_info=exc)
    return ApiError("INTERNAL_ERROR", "Something went wrong on our side; it has been logged.").response()


# --- Endpoints ---------------------------------------------------------------------------------------------


@api.post(
    "/startIncident",
    response={202: answer(DeclarationSummary), 200: answer(DeclarationSummary)}
    | errors("VALIDATION_ERROR", "CONFLICT", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE", *COMMON_ERRORS),
    operation_id="startIncident",
    summary="Declare an incident",
    description="Validates the request and queues the declaration; a worker then calls StartIncident with a client "
    "token of the portal's own, so AWS starts it once. Poll `status_url` for the outcome.",
    openapi_extra={
        "responses": {
            202: {"description": "Accepted and queued."},
            200: {"description": "A replay: this clientToken already made a declaration from the same request."},
        }
    },
    url_name="start-incident",
)
@decorate_view(json_within_limit)
def start_incident(
    request: PersonRequest,
    payload: StartIncidentRequest,
    response: HttpResponse,
    idempotency_key: ClientToken | None = Header(None, alias="Idempotency-Key", description="Same as clientToken."),
) -> Status:
    key = idempotency_key_for(request, body=payload.client_token, header=idempotency_key)
    try:
        declaration, created = declaration_create(
            declared_by=request.user,
            response_plan=payload.response_plan,
            title=payload.title or "",
            impact=payload.impact,
            related_items=payload.item_inputs(),
            idempotency_key=key,
            request_fingerprint=payload.fingerprint(),
            source=Declaration.Source.API,
            ip_address=client_ip(request),
            trigger_details=payload.trigger(),
            impact_started_at=payload.impact_start(),
            is_drill=bool(payload.drill),
        )
    except PortalError as exc:
        if exc.code == "conflict":
            raise ApiError(
                "CONFLICT",
                "This clientToken (or Idempotency-Key) was already used with a different request; "
                "use a new token for a new declaration.",
            ) from exc
        field = {"impact_started_at": "impactStartedAt", "response_plan": "responsePlanArn"}.get(exc.field or "")
        raise ApiError("VALIDATION_ERROR", exc.message, details={field or exc.field or "body": exc.message}) from exc
    # 202: accepted and queued. 200: a replay of the same key and payload, answered with the first declaration.
    response["Location"] = f"/api/declarations/{declaration.pk}"
    response["Idempotent-Replayed"] = str(not created).lower()
    return Status(202 if created else 200, success(declaration))


def idempotency_key_for(request: HttpRequest, *, body: str | None, header: str | None) -> str | None:
    if body and header and body != header:
        message = "The Idempotency-Key header and clientToken differ; send one of them, or the same value in both."
        raise ApiError("VALIDATION_ERROR", "Invalid request parameters; see details.", details={"clientToken": message})
    key = body or header
    # Keys are unique across callers in the database, so each is stored under its caller's id.
    return f"api:{request.user.pk}:{hashlib.sha256(key.encode()).hexdigest()}" if key else None


# The same rules for the operations on a started incident (api/actions.py).


@api.get(
    "/declarations/{int:id}",
    response={200: answer(DeclarationOut)} | errors("NOT_FOUND", *COMMON_ERRORS),
    operation_id="getDeclaration",
    summary="A declaration's state and outcome",
    description="State, incident record ARN, failure reason, attempts and audit trail. Support staff see their own "
    "declarations; managers see every one.",
    url_name="declaration",
)
def declaration_get(
    request: HttpRequest,
    id: int = Path(..., description="The id that startIncident answered."),  # named as the document names it
) -> dict[str, Any]:
    declaration = declaration_get_for(user=request.user, declaration_id=id) if 0 < id <= MAX_ID else None
    if declaration is None:
        raise ApiError("NOT_FOUND", f"No declaration {id} is visible to you.")
    return success(declaration)


@api.get(
    "/responsePlans",
    response={200: answer(ResponsePlans)} | errors(*COMMON_ERRORS),
    operation_id="listResponsePlans",
    summary="The response plans the caller may declare with",
    url_name="response-plans",
)
def response_plans(request: HttpRequest) -> dict[str, Any]:
    return success({"response_plans": response_plans_available_to(user=request.user)})


# --- The URL patterns ---------------------------------------------------------------------------------------


def _open_and_enveloped(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """An API view as Django serves it: open to callers without a session (LoginRequiredMiddleware would send them
    to the login page; the API answers 401 itself), and a method no operation takes answered in the envelope
    (ninja answers it with a bare 405)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if isinstance(response, HttpResponseNotAllowed):
            allowed = response["Allow"]
            return ApiError(
                "METHOD_NOT_ALLOWED",
                f"{request.method} is not allowed here; use {allowed.replace(', ', ' or ')}.",
                headers={"Allow": allowed},
            ).response()
        return response

    return login_not_required(wrapper)


def urls() -> list[URLPattern]:
    patterns, _app_name, _namespace = api.urls
    return [
        path(str(pattern.pattern), _open_and_enveloped(pattern.callback), name=pattern.name)
        for pattern in patterns
        if isinstance(pattern, URLPattern)
    ]

"""The JSON API: personal-token authentication, the envelope, and thin views over the web form's services.

Every answer is `{"success": true, "data": …}` or `{"success": false, "error": {"code", "message", "details"}}`.
The session cookie never authenticates here: only `Authorization: Bearer <token>`, so the views need no CSRF
protection and no login redirect.
"""

import functools
import json
import logging
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt

from . import openapi, roles, selectors, services
from .forms import StartIncidentRequestForm
from .http import client_ip
from .models import Declaration

logger = logging.getLogger(__name__)

ERROR_STATUS = {
    "VALIDATION_ERROR": 400,
    "MALFORMED_REQUEST": 400,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "CONFLICT": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "RATE_LIMITED": 429,
    "INTERNAL_ERROR": 500,
}
# Postgres' bigint: larger ids cannot exist, and asking the database for one would be an error.
MAX_ID = 2**63 - 1


class ApiError(Exception):
    def __init__(
        self, code: str, message: str, *, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    def response(self) -> JsonResponse:
        response = JsonResponse(
            {"success": False, "error": {"code": self.code, "message": self.message, "details": self.details}},
            status=ERROR_STATUS[self.code],
        )
        for name, value in self.headers.items():
            response[name] = value
        return response


def success(data: dict[str, Any], *, status: int = 200, headers: dict[str, str] | None = None) -> JsonResponse:
    return JsonResponse({"success": True, "data": data}, status=status, headers=headers)


def iso_utc(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- The door: method, token, rate limit, and the exception handler -------------------------------------


def api_view(*methods: str):
    """Wrap a view as an API endpoint: the envelope for every outcome, including a crash."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise ApiError(
                        "METHOD_NOT_ALLOWED",
                        f"{request.method} is not allowed here; use {' or '.join(methods)}.",
                        headers={"Allow": ", ".join(methods)},
                    )
                token = _authenticate(request)
                retry_after = services.api_rate_limit_hit(key=token.secret_hash[:32])
                if retry_after is not None:
                    raise ApiError(
                        "RATE_LIMITED",
                        f"Too many requests for this token (limit {settings.PORTAL_API_RATE_LIMIT}); "
                        f"try again in {retry_after} s.",
                        details={"retry_after_seconds": retry_after},
                        headers={"Retry-After": str(retry_after)},
                    )
                return view(request, *args, **kwargs)
            except ApiError as error:
                return error.response()
            except Exception:
                # Logged in full for operators; the caller learns nothing about the internals.
                logger.exception("API %s %s failed", request.method, request.path)
                return ApiError("INTERNAL_ERROR", "Something went wrong on our side; it has been logged.").response()

        wrapper.api_methods = methods  # read by the test that keeps the OpenAPI document in step
        return login_not_required(csrf_exempt(wrapper))

    return decorator


def _authenticate(request: HttpRequest):
    """The caller is the owner of the bearer token, whatever session cookie the request carries."""
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="incident-portal"'}
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(
            "UNAUTHENTICATED",
            "Send a personal API token as “Authorization: Bearer <token>”; create one on the API tokens page.",
            headers=challenge,
        )
    try:
        token = services.api_token_authenticate(secret=secret.strip())
    except services.DeclarationError as exc:
        raise ApiError("UNAUTHENTICATED", exc.message, headers=challenge) from exc
    request.user = token.owner
    request.api_token = token
    return token


def _require_role(request: HttpRequest) -> None:
    if not roles.can_declare(request.user):
        raise ApiError("FORBIDDEN", "The account this token belongs to has no role in the portal; ask an admin.")


def _json_body(request: HttpRequest) -> Any:
    if request.content_type != "application/json":
        raise ApiError(
            "UNSUPPORTED_MEDIA_TYPE",
            f"Send the body as JSON with “Content-Type: application/json” (got “{request.content_type or 'none'}”).",
        )
    limit = settings.PORTAL_API_MAX_BODY_BYTES
    too_large = ApiError("PAYLOAD_TOO_LARGE", f"The body can be at most {limit} bytes.", details={"max_bytes": limit})
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise too_large
    body = request.read(limit + 1)
    if len(body) > limit:
        raise too_large
    try:
        return json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise ApiError("MALFORMED_REQUEST", "The body is not valid UTF-8.") from None
    except json.JSONDecodeError as exc:
        raise ApiError(
            "MALFORMED_REQUEST",
            f"The body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).",
            details={"line": exc.lineno, "column": exc.colno},
        ) from None
    except ValueError as exc:
        raise ApiError("MALFORMED_REQUEST", f"The body is not valid JSON: {exc}.") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the field “{key}” appears twice")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# --- Shaping declarations ------------------------------------------------------------------------------


def declaration_summary(request: HttpRequest, declaration: Declaration) -> dict[str, Any]:
    return {
        "id": str(declaration.pk),
        "created_at": iso_utc(declaration.created_at),
        "state": declaration.state,
        "status_url": request.build_absolute_uri(f"/api/declarations/{declaration.pk}"),
        "web_url": request.build_absolute_uri(declaration.get_absolute_url()),
    }


def declaration_data(request: HttpRequest, declaration: Declaration) -> dict[str, Any]:
    plan = declaration.response_plan
    return {
        **declaration_summary(request, declaration),
        "updated_at": iso_utc(declaration.updated_at),
        "started_at": iso_utc(declaration.started_at),
        "source": declaration.source,
        "declared_by": declaration.declared_by.get_username(),
        "response_plan": {"arn": plan.arn, "name": plan.name, "display_name": plan.label},
        "title": declaration.effective_title,
        "impact": declaration.effective_impact,
        "incident_record_arn": declaration.incident_record_arn or None,
        "failure": (
            {"code": declaration.failure_code or None, "reason": declaration.failure_reason}
            if declaration.state == Declaration.State.FAILED
            else None
        ),
        "attempts": declaration.attempts,
        "related_items": [
            {"kind": item.kind, "title": item.title, "value": item.value} for item in declaration.related_items.all()
        ],
        "audit": [
            {"at": iso_utc(event.created_at), "actor": event.actor_label, "action": event.action}
            for event in selectors.declaration_audit_trail(declaration=declaration)
        ],
    }


# --- Endpoints -----------------------------------------------------------------------------------------


@api_view("POST")
def start_incident(request: HttpRequest) -> HttpResponse:
    _require_role(request)
    form = StartIncidentRequestForm(
        _json_body(request), user=request.user, idempotency_header=request.headers.get("Idempotency-Key")
    )
    if not form.is_valid():
        raise ApiError("VALIDATION_ERROR", "Invalid request parameters; see details.", details=form.errors)
    data = form.cleaned
    assert data is not None
    try:
        declaration, created = services.declaration_create(
            declared_by=request.user,
            response_plan=data.response_plan,
            title=data.title,
            impact=data.impact,
            related_items=data.related_items,
            idempotency_key=data.idempotency_key,
            request_fingerprint=data.fingerprint,
            source=Declaration.Source.API,
            ip_address=client_ip(request),
            trigger_details=data.trigger_details,
        )
    except services.DeclarationError as exc:
        if exc.code == "conflict":
            raise ApiError(
                "CONFLICT",
                "This clientToken (or Idempotency-Key) was already used with a different request; "
                "use a new token for a new declaration.",
            ) from exc
        raise ApiError("VALIDATION_ERROR", exc.message, details={exc.field or "body": exc.message}) from exc
    # 202: accepted and queued. 200: a replay of the same key and payload, answered with the first declaration.
    return success(
        declaration_summary(request, declaration),
        status=202 if created else 200,
        headers={"Location": f"/api/declarations/{declaration.pk}", "Idempotent-Replayed": str(not created).lower()},
    )


@api_view("GET")
def declaration_detail(request: HttpRequest, declaration_id: int) -> HttpResponse:
    _require_role(request)
    declaration = None
    if declaration_id <= MAX_ID:
        declaration = selectors.declaration_get_for(user=request.user, declaration_id=declaration_id)
    if declaration is None:
        raise ApiError("NOT_FOUND", f"No declaration {declaration_id} is visible to you.")
    return success(declaration_data(request, declaration))


@api_view("GET")
def response_plans(request: HttpRequest) -> HttpResponse:
    _require_role(request)
    plans = selectors.response_plans_available_to(user=request.user)
    return success(
        {
            "response_plans": [
                {
                    "arn": plan.arn,
                    "name": plan.name,
                    "display_name": plan.label,
                    "when_to_use": plan.when_to_use,
                    "template": {
                        "title": plan.template_title,
                        "impact": plan.template_impact,
                        "summary": plan.template_summary,
                    },
                }
                for plan in plans
            ]
        }
    )


@login_not_required
@csrf_exempt
def not_found(request: HttpRequest) -> HttpResponse:
    return ApiError("NOT_FOUND", f"There is no API endpoint at {request.path}; see /api/docs/.").response()


# --- The reference: the OpenAPI document and a page rendered from it ------------------------------------


@login_not_required
def openapi_document(request: HttpRequest) -> HttpResponse:
    return JsonResponse(openapi.document(), json_dumps_params={"indent": 2})


@login_not_required
def reference_redirect(request: HttpRequest) -> HttpResponse:
    return redirect("incidents:api-docs")


@login_not_required
def reference(request: HttpRequest) -> HttpResponse:
    return render(request, "incidents/api_reference.html", {"reference": openapi.reference()})

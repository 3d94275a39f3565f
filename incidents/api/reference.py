"""The reference page at /api/docs/, rendered by our own template from the generated OpenAPI document."""

from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt

from ..selectors.impacts import impact_levels
from .envelope import ERRORS, ApiError
from .views import api

JSON = "application/json"


def document() -> dict[str, Any]:
    return api.get_openapi_schema()


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """Follow $refs; `anyOf: [X, null]` reads as a nullable X."""
    while "$ref" in schema or "anyOf" in schema:
        if "anyOf" in schema:
            options = [option for option in schema["anyOf"] if option.get("type") != "null"]
            extra = {key: value for key, value in schema.items() if key != "anyOf"}
            nullable = len(options) < len(schema["anyOf"])
            schema = {**_resolve(options[0], schemas), **extra}
            if nullable:
                schema["type"] = [schema.get("type", "object"), "null"]
            continue
        extra = {key: value for key, value in schema.items() if key != "$ref"}
        schema = {**schemas[schema["$ref"].rsplit("/", 1)[1]], **extra}
    return schema


def _type_label(schema: dict[str, Any]) -> str:
    if "const" in schema:
        return f"“{schema['const']}”"
    if "enum" in schema:
        return " | ".join(str(value) for value in schema["enum"])
    types = schema.get("type", "object")
    types = types if isinstance(types, list) else [types]
    label = " or ".join(t for t in types if t != "null")
    if "format" in schema:
        label += f" ({schema['format']})"
    return label + (", may be null" if "null" in types else "")


def _constraints(schema: dict[str, Any]) -> str:
    parts = []
    if "minimum" in schema and "maximum" in schema:
        parts.append(f"{schema['minimum']} to {schema['maximum']}")
    for key, text in (
        ("minLength", "at least {} characters"),
        ("maxLength", "at most {} characters"),
        ("maxItems", "at most {} items"),
        ("pattern", "matches {}"),
    ):
        if key in schema:
            parts.append(text.format(schema[key]))
    return ", ".join(parts)


def schema_rows(schema: dict[str, Any], schemas: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    """The fields of a schema, flattened into rows (path, type, required, constraints, description)."""
    schema = _resolve(schema, schemas)
    rows = []
    if "oneOf" in schema:
        for number, option in enumerate(schema["oneOf"], start=1):
            option = _resolve(option, schemas)
            rows.append(
                {
                    "path": prefix,
                    "type": f"option {number} of {len(schema['oneOf'])}",
                    "required": None,
                    "description": option.get("description", ""),
                }
            )
            rows.extend(schema_rows(option, schemas, prefix))
        return rows
    required = set(schema.get("required", []))
    for name, field in schema.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        field = _resolve(field, schemas)
        rows.append(
            {
                "path": path,
                "type": _type_label(field),
                "required": name in required,
                "constraints": _constraints(field),
                "description": field.get("description", ""),
            }
        )
        if "items" in field:
            rows.extend(schema_rows(field["items"], schemas, f"{path}[]"))
        elif "properties" in field or "oneOf" in field or "$ref" in field:
            rows.extend(schema_rows(field, schemas, path))
    return rows


def reference_data() -> dict[str, Any]:
    """The document, shaped for the reference page's template."""
    doc = document()
    schemas = doc["components"]["schemas"]
    operations = []
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            body = operation.get("requestBody", {}).get("content", {}).get(JSON, {}).get("schema")
            responses = []
            for status, response in operation["responses"].items():
                schema = _resolve(response["content"][JSON]["schema"], schemas)
                data = schema.get("properties", {}).get("data")
                responses.append(
                    {
                        "status": status,
                        "description": response["description"],
                        "rows": schema_rows(data, schemas) if data else [],
                    }
                )
            operations.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "id": operation["operationId"],
                    "summary": operation["summary"],
                    "description": operation.get("description", ""),
                    "parameters": operation.get("parameters", []),
                    "body_rows": schema_rows(body, schemas) if body else [],
                    "responses": responses,
                }
            )
    return {
        "info": doc["info"],
        "operations": operations,
        "errors": [{"code": code, "status": status, "meaning": text} for code, (status, text) in ERRORS.items()],
    }


@login_not_required
def openapi_document(request: HttpRequest) -> HttpResponse:
    return JsonResponse(document(), json_dumps_params={"indent": 2})


@login_not_required
def reference_redirect(request: HttpRequest) -> HttpResponse:
    return redirect("incidents:api-docs")


@login_not_required
def reference(request: HttpRequest) -> HttpResponse:
    return render(
        request, "incidents/api_reference.html", {"reference": reference_data(), "impact_levels": impact_levels()}
    )


@csrf_exempt
@login_not_required
def not_found(request: HttpRequest) -> HttpResponse:
    """Anything else under /api/ answers in the envelope, never with the HTML 404 page or a login redirect (nor the
    CSRF failure page a POST or PATCH without a session's cookie would get: this view changes nothing)."""
    return ApiError("NOT_FOUND", f"There is no API endpoint at {request.path}; see /api/docs/.").response()

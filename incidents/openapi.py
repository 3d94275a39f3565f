"""The API's OpenAPI 3.1 document, written by hand; tests keep it in step with `api.py` and `urls.py`.

Limits come from `validators` (botocore's model), so the document cannot drift from what the API enforces.
"""

from typing import Any

from . import validators
from .models import Declaration

ERROR_CODES = {
    "VALIDATION_ERROR": (400, "A field is invalid; `details` holds a message per field path."),
    "MALFORMED_REQUEST": (400, "The body is not JSON (or not UTF-8, or repeats a field)."),
    "UNAUTHENTICATED": (401, "No bearer token, or one that is unknown, revoked or expired."),
    "FORBIDDEN": (403, "The token's owner has no role in the portal (roles are checked on every request)."),
    "NOT_FOUND": (404, "No such endpoint, or no declaration with that id visible to the caller."),
    "METHOD_NOT_ALLOWED": (405, "The endpoint does not take this method; see the `Allow` header."),
    "CONFLICT": (409, "The clientToken / Idempotency-Key was already used with a different request."),
    "PAYLOAD_TOO_LARGE": (413, "The body is larger than the API accepts."),
    "UNSUPPORTED_MEDIA_TYPE": (415, "The body is not sent as `Content-Type: application/json`."),
    "RATE_LIMITED": (429, "Too many requests for this token; wait for `Retry-After` seconds."),
    "INTERNAL_ERROR": (500, "An unexpected failure on the portal's side; nothing internal is revealed."),
}

ARN_PATTERN = validators.LIMITS["arn_pattern"]
JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error_response(description: str, *codes: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    schema = {
        "allOf": [
            _ref("Error"),
            {"properties": {"error": {"properties": {"code": {"enum": list(codes)}}}}},
        ]
    }
    response: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _success_response(description: str, data_schema: dict[str, Any], **extra) -> dict[str, Any]:
    schema = {
        "type": "object",
        "required": ["success", "data"],
        "additionalProperties": False,
        "properties": {"success": {"const": True}, "data": data_schema},
    }
    return {"description": description, "content": {JSON: {"schema": schema}}, **extra}


RATE_LIMITED = _error_response(
    "Too many requests for this token.",
    "RATE_LIMITED",
    headers={"Retry-After": {"description": "Seconds until the next window.", "schema": {"type": "string"}}},
)
UNAUTHENTICATED = _error_response(
    "Missing, unknown, revoked or expired token.",
    "UNAUTHENTICATED",
    headers={"WWW-Authenticate": {"schema": {"type": "string"}}},
)
FORBIDDEN = _error_response("The token's owner has no role in the portal.", "FORBIDDEN")
METHOD_NOT_ALLOWED = _error_response(
    "Wrong method.", "METHOD_NOT_ALLOWED", headers={"Allow": {"schema": {"type": "string"}}}
)
INTERNAL_ERROR = _error_response("Unexpected failure; nothing internal is revealed.", "INTERNAL_ERROR")


def _schemas() -> dict[str, Any]:
    arn = {"type": "string", "maxLength": validators.ARN_MAX_LENGTH, "pattern": ARN_PATTERN}
    item_title = {
        "type": ["string", "null"],
        "maxLength": validators.RELATED_ITEM_TITLE_MAX_LENGTH,
        "description": "What responders see for the item.",
    }
    return {
        "StartIncidentRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["responsePlanArn"],
            "properties": {
                "responsePlanArn": {
                    **arn,
                    "description": "The ARN of the response plan that pre-defines summary, chat channels, SNS "
                    "topics, runbooks, title and impact of the incident. It must be one of the plans "
                    "`GET /api/responsePlans` lists for you.",
                },
                "title": {
                    "type": ["string", "null"],
                    "maxLength": validators.TITLE_MAX_LENGTH,
                    "description": "Overwrites the response plan's title; leave out for the plan's.",
                },
                "impact": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "maximum": 5,
                    "description": "Overwrites the plan's impact: 1 critical (full application failure, many to "
                    "all customers), 2 high (partial failure, many customers), 3 medium (reduced service), "
                    "4 low (customers might not be impacted yet), 5 no impact (urgent action needed to avoid "
                    "impact). Leave out for the plan's.",
                },
                "relatedItems": {
                    "type": ["array", "null"],
                    "maxItems": validators.RELATED_ITEMS_MAX,
                    "items": _ref("RelatedItem"),
                    "description": "Links and AWS resources for responders. Files can be attached in the web "
                    "form only; `generatedId` is assigned by Incident Manager and refused here.",
                },
                "clientToken": {
                    "type": ["string", "null"],
                    "minLength": 1,
                    "maxLength": validators.CLIENT_TOKEN_MAX_LENGTH,
                    "description": "Makes the call idempotent, per caller: the same token with the same request "
                    "returns the first declaration (200); with a different request, 409 CONFLICT. The "
                    "`Idempotency-Key` header does the same; if both are sent they must be equal.",
                },
                "triggerDetails": {
                    "anyOf": [_ref("TriggerDetails"), {"type": "null"}],
                    "description": "What caused the incident. Sent to AWS as given, instead of the portal's "
                    "own (source com.example.incident-portal, naming the declarer).",
                },
            },
        },
        "RelatedItem": {
            "type": "object",
            "additionalProperties": False,
            "required": ["identifier"],
            "properties": {
                "identifier": {"oneOf": [_ref("LinkIdentifier"), _ref("ResourceIdentifier")]},
                "title": item_title,
            },
        },
        "LinkIdentifier": {
            "type": "object",
            "description": "An external link.",
            "additionalProperties": False,
            "required": ["type", "value"],
            "properties": {
                "type": {"const": "OTHER"},
                "value": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["url"],
                    "properties": {
                        "url": {
                            "type": "string",
                            "maxLength": validators.URL_MAX_LENGTH,
                            "format": "uri",
                            "description": "An http:// or https:// address.",
                        }
                    },
                },
            },
        },
        "ResourceIdentifier": {
            "type": "object",
            "description": "An AWS resource involved in the incident.",
            "additionalProperties": False,
            "required": ["type", "value"],
            "properties": {
                "type": {"const": "INVOLVED_RESOURCE"},
                "value": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["arn"],
                    "properties": {"arn": {**arn, "description": "The resource's ARN."}},
                },
            },
        },
        "TriggerDetails": {
            "type": "object",
            "additionalProperties": False,
            "required": ["source", "timestamp"],
            "properties": {
                "source": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": validators.TRIGGER_SOURCE_MAX_LENGTH,
                    "description": "Who triggered it, reverse-DNS style (com.example.alerting); must not start "
                    "with `aws.`.",
                },
                "timestamp": {
                    "type": "string",
                    "format": "date-time",
                    "description": "When it was triggered: ISO 8601 with a time zone, at most a day ahead.",
                },
                "rawData": {
                    "type": ["string", "null"],
                    "maxLength": validators.TRIGGER_RAW_DATA_MAX_LENGTH,
                    "description": "The trigger's raw data, e.g. the alarm's JSON.",
                },
                "triggerArn": {
                    **arn,
                    "type": ["string", "null"],
                    "description": "The ARN of what triggered it, e.g. a CloudWatch alarm.",
                },
            },
        },
        "DeclarationSummary": {
            "type": "object",
            "required": ["id", "created_at", "state", "status_url", "web_url"],
            "properties": {
                "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The declaration's id."},
                "created_at": {"type": "string", "format": "date-time", "description": "ISO 8601, UTC (Z)."},
                "state": {
                    "enum": list(Declaration.State.values),
                    "description": "queued → starting → started, or failed (with a reason).",
                },
                "status_url": {"type": "string", "description": "Poll this for the outcome."},
                "web_url": {"type": "string", "description": "The declaration's page in the portal."},
            },
        },
        "Declaration": {
            "allOf": [_ref("DeclarationSummary")],
            "type": "object",
            "required": [
                "updated_at",
                "started_at",
                "source",
                "declared_by",
                "response_plan",
                "title",
                "impact",
                "incident_record_arn",
                "failure",
                "attempts",
                "related_items",
                "audit",
            ],
            "properties": {
                "updated_at": {"type": "string", "format": "date-time"},
                "started_at": {"type": ["string", "null"], "format": "date-time"},
                "source": {"enum": list(Declaration.Source.values)},
                "declared_by": {"type": "string"},
                "response_plan": {
                    "type": "object",
                    "required": ["arn", "name", "display_name"],
                    "properties": {
                        "arn": {"type": "string"},
                        "name": {"type": "string"},
                        "display_name": {"type": "string"},
                    },
                },
                "title": {"type": "string", "description": "The title in effect (the plan's when none was given)."},
                "impact": {"type": "integer", "minimum": 1, "maximum": 5},
                "incident_record_arn": {
                    "type": ["string", "null"],
                    "description": "The Incident Manager record, once started.",
                },
                "failure": {
                    "type": ["object", "null"],
                    "required": ["code", "reason"],
                    "properties": {"code": {"type": ["string", "null"]}, "reason": {"type": "string"}},
                    "description": "Why it was not started (state failed), else null.",
                },
                "attempts": {"type": "integer", "minimum": 0, "description": "StartIncident calls made so far."},
                "related_items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["kind", "title", "value"],
                        "properties": {
                            "kind": {"enum": ["link", "resource", "file"]},
                            "title": {"type": "string"},
                            "value": {"type": "string"},
                        },
                    },
                },
                "audit": {
                    "type": "array",
                    "description": "The audit trail, oldest first.",
                    "items": {
                        "type": "object",
                        "required": ["at", "actor", "action"],
                        "properties": {
                            "at": {"type": "string", "format": "date-time"},
                            "actor": {"type": "string"},
                            "action": {"type": "string"},
                        },
                    },
                },
            },
        },
        "ResponsePlan": {
            "type": "object",
            "required": ["arn", "name", "display_name", "when_to_use", "template"],
            "properties": {
                "arn": {"type": "string", "description": "Use as responsePlanArn."},
                "name": {"type": "string"},
                "display_name": {"type": "string"},
                "when_to_use": {"type": "string"},
                "template": {
                    "type": "object",
                    "description": "What the incident gets when the request leaves title or impact out.",
                    "required": ["title", "impact", "summary"],
                    "properties": {
                        "title": {"type": "string"},
                        "impact": {"type": "integer", "minimum": 1, "maximum": 5},
                        "summary": {"type": "string"},
                    },
                },
            },
        },
        "Error": {
            "type": "object",
            "required": ["success", "error"],
            "additionalProperties": False,
            "properties": {
                "success": {"const": False},
                "error": {
                    "type": "object",
                    "required": ["code", "message", "details"],
                    "additionalProperties": False,
                    "properties": {
                        "code": {"enum": list(ERROR_CODES)},
                        "message": {"type": "string"},
                        "details": {
                            "type": "object",
                            "description": "For VALIDATION_ERROR, a message per field path, such as "
                            "`relatedItems[2].identifier.value.url`.",
                        },
                    },
                },
            },
        },
    }


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Incident portal API",
            "version": "1.0.0",
            "description": "Declare incidents into AWS Systems Manager Incident Manager from scripts, through the "
            "same validation, queue, audit trail and roles as the web form. Authenticate with a personal API "
            "token (`Authorization: Bearer <token>`, created on the portal's API tokens page); it acts with its "
            "owner's current role. Each token may make a limited number of requests per minute (429 "
            "RATE_LIMITED with Retry-After beyond). Request fields follow AWS's StartIncident; answers use the "
            "envelope `{success, data}` or `{success: false, error: {code, message, details}}`.",
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
        },
        "security": [{"bearerAuth": []}],
        "paths": {
            "/api/startIncident": {
                "post": {
                    "operationId": "startIncident",
                    "summary": "Declare an incident",
                    "description": "Validates the request and queues the declaration; a worker then calls "
                    "StartIncident with a client token of the portal's own, so AWS starts it once. Poll "
                    "`status_url` for the outcome.",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "description": "Same as clientToken in the body.",
                            "schema": {"type": "string", "minLength": 1, "maxLength": 128},
                        }
                    ],
                    "requestBody": {"required": True, "content": {JSON: {"schema": _ref("StartIncidentRequest")}}},
                    "responses": {
                        "202": _success_response("Accepted and queued.", _ref("DeclarationSummary")),
                        "200": _success_response(
                            "A replay: this clientToken already made a declaration from the same request.",
                            _ref("DeclarationSummary"),
                        ),
                        "400": _error_response("Invalid request.", "VALIDATION_ERROR", "MALFORMED_REQUEST"),
                        "401": UNAUTHENTICATED,
                        "403": FORBIDDEN,
                        "405": METHOD_NOT_ALLOWED,
                        "409": _error_response("clientToken reused with a different request.", "CONFLICT"),
                        "413": _error_response("Body too large.", "PAYLOAD_TOO_LARGE"),
                        "415": _error_response("Body not sent as application/json.", "UNSUPPORTED_MEDIA_TYPE"),
                        "429": RATE_LIMITED,
                        "500": INTERNAL_ERROR,
                    },
                }
            },
            "/api/declarations/{id}": {
                "get": {
                    "operationId": "getDeclaration",
                    "summary": "A declaration's state and outcome",
                    "description": "State, incident record ARN, failure reason, attempts and audit trail. "
                    "Support staff see their own declarations; managers see every one.",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "description": "The id that startIncident answered.",
                            "schema": {"type": "string", "pattern": "^[0-9]+$"},
                        }
                    ],
                    "responses": {
                        "200": _success_response("The declaration.", _ref("Declaration")),
                        "401": UNAUTHENTICATED,
                        "403": FORBIDDEN,
                        "404": _error_response("No such declaration visible to the caller.", "NOT_FOUND"),
                        "405": METHOD_NOT_ALLOWED,
                        "429": RATE_LIMITED,
                        "500": INTERNAL_ERROR,
                    },
                }
            },
            "/api/responsePlans": {
                "get": {
                    "operationId": "listResponsePlans",
                    "summary": "The response plans the caller may declare with",
                    "responses": {
                        "200": _success_response(
                            "The plans, in the portal's order.",
                            {
                                "type": "object",
                                "required": ["response_plans"],
                                "properties": {"response_plans": {"type": "array", "items": _ref("ResponsePlan")}},
                            },
                        ),
                        "401": UNAUTHENTICATED,
                        "403": FORBIDDEN,
                        "405": METHOD_NOT_ALLOWED,
                        "429": RATE_LIMITED,
                        "500": INTERNAL_ERROR,
                    },
                }
            },
        },
    }


# --- The readable reference page ------------------------------------------------------------------------


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """Follow $refs; `anyOf: [X, null]` reads as a nullable X."""
    while "$ref" in schema or "anyOf" in schema:
        if "anyOf" in schema:
            options = [option for option in schema["anyOf"] if option != {"type": "null"}]
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
        elif "properties" in field or "oneOf" in field:
            rows.extend(schema_rows(field, schemas, path))
    return rows


def reference() -> dict[str, Any]:
    """The document, shaped for the reference page's template."""
    doc = document()
    schemas = doc["components"]["schemas"]
    operations = []
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            body = operation.get("requestBody", {}).get("content", {}).get(JSON, {}).get("schema")
            responses = []
            for status, response in operation["responses"].items():
                schema = response["content"][JSON]["schema"]
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
        "errors": [{"code": code, "status": status, "meaning": text} for code, (status, text) in ERROR_CODES.items()],
    }

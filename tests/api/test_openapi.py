"""The OpenAPI document and reference page stay in step with the API, and fuzzing finds no crash or drift."""

import json
import re

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import URLResolver, get_resolver
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from incidents.api import envelope, inputs
from incidents.api.reference import document
from incidents.services.declarations import declaration_create
from portal.wsgi import application
from tests.api.conftest import make_token

pytestmark = pytest.mark.django_db


def api_routes() -> set[str]:
    """Every route the URLconf hands to the API (the "api" namespace), written the OpenAPI way (`{id}`)."""
    routes = set()

    def walk(patterns, prefix: str, inside_api: bool) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route, inside_api or pattern.namespace == "api")
            elif inside_api and route != prefix:  # ninja's root, which /api/'s redirect to the reference answers
                routes.add("/" + re.sub(r"<int:(\w+)>", r"{\1}", route))

    walk(get_resolver().url_patterns, "", False)
    return routes


def test_the_document_is_served_as_openapi_3_1(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    served = response.json()
    assert served["openapi"] == "3.1.0"
    assert served == json.loads(json.dumps(document()))


def test_every_api_endpoint_is_documented_with_its_methods_and_nothing_else():
    documented = {path: set(methods) for path, methods in document()["paths"].items()}
    assert set(documented) == api_routes()
    assert documented == {
        "/api/startIncident": {"post"},
        "/api/declarations/{id}": {"get", "patch"},
        "/api/declarations/{id}/notes": {"post"},
        "/api/declarations/{id}/relatedItems": {"post"},
        "/api/declarations/{id}/resolve": {"post"},
        "/api/declarations/{id}/actions/{action_id}": {"get"},
        "/api/responsePlans": {"get"},
    }


def test_documented_error_codes_are_the_ones_the_api_uses():
    error_body = document()["components"]["schemas"]["ErrorBody"]
    assert error_body["properties"]["code"]["enum"] == list(envelope.ERROR_STATUS)


def test_documented_request_fields_are_the_ones_the_api_accepts():
    documented = document()["components"]["schemas"]
    request = documented["StartIncidentRequest"]["properties"]
    assert tuple(request) == (
        "responsePlanArn",
        "title",
        "impact",
        "relatedItems",
        "clientToken",
        "triggerDetails",
        "impactStartedAt",
        "drill",
    )
    assert tuple(documented["TriggerDetails"]["properties"]) == ("source", "timestamp", "rawData", "triggerArn")
    assert request["title"]["maxLength"] == 200  # botocore's IncidentTitle
    # Generated from the model that validates.
    model_fields = inputs.StartIncidentRequest.model_fields.items()
    assert tuple(request) == tuple(field.alias or name for name, field in model_fields)


def test_the_reference_page_is_readable_without_logging_in_and_without_inline_scripts(client):
    assert client.get("/api/")["Location"] == "/api/docs/"
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    for path in ("/api/startIncident", "/api/declarations/{id}", "/api/responsePlans"):
        assert path in page
    for field in ("relatedItems[].identifier.value.url", "triggerDetails.source", "clientToken"):
        assert field in page
    for code in envelope.ERROR_STATUS:
        assert code in page
    # The site's own scripts load from static files; the reference itself needs none, and nothing is inline.
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []
    assert "style=" not in page


# Built from the same dict that /api/openapi.json serves (the first test above checks they are equal), and
# called through the real WSGI application as a token-holding script would call it.
fuzzed = schemathesis.openapi.from_dict(document())
fuzzed.app = application


@pytest.fixture
def fuzz_target(support_user, plans, settings):
    """A token, a plan it may use and one of its declarations: random ARNs and ids would only ever meet errors."""
    settings.PORTAL_API_RATE_LIMIT = settings.PORTAL_API_PERSON_RATE_LIMIT = "100000/m"
    token = make_token(support_user, name="fuzzer")
    declaration, _ = declaration_create(declared_by=support_user, response_plan=plans["website-outage"])
    # As Django's test client does: keep the test's transaction open across requests (so nothing is committed
    # and nothing is queued) instead of closing the connection when each response ends.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield {"token": token, "plan_arn": plans["website-outage"].arn, "declaration_id": str(declaration.pk)}
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@fuzzed.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzzing_finds_no_server_error_and_no_answer_outside_the_schema(case, fuzz_target):
    # Point well-typed plan ARNs and ids at real ones, so that successful answers get checked against the schema too.
    if isinstance(case.body, dict) and isinstance(case.body.get("responsePlanArn"), str):
        case.body["responsePlanArn"] = fuzz_target["plan_arn"]
    if case.path_parameters and str(case.path_parameters.get("id", "")).isdigit():
        case.path_parameters["id"] = fuzz_target["declaration_id"]
    case.call_and_validate(
        headers={"Authorization": f"Bearer {fuzz_target['token']}"},
        checks=[not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance],
    )

"""The OpenAPI document and reference page stay in step with the API, and fuzzing finds no crash or drift."""

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

from incidents import api, openapi
from incidents.forms.api import StartIncidentRequestForm
from incidents.services.declarations import declaration_create
from portal.wsgi import application
from tests.api.conftest import make_token

pytestmark = pytest.mark.django_db


def api_endpoints() -> dict[str, set[str]]:
    """Every API endpoint in the URLconf and its methods, written the OpenAPI way (`{id}` for path parameters)."""
    endpoints = {}

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif methods := getattr(pattern.callback, "api_methods", None):
                endpoints["/" + re.sub(r"<int:\w+>", "{id}", route)] = {method.lower() for method in methods}

    walk(get_resolver().url_patterns, "")
    return endpoints


def test_the_document_is_served_as_openapi_3_1(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    assert document == openapi.document()


def test_every_api_endpoint_is_documented_with_its_methods_and_nothing_else():
    documented = {path: set(methods) for path, methods in openapi.document()["paths"].items()}
    assert documented == api_endpoints()
    assert len(documented) == 3


def test_documented_error_codes_are_the_ones_the_api_uses():
    assert {code: status for code, (status, _) in openapi.ERROR_CODES.items()} == api.ERROR_STATUS
    error_schema = openapi.document()["components"]["schemas"]["Error"]
    assert error_schema["properties"]["error"]["properties"]["code"]["enum"] == list(api.ERROR_STATUS)


def test_documented_request_fields_are_the_ones_the_api_accepts():
    schemas = openapi.document()["components"]["schemas"]
    assert tuple(schemas["StartIncidentRequest"]["properties"]) == StartIncidentRequestForm.FIELDS
    assert tuple(schemas["TriggerDetails"]["properties"]) == StartIncidentRequestForm.TRIGGER_FIELDS
    assert schemas["StartIncidentRequest"]["properties"]["title"]["maxLength"] == 200  # botocore's IncidentTitle


def test_the_reference_page_is_readable_without_logging_in_and_without_inline_scripts(client):
    assert client.get("/api/")["Location"] == "/api/docs/"
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    for path in ("/api/startIncident", "/api/declarations/{id}", "/api/responsePlans"):
        assert path in page
    for field in ("relatedItems[].identifier.value.url", "triggerDetails.source", "clientToken"):
        assert field in page
    for code in api.ERROR_STATUS:
        assert code in page
    # The site's own scripts load from static files; the reference itself needs none, and nothing is inline.
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []
    assert "style=" not in page


# Built from the same dict that /api/openapi.json serves (the first test above checks they are equal), and
# called through the real WSGI application as a token-holding script would call it.
fuzzed = schemathesis.openapi.from_dict(openapi.document())
fuzzed.app = application


@pytest.fixture
def fuzz_target(support_user, plans, settings):
    """A token, a plan it may use and one of its declarations: random ARNs and ids would only ever meet errors."""
    settings.PORTAL_API_RATE_LIMIT = "100000/m"
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

"""The bad-input catalogue: hostile or malformed input, each refused with a clear error, nothing stored or sent.

One row per input. `channel` says where it enters: the web form ("form"), the service layer that every interface
shares ("service"), another person's resources ("access"), a page a manager opens by its address ("page"), or the
JSON API ("api": `POST /api/startIncident` with a valid bearer token unless the row says otherwise). Every row must
leave the same counts behind: no declaration, related item or audit event, and no call in the sandbox's log.
"""

import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from incidents.errors import PortalError
from incidents.models import ApiToken, AuditEvent, Declaration, RelatedItem
from incidents.services.api_tokens import api_token_revoke
from incidents.services.attachments import RelatedItemInput
from incidents.services.declarations import declaration_create
from tests.api.conftest import ApiClient, assert_error, make_token
from tests.api.conftest import link as api_link
from tests.api.conftest import resource as api_resource
from tests.helpers import declare_post, upload

DECLARE = reverse("incidents:declare")
START = "/api/startIncident"
ARN = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc1234def567890"


@dataclass(frozen=True)
class Case:
    name: str
    channel: str  # "form", "service", "access", "page" or "api"
    payload: dict[str, Any]
    message: str  # what the person is told (a substring of the page / error)
    status: int = 200
    code: str = ""  # api: the envelope's error code
    field: str = ""  # api: the field path the message is reported at ("" = the envelope's own message)


def link(value, **extra):
    return {"kind": "link", "value": value, **extra}


def resource(value):
    return {"kind": "resource", "value": value}


def file(name, content=b"data", content_type="text/plain", **extra):
    return {"kind": "file", "file": (name, content, content_type), **extra}


def many_links(count):
    return [link(f"https://status.example.com/{n}") for n in range(count)]


ONE_KB = 1024

FORM_CASES = [
    # Plans: missing, forged, hidden, deleted, restricted.
    Case("no plan", "form", {"plan": None}, "Choose the response plan that fits this incident."),
    Case("unknown plan id", "form", {"plan": 999_999}, "Choose one of the response plans listed"),
    Case("plan id not a number", "form", {"plan": "1 OR 1=1"}, "Choose one of the response plans listed"),
    Case(
        "forged plan ARN instead of an id",
        "form",
        {"plan": "arn:aws:ssm-incidents::999999999999:response-plan/evil"},
        "Choose one of the response plans listed",
    ),
    Case("negative plan id", "form", {"plan": -1}, "Choose one of the response plans listed"),
    Case("plan id beyond bigint", "form", {"plan": "9" * 30}, "Choose one of the response plans listed"),
    Case("plan id of 4400 digits", "form", {"plan": "9" * 4400}, "Choose one of the response plans listed"),
    Case("hidden plan", "form", {"plan": "@hidden"}, "Choose one of the response plans listed"),
    Case("plan deleted in AWS", "form", {"plan": "@deleted"}, "Choose one of the response plans listed"),
    Case("plan for another group", "form", {"plan": "@restricted"}, "Choose one of the response plans listed"),
    # Titles.
    Case("title over 200 characters", "form", {"title": "x" * 201}, "A title can be at most 200 characters"),
    Case("title of 5000 characters", "form", {"title": "y" * 5000}, "A title can be at most 200 characters"),
    Case("title with a line break", "form", {"title": "two\nlines"}, "Remove the control characters"),
    Case("title with a carriage return", "form", {"title": "a\rb"}, "Remove the control characters"),
    Case("title with a NUL byte", "form", {"title": "nul\x00byte"}, "Null characters are not allowed."),
    Case("title with an escape sequence", "form", {"title": "\x1b[31mred"}, "Remove the control characters"),
    Case("title with a bell", "form", {"title": "ding\x07"}, "Remove the control characters"),
    Case("title with DEL", "form", {"title": "del\x7f"}, "Remove the control characters"),
    Case(
        "script title with a line break",
        "form",
        {"title": "<script>\nalert(1)</script>"},
        "Remove the control characters",
    ),
    # Invisible and text-direction characters (Trojan Source): "invoice\u202efdp.exe" reads as "invoiceexe.pdf".
    Case(
        "title with a right-to-left override", "form", {"title": "invoice\u202efdp.exe"}, "invisible character U+202E"
    ),
    Case("title with a zero-width space", "form", {"title": "Checkout\u200b down"}, "invisible character U+200B"),
    Case("title with a byte-order mark", "form", {"title": "\ufeffCheckout down"}, "invisible character U+FEFF"),
    Case("title with a bidi isolate", "form", {"title": "a\u2067b\u2069"}, "invisible character U+2067"),
    Case("title with a soft hyphen", "form", {"title": "pay\u00adpal"}, "invisible character U+00AD"),
    Case("title with a tag character", "form", {"title": "ok\U000e0041"}, "invisible character U+E0041"),
    # Impact.
    Case("impact 0", "form", {"impact": 0}, "Choose an impact from 1 (critical) to 5 (no impact)."),
    Case("impact 6", "form", {"impact": 6}, "Choose an impact from 1 (critical) to 5 (no impact)."),
    Case("impact -1", "form", {"impact": -1}, "Choose an impact from 1 (critical) to 5 (no impact)."),
    Case("impact a word", "form", {"impact": "high"}, "Choose an impact from 1 (critical) to 5 (no impact)."),
    Case("impact a float", "form", {"impact": "2.5"}, "Choose an impact from 1 (critical) to 5 (no impact)."),
    Case("impact huge", "form", {"impact": "9" * 30}, "Choose an impact from 1 (critical) to 5 (no impact)."),
    # Links.
    Case("javascript: link", "form", {"items": [link("javascript:alert(1)")]}, "not javascript: links"),
    Case("JavaScript: link in capitals", "form", {"items": [link("JaVaScRiPt:alert(1)")]}, "not javascript: links"),
    Case("data: link", "form", {"items": [link("data:text/html,<script>alert(1)</script>")]}, "not data: links"),
    Case("vbscript: link", "form", {"items": [link("vbscript:msgbox(1)")]}, "not vbscript: links"),
    Case("file: link", "form", {"items": [link("file:///etc/passwd")]}, "not file: links"),
    Case("ftp: link", "form", {"items": [link("ftp://example.com/x")]}, "not ftp: links"),
    Case("link without a host", "form", {"items": [link("https://")]}, "Enter a complete web address"),
    Case("link that is just words", "form", {"items": [link("not a link")]}, "Enter a complete web address"),
    Case("protocol-relative link", "form", {"items": [link("//evil.example.com")]}, "Enter a complete web address"),
    Case(
        "link over 1000 characters",
        "form",
        {"items": [link("https://example.com/" + "a" * 990)]},
        "A link can be at most 1000 characters (it has 1010).",
    ),
    Case("link with a space in the host", "form", {"items": [link("https://exa mple.com")]}, "Enter a complete"),
    Case("link row without a value", "form", {"items": [link("", title="dashboard")]}, "Enter the link or ARN"),
    Case(
        "link with a control character",
        "form",
        {"items": [link("https://status.example.com/a\x07b")]},
        "Remove the control characters",
    ),
    Case(
        "link title with a line break",
        "form",
        {"items": [link("https://example.com", title="a\nb")]},
        "Remove the control characters",
    ),
    Case(
        "link with a zero-width space in the host",
        "form",
        {"items": [link("https://paypa\u200bl.com/login")]},
        "invisible character U+200B",
    ),
    Case(
        "link with a right-to-left override",
        "form",
        {"items": [link("https://example.com/\u202egnp.exe")]},
        "invisible character U+202E",
    ),
    Case(
        "link title with a zero-width joiner",
        "form",
        {"items": [link("https://example.com", title="Run\u200dbook")]},
        "invisible character U+200D",
    ),
    Case(
        "link title too long",
        "form",
        {"items": [link("https://example.com", title="t" * 201)]},
        "A title can be at most 200 characters",
    ),
    # Resources.
    Case("malformed ARN", "form", {"items": [resource("notanarn")]}, "Enter an AWS resource ARN"),
    Case("ARN with a short account", "form", {"items": [resource("arn:aws:ec2:us-east-1:12345:i/1")]}, "Enter an AWS"),
    Case("ARN over the limit", "form", {"items": [resource("arn:aws:s3:::" + "b" * 1100)]}, "An ARN can be at most"),
    Case("a link given as a resource", "form", {"items": [resource("https://example.com")]}, "Enter an AWS resource"),
    Case(
        "ARN with an escape sequence",
        "form",
        {"items": [resource("arn:aws:ec2:us-east-1:123456789012:instance/i-1\x1b[2J")]},
        "Remove the control characters",
    ),
    Case(
        "ARN with a right-to-left mark",
        "form",
        {"items": [resource("arn:aws:ec2:us-east-1:123456789012:instance/i-1\u200f")]},
        "invisible character U+200F",
    ),
    Case("unknown item kind", "form", {"items": [{"kind": "shell", "value": "rm -rf /"}]}, "Select a valid choice."),
    # Counts.
    Case("101 related items", "form", {"items": many_links(101)}, "An incident can have at most 100 related items."),
    Case(
        "11 files",
        "form",
        {"items": [file(f"f{n}.txt") for n in range(11)]},
        "Attach at most 10 files (there are 11).",
    ),
    # Files.
    Case("empty file", "form", {"items": [file("empty.log", b"")]}, "“empty.log” is empty"),
    Case("oversized file", "form", {"items": [file("big.log", b"x" * (2 * ONE_KB))]}, "files can be at most 1 KB"),
    Case("executable", "form", {"items": [file("run.exe", b"MZ")]}, "“run.exe” is not an allowed type."),
    Case("double extension .pdf.exe", "form", {"items": [file("report.pdf.exe", b"MZ")]}, "is not an allowed type"),
    Case("disguised .exe.txt", "form", {"items": [file("invoice.exe.txt")]}, "looks like a disguised .exe file"),
    Case("disguised .html.png", "form", {"items": [file("pic.html.png")]}, "looks like a disguised .html file"),
    Case("svg image (scriptable)", "form", {"items": [file("logo.svg", b"<svg onload=alert(1)>")]}, "not an allowed"),
    Case("html page", "form", {"items": [file("page.html", b"<script>alert(1)</script>")]}, "not an allowed type"),
    Case("no extension", "form", {"items": [file("README")]}, "“README” is not an allowed type."),
    Case("path traversal to /etc/passwd", "form", {"items": [file("../../../etc/passwd")]}, "not an allowed type"),
    Case("traversal to a dotfile", "form", {"items": [file("../../.bashrc")]}, "not an allowed type"),
    Case("windows traversal", "form", {"items": [file("..\\..\\boot.ini")]}, "not an allowed type"),
    Case("file row without a file", "form", {"items": [{"kind": "file"}]}, "Choose a file to attach, or remove"),
    # The form itself.
    Case("damaged idempotency key", "form", {"key": "not-a-uuid"}, "This form is damaged"),
    Case("missing idempotency key", "form", {"key": ""}, "This field is required."),
]

SERVICE_CASES = [
    Case("hidden plan via the service", "service", {"plan": "@hidden"}, "not available to you"),
    Case("deleted plan via the service", "service", {"plan": "@deleted"}, "not available to you"),
    Case("restricted plan via the service", "service", {"plan": "@restricted"}, "not available to you"),
    Case("overlong title via the service", "service", {"title": "x" * 201}, "at most 200 characters"),
    Case("control characters via the service", "service", {"title": "a\nb"}, "Remove the control characters"),
    Case("bidi override via the service", "service", {"title": "a\u202eb"}, "invisible character U+202E"),
    Case(
        "zero-width link via the service",
        "service",
        {"items": [link("https://exa\u200bmple.com")]},
        "invisible character U+200B",
    ),
    Case("impact 9 via the service", "service", {"impact": 9}, "Choose an impact from 1"),
    Case("impact True via the service", "service", {"impact": True}, "Choose an impact from 1"),
    Case("javascript: link via the service", "service", {"items": [link("javascript:alert(1)")]}, "not javascript"),
    Case("bad ARN via the service", "service", {"items": [resource("arn:nope")]}, "Enter an AWS resource ARN"),
    Case("unknown kind via the service", "service", {"items": [{"kind": "shell", "value": "x"}]}, "A related item is"),
    Case("101 items via the service", "service", {"items": many_links(101)}, "at most 100 related items"),
    Case("11 files via the service", "service", {"items": [file(f"{n}.txt") for n in range(11)]}, "at most 10 files"),
    Case(
        "traversal name from an API payload",
        "service",
        {"items": [{"kind": "file", "raw_file": ("../../etc/x.txt", b"data")}]},
        "cannot contain folders",
    ),
    Case("backslash name via the service", "service", {"items": [file("..\\x.txt")]}, "cannot contain folders"),
    Case("NUL in a file name via the service", "service", {"items": [file("a\x00.txt")]}, "cannot contain folders"),
    Case("empty file via the service", "service", {"items": [file("e.txt", b"")]}, "is empty"),
    Case("oversized via the service", "service", {"items": [file("b.txt", b"x" * 2048)]}, "at most 1 KB"),
    Case("file kind without a file", "service", {"items": [{"kind": "file"}]}, "Choose a file to attach"),
]

MANY_YEARS_AHEAD = "Choose a date from 1970-01-01 to 2999-12-31."

# Addresses a manager can type: every one answered with a clear message, never a crash (or a download cut short).
PAGE_CASES = [
    Case(
        "history to the last day of the calendar",
        "page",
        {"path": "/declarations/?date_to=9999-12-31"},
        MANY_YEARS_AHEAD,
    ),
    Case(
        "history from the first day of the calendar",
        "page",
        {"path": "/declarations/?date_from=0001-01-01"},
        MANY_YEARS_AHEAD,
    ),
    Case(
        "summary to the last day of the calendar",
        "page",
        {"path": "/declarations/summary/?date_to=9999-12-31"},
        MANY_YEARS_AHEAD,
    ),
    Case(
        "summary in the calendar's first week",
        "page",
        {"path": "/declarations/summary/?date_from=0001-01-01&date_to=0001-01-03"},
        MANY_YEARS_AHEAD,
    ),
    Case(
        "export to the last day of the calendar",
        "page",
        {"path": "/declarations/export.csv?date_to=9999-12-31"},
        MANY_YEARS_AHEAD,
        status=400,
    ),
    Case(
        "export from the first day of the calendar",
        "page",
        {"path": "/declarations/export.csv?date_from=0001-01-01"},
        MANY_YEARS_AHEAD,
        status=400,
    ),
    Case("declaration id beyond bigint", "page", {"path": "/declarations/99999999999999999999999/"}, "", status=404),
    Case(
        "file id beyond bigint",
        "page",
        {"path": "/declarations/1/files/99999999999999999999999/"},
        "",
        status=404,
    ),
    Case(
        "declare link naming a superscript plan", "page", {"path": "/declare/?plan=%C2%B2"}, "is not available to you"
    ),
    Case(
        "declare link naming plan 10^4400", "page", {"path": "/declare/?plan=" + "9" * 4400}, "is not available to you"
    ),
    Case(
        "declare link naming a plan beyond bigint", "page", {"path": "/declare/?plan=" + "9" * 30}, "is not available"
    ),
    Case("a forged history cursor", "page", {"path": "/declarations/?cursor=eyJhIjoxfQ:forged:sig"}, "Declarations"),
]

ACCESS_CASES = [
    Case("another user's declaration", "access", {"path": "declaration"}, "", status=404),
    Case("retry another user's declaration", "access", {"path": "retry"}, "", status=404),
    Case("another user's file", "access", {"path": "file"}, "", status=404),
    Case("missing CSRF token", "access", {"path": "no-csrf"}, "", status=403),
    Case("declaration id that is not a number", "access", {"path": "/declarations/1%20OR%201=1/"}, "", status=404),
]


def api_case(name, payload, message, *, field="", code="VALIDATION_ERROR", status=400):
    return Case(name, "api", payload, message, status=status, code=code, field=field)


TRIGGER = {"source": "com.example.alerting", "timestamp": "2026-01-01T00:00:00Z"}
ITEM_URL = "relatedItems[0].identifier.value.url"
NOT_AVAILABLE = "No response plan with this ARN is available to you"
IMPACT = "Choose an impact from 1 (critical) to 5 (no impact)."

API_CASES = [
    # Titles.
    api_case("api: title over 200 characters", {"body": {"title": "x" * 201}}, "at most 200 characters", field="title"),
    api_case(
        "api: title with a line break", {"body": {"title": "a\nb"}}, "Remove the control characters", field="title"
    ),
    api_case(
        "api: title with an escape", {"body": {"title": "\x1b[2J"}}, "Remove the control characters", field="title"
    ),
    api_case("api: title with a NUL", {"body": {"title": "nul\x00"}}, "Null characters are not allowed", field="title"),
    # Plans.
    api_case(
        "api: forged plan ARN",
        {"body": {"responsePlanArn": "arn:aws:ssm-incidents::999999999999:response-plan/evil"}},
        NOT_AVAILABLE,
        field="responsePlanArn",
    ),
    api_case(
        "api: hidden plan's ARN", {"body": {"responsePlanArn": "@hidden"}}, NOT_AVAILABLE, field="responsePlanArn"
    ),
    api_case(
        "api: plan deleted in AWS", {"body": {"responsePlanArn": "@deleted"}}, NOT_AVAILABLE, field="responsePlanArn"
    ),
    api_case(
        "api: plan for another group",
        {"body": {"responsePlanArn": "@restricted"}},
        NOT_AVAILABLE,
        field="responsePlanArn",
    ),
    # Impact.
    api_case("api: impact 0", {"body": {"impact": 0}}, IMPACT, field="impact"),
    api_case("api: impact 6", {"body": {"impact": 6}}, IMPACT, field="impact"),
    api_case("api: impact as a string", {"body": {"impact": "1"}}, "Must be a whole number", field="impact"),
    api_case("api: impact true", {"body": {"impact": True}}, "Must be a whole number", field="impact"),
    api_case("api: impact 1.5", {"body": {"impact": 1.5}}, "Must be a whole number", field="impact"),
    # Related items.
    api_case(
        "api: javascript: URL",
        {"body": {"relatedItems": [api_link("javascript:alert(1)")]}},
        "not javascript: links",
        field=ITEM_URL,
    ),
    api_case(
        "api: data: URL",
        {"body": {"relatedItems": [api_link("data:text/html,<script>alert(1)</script>")]}},
        "not data: links",
        field=ITEM_URL,
    ),
    api_case(
        "api: 101 related items",
        {"body": {"relatedItems": [api_link(f"https://status.example.com/{n}") for n in range(101)]}},
        "at most 100 related items",
        field="relatedItems",
    ),
    api_case(
        "api: generatedId present",
        {"body": {"relatedItems": [{**api_link("https://x.example"), "generatedId": "related-item/OTHER/x"}]}},
        "Incident Manager assigns generatedId itself",
        field="relatedItems[0].generatedId",
    ),
    api_case(
        "api: ATTACHMENT identifier",
        {"body": {"relatedItems": [{"identifier": {"type": "ATTACHMENT", "value": {"arn": "arn:aws:s3:::b/k"}}}]}},
        "files can be attached in the web form only",
        field="relatedItems[0].identifier.type",
    ),
    api_case(
        "api: METRIC identifier",
        {"body": {"relatedItems": [{"identifier": {"type": "METRIC", "value": {"metricDefinition": "{}"}}}]}},
        "“METRIC” cannot be sent here",
        field="relatedItems[0].identifier.type",
    ),
    # Invisible and text-direction characters, wherever text is sent.
    api_case(
        "api: title with a right-to-left override",
        {"body": {"title": "invoice\u202efdp.exe"}},
        "invisible character U+202E",
        field="title",
    ),
    api_case(
        "api: URL with a zero-width space",
        {"body": {"relatedItems": [api_link("https://paypa\u200bl.com")]}},
        "invisible character U+200B",
        field=ITEM_URL,
    ),
    api_case(
        "api: ARN with a bidi isolate",
        {"body": {"relatedItems": [api_resource(ARN + "\u2066")]}},
        "invisible character U+2066",
        field="relatedItems[0].identifier.value.arn",
    ),
    api_case(
        "api: related item title with a zero-width joiner",
        {"body": {"relatedItems": [api_link("https://example.com", "Run\u200dbook")]}},
        "invisible character U+200D",
        field="relatedItems[0].title",
    ),
    # Text JSON can carry but no system can store: a lone surrogate (UTF-8 cannot encode it).
    api_case(
        "api: lone surrogate in the title",
        {"raw": '{"responsePlanArn": "{plan}", "title": "broken \\ud800 text"}'},
        "Invalid Unicode",
        field="title",
    ),
    api_case(
        "api: lone low surrogate in a URL",
        {
            "raw": '{"responsePlanArn": "{plan}", "relatedItems": [{"identifier": {"type": "OTHER", '
            '"value": {"url": "https://example.com/\\udc00"}}}]}'
        },
        "Invalid Unicode",
        field=ITEM_URL,
    ),
    api_case(
        "api: JSON nested 100,000 levels deep",
        {"raw": '{"title": ' + "[" * 100_000 + "]" * 100_000 + "}"},
        "nests arrays or objects too deeply",
        code="MALFORMED_REQUEST",
    ),
    # Trigger details.
    api_case(
        "api: trigger time at the calendar's end",
        {"body": {"triggerDetails": {**TRIGGER, "timestamp": "9999-12-31T23:59:59-01:00"}}},
        "more than a day in the future",
        field="triggerDetails.timestamp",
    ),
    api_case(
        "api: trigger time at the calendar's start",
        {"body": {"triggerDetails": {**TRIGGER, "timestamp": "0001-01-01T00:00:00+01:00"}}},
        "cannot be before 1970",
        field="triggerDetails.timestamp",
    ),
    api_case(
        "api: trigger source with a leading space before aws.",
        {"body": {"triggerDetails": {**TRIGGER, "source": " aws.ssm"}}},
        "reserved for AWS",
        field="triggerDetails.source",
    ),
    api_case(
        "api: trigger source is the portal's own",
        {"body": {"triggerDetails": {**TRIGGER, "source": "com.example.incident-portal"}}},
        "the portal's own source",
        field="triggerDetails.source",
    ),
    api_case(
        "api: rawData that leaves no room for the declarer",
        {"body": {"triggerDetails": {**TRIGGER, "rawData": "r" * 9_900}}},
        "the portal sends it to AWS inside its own rawData",
        field="triggerDetails.rawData",
    ),
    api_case(
        "api: trigger source aws.foo",
        {"body": {"triggerDetails": {**TRIGGER, "source": "aws.foo"}}},
        "reserved for AWS",
        field="triggerDetails.source",
    ),
    # NUL bytes (PostgreSQL's text cannot hold them) and other control characters, wherever they are sent.
    api_case(
        "api: resource ARN with a NUL",
        {"body": {"relatedItems": [api_resource("arn:aws:w:x::n\x00")]}},
        "Null characters are not allowed",
        field="relatedItems[0].identifier.value.arn",
    ),
    api_case(
        "api: resource ARN with a bell",
        {"body": {"relatedItems": [api_resource(ARN + "\x07")]}},
        "Remove the control characters",
        field="relatedItems[0].identifier.value.arn",
    ),
    api_case(
        "api: URL with a control character",
        {"body": {"relatedItems": [api_link("https://status.example.com/a\x1fb")]}},
        "Remove the control characters",
        field=ITEM_URL,
    ),
    api_case(
        "api: plan ARN with a NUL",
        {"body": {"responsePlanArn": "arn:aws:ssm-incidents::123456789012:response-plan/web\x00"}},
        "Null characters are not allowed",
        field="responsePlanArn",
    ),
    api_case(
        "api: rawData with a NUL",
        {"body": {"triggerDetails": {**TRIGGER, "rawData": '{"alarm": "a\x00"}'}}},
        "Null characters are not allowed",
        field="triggerDetails.rawData",
    ),
    api_case(
        "api: rawData over 10000 characters",
        {"body": {"triggerDetails": {**TRIGGER, "rawData": "r" * 10_001}}},
        "at most 10000 characters (it has 10001)",
        field="triggerDetails.rawData",
    ),
    # The body itself.
    api_case("api: unknown top-level field", {"body": {"summary": "x"}}, "Unknown field", field="summary"),
    api_case("api: malformed JSON", {"raw": '{"title": '}, "not valid JSON", code="MALFORMED_REQUEST"),
    api_case(
        "api: form-encoded body",
        {"raw": "title=x", "content_type": "application/x-www-form-urlencoded"},
        "Content-Type: application/json",
        code="UNSUPPORTED_MEDIA_TYPE",
        status=415,
    ),
    api_case(
        "api: body over the limit",
        {"body": {"title": "x" * (600 * ONE_KB)}},
        "The body can be at most",
        code="PAYLOAD_TOO_LARGE",
        status=413,
    ),
    # Who is asking.
    api_case(
        "api: another user's declaration id",
        {"get": "theirs"},
        "is visible to you",
        code="NOT_FOUND",
        status=404,
    ),
    api_case("api: a revoked token", {"token": "revoked"}, "revoked", code="UNAUTHENTICATED", status=401),
    api_case("api: no token", {"token": None}, "Authorization: Bearer", code="UNAUTHENTICATED", status=401),
]

CASES = FORM_CASES + SERVICE_CASES + PAGE_CASES + ACCESS_CASES + API_CASES


def test_the_catalogue_has_at_least_sixty_hostile_inputs():
    assert len(CASES) >= 60
    assert len({case.name for case in CASES}) == len(CASES), "every row has its own name"


# --- Sending a row through its channel -------------------------------------------------------------------


def resolve_plan(value, plans):
    if value is None or not isinstance(value, str) or not value.startswith("@"):
        return value
    return {"@hidden": plans["internal-tooling"], "@deleted": plans["data-pipeline-delay"]}.get(
        value, plans["security-event"]
    )


def uploaded(item):
    if "file" not in item:
        return item
    name, content, content_type = item["file"]
    return {**item, "file": upload(name, content, content_type)}


def send_form(client, case, plans):
    payload = dict(case.payload)
    plan = resolve_plan(payload.pop("plan", plans["website-outage"]), plans)
    items = [uploaded(item) for item in payload.pop("items", [])]
    key = payload.pop("key", uuid.uuid4().hex)
    data = declare_post(plan, items=items, **payload)
    data["idempotency_key"] = key
    response = client.post(DECLARE, data)
    return response.status_code, response.content.decode()


def raw_file(item):
    """A file whose name was never cleaned by Django's multipart parser (as an API's JSON body could carry)."""
    if "raw_file" not in item:
        return None
    name, content = item["raw_file"]
    return ContentFile(content, name=name)


def send_service(user, case, plans):
    payload = dict(case.payload)
    plan = resolve_plan(payload.pop("plan", plans["website-outage"]), plans)
    items = [
        RelatedItemInput(
            kind=item["kind"],
            value=item.get("value", ""),
            title=item.get("title", ""),
            upload=uploaded(item)["file"] if "file" in item else raw_file(item),
        )
        for item in payload.pop("items", [])
    ]
    with pytest.raises(PortalError) as refused:
        declaration_create(declared_by=user, response_plan=plan, related_items=items, **payload)
    return 200, refused.value.message


def send_access(client, case, plans, owner):
    declaration, _ = declaration_create(
        declared_by=owner,
        response_plan=plans["website-outage"],
        related_items=[RelatedItemInput(kind="file", upload=upload("theirs.txt", b"private"))],
    )
    file_item = declaration.related_items.get()
    target = case.payload["path"]
    if target == "declaration":
        response = client.get(declaration.get_absolute_url())
    elif target == "retry":
        Declaration.objects.filter(pk=declaration.pk).update(state=Declaration.State.FAILED)
        response = client.post(reverse("incidents:declaration-retry", args=[declaration.pk]))
    elif target == "file":
        response = client.get(reverse("incidents:related-item-download", args=[declaration.pk, file_item.pk]))
    elif target == "no-csrf":
        strict = Client(enforce_csrf_checks=True)
        strict.force_login(client.session_user)
        response = strict.post(DECLARE, declare_post(plans["website-outage"]))
    else:
        response = client.get(target)
    return response.status_code, response.content.decode(), declaration


def send_api(case, plans, user, owner):
    """POST the row's body (over a valid plan's ARN) to /api/startIncident; returns the response and the cleanup."""
    payload = case.payload
    secret = make_token(user)
    if payload.get("token", "valid") is None:
        secret = None
    elif payload.get("token") == "revoked":
        api_token_revoke(token=ApiToken.objects.get(owner=user), actor=user)
    api = ApiClient(Client(), secret)
    if payload.get("get") == "theirs":
        theirs, _ = declaration_create(declared_by=owner, response_plan=plans["website-outage"])
        return lambda: api.get(f"/api/declarations/{theirs.pk}")
    if "raw" in payload:
        raw = payload["raw"].replace("{plan}", plans["website-outage"].arn)
        return lambda: api.post(START, raw=raw, content_type=payload.get("content_type", "application/json"))
    body = {"responsePlanArn": plans["website-outage"].arn, **payload.get("body", {})}
    body["responsePlanArn"] = getattr(resolve_plan(body["responsePlanArn"], plans), "arn", body["responsePlanArn"])
    return lambda: api.post(START, body)


def snapshot(sandbox):
    return {
        "declarations": Declaration.objects.count(),
        "items": RelatedItem.objects.count(),
        "audit": AuditEvent.objects.filter(declaration__isnull=False).count(),
        "aws_calls": len(sandbox._call("GET", "/_sandbox/calls")["calls"]),
    }


@pytest.fixture
def hostile_plans(plans):
    from django.contrib.auth.models import Group

    plans["internal-tooling"].is_visible = False
    plans["internal-tooling"].save()
    plans["data-pipeline-delay"].deleted_in_aws = True
    plans["data-pipeline-delay"].save()
    plans["security-event"].allowed_groups.set([Group.objects.get_or_create(name="managers")[0]])
    return plans


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input_is_refused_clearly_and_nothing_is_stored_or_sent(
    case, client, support_user, other_support_user, manager_client, hostile_plans, sandbox, settings
):
    settings.PORTAL_MAX_FILE_BYTES = ONE_KB
    client.force_login(support_user)
    client.session_user = support_user
    if case.channel == "page":
        before = snapshot(sandbox)
        response = manager_client.get(case.payload["path"])
        # A streamed answer (the export) is read to its end: an error after its first line would surface here.
        body = b"".join(response.streaming_content if response.streaming else [response.content]).decode()
        assert response.status_code == case.status, body[:2000]
        assert case.message in body.replace("&#x27;", "'"), body[:3000]
        assert "Traceback" not in body
        assert snapshot(sandbox) == before
        return
    if case.channel == "access":
        status, body, _ = send_access(client, case, hostile_plans, other_support_user)
        before = snapshot(sandbox)  # the other person's declaration exists; nothing more may appear
        assert status == case.status
        assert "theirs.txt" not in body and "Traceback" not in body
        assert snapshot(sandbox) == before
        return
    if case.channel == "api":
        send = send_api(case, hostile_plans, support_user, other_support_user)
        before = snapshot(sandbox)  # after the row's setup: the other person's declaration may exist
        error = assert_error(send(), case.status, case.code)
        if case.field:
            assert case.message in error["details"].get(case.field, ""), error
        else:
            assert case.message in error["message"], error
        assert snapshot(sandbox) == before, "nothing stored, nothing sent to AWS or S3"
        return
    before = snapshot(sandbox)
    if case.channel == "form":
        status, body = send_form(client, case, hostile_plans)
        assert status == case.status
        assert "Nothing was declared yet" in body
    else:
        status, body = send_service(support_user, case, hostile_plans)
    escaped = case.message.replace("'", "&#x27;")
    assert case.message in body or escaped in body, body[:3000]
    assert snapshot(sandbox) == before, "nothing stored, nothing sent to AWS or S3"


# --- Accepted, but made harmless ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "title",
    [
        "<script>alert(document.cookie)</script>",
        '"><img src=x onerror=alert(1)>',
        "</title><script>alert(1)</script>",
        "{{ settings.SECRET_KEY }} {% debug %}",
    ],
)
def test_html_and_template_syntax_in_a_title_is_stored_as_text_and_escaped_everywhere(
    support_client, support_user, plans, title
):
    response = support_client.post(DECLARE, declare_post(plans["website-outage"], title=title))
    assert response.status_code == 302
    declaration = Declaration.objects.get()
    assert declaration.title == title, "stored exactly as typed"
    page = support_client.get(declaration.get_absolute_url()).content.decode()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;" in page or "{{ settings.SECRET_KEY }}" in page
    assert "test-only-not-secret" not in page


@pytest.mark.django_db
@pytest.mark.parametrize("title", ["<script>alert(document.cookie)</script>", '"><img src=x onerror=alert(1)>'])
def test_html_in_a_title_sent_through_the_api_is_answered_as_json_and_escaped_on_the_web(
    support_client, support_user, plans, title
):
    api = ApiClient(Client(), make_token(support_user))
    response = api.post(START, {"responsePlanArn": plans["website-outage"].arn, "title": title})
    assert response.status_code == 202
    assert response["Content-Type"] == "application/json"
    assert response["X-Content-Type-Options"] == "nosniff", "a browser never sniffs the answer as HTML"
    declaration = Declaration.objects.get(pk=response.json()["data"]["id"])
    assert declaration.title == title, "stored exactly as sent"

    read_back = api.get(f"/api/declarations/{declaration.pk}")
    assert read_back["Content-Type"] == "application/json"
    assert read_back.json()["data"]["title"] == title
    page = support_client.get(declaration.get_absolute_url()).content.decode()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;" in page


@pytest.mark.django_db
def test_a_lying_content_type_is_ignored_the_stored_type_follows_the_checked_extension(
    support_client, plans, sandbox, s3
):
    lying = upload("notes.txt", b"plain notes", content_type="application/x-msdownload")
    response = support_client.post(
        DECLARE, declare_post(plans["website-outage"], items=[{"kind": "file", "file": lying}])
    )
    assert response.status_code == 302
    item = RelatedItem.objects.get()
    assert item.content_type == "text/plain"
    assert s3.head_object(Bucket=item.s3_bucket, Key=item.s3_key)["ContentType"] == "text/plain"


@pytest.mark.django_db
def test_a_traversing_file_name_from_a_browser_is_reduced_to_its_last_part(support_client, plans):
    traversing = upload("../../../../tmp/evil.txt", b"x")
    response = support_client.post(
        DECLARE, declare_post(plans["website-outage"], items=[{"kind": "file", "file": traversing}])
    )
    assert response.status_code == 302
    item = RelatedItem.objects.get()
    assert item.file_name == "evil.txt"
    assert ".." not in item.s3_key and item.s3_key.startswith("declarations/")


# --- Errors and hints tied to their controls ----------------------------------------------------------

FORM_PAGES = [
    ("support_client", "get", "/declare/", None),
    (
        "support_client",
        "post",
        "/declare/",
        {"idempotency_key": "k", "response_plan": "", "title": "x" * 201, "items-TOTAL_FORMS": "0"},
    ),
    ("manager_client", "get", "/declarations/", None),
    ("manager_client", "get", "/declarations/?date_from=2026-10-10&date_to=2026-10-01&q=ab", None),
    ("manager_client", "get", "/tokens/", None),
    ("manager_client", "post", "/tokens/", {"name": ""}),
    ("portal_admin_client", "get", "/plans/{plan}/", None),
    ("portal_admin_client", "post", "/plans/{plan}/", {"order": "lots", "display_name": "x" * 201}),
    ("portal_admin_client", "get", "/users/new/", None),
    ("portal_admin_client", "post", "/users/new/", {"username": "", "password": "short"}),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("client_name", "method", "path", "data"), FORM_PAGES)
def test_every_control_points_at_hints_and_errors_that_are_on_the_page(request, plans, client_name, method, path, data):
    """A screen reader reads a control's hint and error through aria-describedby: every id it names must exist
    (Django names `<id>_helptext` and `<id>_error` for fields with help text or errors)."""
    client = request.getfixturevalue(client_name)
    path = path.format(plan=plans["website-outage"].pk)
    response = client.get(path) if method == "get" else client.post(path, data)
    assert response.status_code == 200
    html = response.content.decode()
    ids = set(re.findall(r'\bid="([^"]+)"', html))
    described_by = [ref for refs in re.findall(r'aria-describedby="([^"]*)"', html) for ref in refs.split()]
    assert described_by, "no control on the page has a hint or an error to point at"
    assert sorted(set(described_by) - ids) == []
    if method == "post" or "date_from" in path:
        # The page shows errors, and a control says where its error is.
        assert any(ref.endswith(("_error", "-error")) and ref in ids for ref in described_by)

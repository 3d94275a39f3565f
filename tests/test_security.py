"""Security hardening a visitor or an attacker would notice: headers, lockouts, error pages, logs."""

import io
import json
import logging
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.urls import path, reverse
from django.utils import timezone

from incidents.services.declarations import declaration_create
from incidents.services.starting import declaration_start
from portal.logging import JsonFormatter
from portal.urls import urlpatterns as portal_urlpatterns
from tests.conftest import ROOT

SECRET_MARKER = "test-only-not-secret"  # the test settings' SECRET_KEY


def explode(request):
    raise RuntimeError(f"boom with a secret nearby: {SECRET_MARKER}")


# A URLconf with one view that crashes, to see what a visitor gets from a 500.
urlpatterns = [*portal_urlpatterns, path("boom/", explode)]


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/declare/", "/accounts/login/", "DETAIL"])
def test_every_page_sends_a_strict_content_security_policy_and_frame_denial(support_client, support_user, plans, page):
    if page == "DETAIL":
        declaration, _ = declaration_create(declared_by=support_user, response_plan=plans["website-outage"])
        page = declaration.get_absolute_url()
    response = support_client.get(page)
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    # Only the portal's own files (and, where a page needs one, a per-response nonce) may run.
    assert "script-src 'self'" in csp and "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    body = response.content.decode()
    assert " style=" not in body and "<style" not in body
    assert " onclick=" not in body and " onload=" not in body


def production_setting(*names: str) -> dict:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.production",
        "SECRET_KEY": "p" * 60,
        "ALLOWED_HOSTS": "portal.example.com",
    }
    code = (
        "import json, django; from django.conf import settings; django.setup();"
        f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}, default=str))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_cookies_are_secure_and_hsts_is_on():
    values = production_setting(
        "DEBUG",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "SECURE_HSTS_SECONDS",
        "SECURE_SSL_REDIRECT",
        "X_FRAME_OPTIONS",
        "LOG_FORMAT",
    )
    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"] and values["SESSION_COOKIE_HTTPONLY"]
    assert values["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["X_FRAME_OPTIONS"] == "DENY"
    assert values["LOG_FORMAT"] == "json"


def test_uploads_are_limited_in_size_and_number(settings):
    assert settings.PORTAL_MAX_FILE_BYTES <= 10 * 1024 * 1024
    assert settings.DATA_UPLOAD_MAX_NUMBER_FILES <= settings.PORTAL_MAX_FILES + 5
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE <= 5 * 1024 * 1024


# --- Login throttling ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_repeated_wrong_passwords_lock_the_account_until_the_cool_off_passes(client, support_user, settings):
    login = reverse("login")
    wrong = {"username": "sam.support", "password": "not-the-password"}
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(login, wrong)
    right = {"username": "sam.support", "password": "a-long-test-password"}
    locked = client.post(login, right)
    assert locked.status_code == 429, "even the right password is refused while locked"
    assert "_auth_user_id" not in client.session

    # The cool-off passes (the failures age out); the right password works again.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(hours=settings.AXES_COOLOFF_TIME, minutes=1))
    response = client.post(login, right)
    assert response.status_code == 302
    assert response["Location"] == reverse("incidents:declare")


# --- Error pages show no internals ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_crash_shows_a_plain_error_page_without_traceback_or_secrets(client, support_user, settings):
    settings.ROOT_URLCONF = __name__
    client.raise_request_exception = False
    client.force_login(support_user)
    response = client.get("/boom/")
    body = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong" in body
    assert "Traceback" not in body and "RuntimeError" not in body and SECRET_MARKER not in body


@pytest.mark.django_db
def test_not_found_forbidden_and_bad_request_pages_are_the_portals_own(client, support_user, django_user_model):
    client.force_login(support_user)
    missing = client.get("/declarations/999999/")
    assert missing.status_code == 404
    assert "There is nothing here, or it is not visible to you." in missing.content.decode()
    nobody = django_user_model.objects.create_user(username="nobody", password="a-long-test-password")
    client.force_login(nobody)
    forbidden = client.get("/declare/")
    assert forbidden.status_code == 403
    assert "ask an admin for a role" in forbidden.content.decode()
    bad_host = client.get("/declare/", headers={"host": "evil.example.com"})
    assert bad_host.status_code == 400
    assert "Bad request" in bad_host.content.decode()
    for response in (missing, forbidden, bad_host):
        assert "Traceback" not in response.content.decode()


# --- Structured logs -----------------------------------------------------------------------------------


def test_the_json_formatter_keeps_known_context_and_drops_anything_else():
    record = logging.LogRecord("incidents.services", logging.INFO, __file__, 1, "declaration %s", (7,), None)
    record.declaration_id = 7
    record.client_token = "portal-abc"
    record.password = "hunter2"  # noqa: S105 - must never be written
    record.aws_secret_access_key = "AKIA-secret"
    line = JsonFormatter().format(record)
    document = json.loads(line)
    assert document["message"] == "declaration 7"
    assert document["declaration_id"] == 7 and document["client_token"] == "portal-abc"
    assert "hunter2" not in line and "AKIA-secret" not in line


def test_logged_exceptions_carry_no_traceback():
    try:
        raise ValueError("bad value")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    document = json.loads(JsonFormatter().format(record))
    assert document["exception"] == "ValueError"
    assert "Traceback" not in json.dumps(document)


@pytest.mark.django_db
def test_each_step_of_a_declaration_is_logged_as_json_with_its_context(support_user, plans, sandbox):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("incidents")
    logger.addHandler(handler)
    try:
        declaration, _ = declaration_create(declared_by=support_user, response_plan=plans["website-outage"])
        declaration_start(declaration_id=declaration.pk, final_attempt=True)
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    steps = [line for line in lines if line.get("declaration_id") == declaration.pk]
    assert [line["event"] for line in steps] == ["declaration.queued", "declaration.starting", "declaration.started"]
    assert {line["client_token"] for line in steps} == {declaration.client_token}
    assert [line["state"] for line in steps] == ["queued", "starting", "started"]
    assert steps[1]["attempt"] == 1
    assert SECRET_MARKER not in stream.getvalue() and "AWS_SECRET" not in stream.getvalue()

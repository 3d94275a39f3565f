"""Who may call the API: a live personal token, whose owner's current role decides what it may do."""

import hashlib
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from incidents import roles
from incidents.models import ApiToken, Declaration
from incidents.services.api_tokens import api_token_create, api_token_revoke
from incidents.services.declarations import declaration_create
from incidents.services.rate_limits import rate_limit_parse
from tests.api.conftest import ApiClient, api_for, assert_error, make_token
from tests.conftest import ROOT, make_user

pytestmark = pytest.mark.django_db
ENDPOINTS = [("get", "/api/responsePlans"), ("get", "/api/declarations/1"), ("post", "/api/startIncident")]


def call(api: ApiClient, method: str, path: str):
    return api.get(path) if method == "get" else api.post(path, {})


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_without_a_token_the_api_answers_401_never_a_login_redirect(client, method, path):
    response = call(ApiClient(client, None), method, path)
    assert "login" not in response.get("Location", "")
    error = assert_error(response, 401, "UNAUTHENTICATED")
    assert "Authorization: Bearer" in error["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Token ipt_x", "Basic c2FtOnB3", "Bearer", "Bearer ", "ipt_abc"])
def test_other_authorization_schemes_are_refused(client, header):
    response = client.get("/api/responsePlans", headers={"Authorization": header})
    assert_error(response, 401, "UNAUTHENTICATED")


def test_an_unknown_token_is_refused(client, support_token):
    forged = support_token[:-4] + "AAAA"
    error = assert_error(ApiClient(client, forged).get("/api/responsePlans"), 401, "UNAUTHENTICATED")
    assert error["message"] == "This API token is not valid."


def test_a_revoked_token_stops_working_at_once(api, support_user):
    assert api.get("/api/responsePlans").status_code == 200
    api_token_revoke(token=ApiToken.objects.get(), actor=support_user)
    error = assert_error(api.get("/api/responsePlans"), 401, "UNAUTHENTICATED")
    assert "revoked" in error["message"]


def test_an_expired_token_is_refused(client, support_user):
    secret = make_token(support_user, expires_at=timezone.now() + timedelta(days=1))
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    error = assert_error(ApiClient(client, secret).get("/api/responsePlans"), 401, "UNAUTHENTICATED")
    assert "expired" in error["message"]


def test_a_disabled_accounts_token_is_refused(api, support_user):
    support_user.is_active = False
    support_user.save()
    assert "disabled" in assert_error(api.get("/api/responsePlans"), 401, "UNAUTHENTICATED")["message"]


def test_a_session_cookie_alone_does_not_authenticate(support_client, plans):
    assert support_client.get("/declare/").status_code == 200  # the session itself is valid
    assert_error(support_client.get("/api/responsePlans"), 401, "UNAUTHENTICATED")
    response = support_client.post(
        "/api/startIncident", {"responsePlanArn": plans["website-outage"].arn}, content_type="application/json"
    )
    assert_error(response, 401, "UNAUTHENTICATED")
    assert Declaration.objects.count() == 0


def test_the_token_acts_as_its_owner_even_beside_another_users_session(client, plans, manager_user, support_token):
    client.force_login(manager_user)
    response = ApiClient(client, support_token).start({"responsePlanArn": plans["website-outage"].arn})
    assert response.status_code == 202
    assert Declaration.objects.get().declared_by.username == "sam.support"


def test_only_a_hash_of_the_secret_is_stored(support_user):
    token, secret = api_token_create(owner=support_user, name="runbook")
    assert token.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    assert secret not in [str(value) for value in stored.values()]
    assert secret.startswith(token.prefix) and len(token.prefix) < len(secret) / 4


def test_use_is_recorded_on_the_token(api):
    assert ApiToken.objects.get().last_used_at is None
    api.get("/api/responsePlans")
    assert ApiToken.objects.get().last_used_at is not None


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_an_account_without_a_role_is_forbidden(django_user_model, method, path):
    nobody = make_user(django_user_model, "nobody", role=roles.SUPPORT)
    api = api_for(nobody)
    nobody.groups.clear()  # demoted after making the token: the token loses the rights with the role
    error = assert_error(call(api, method, path), 403, "FORBIDDEN")
    assert "no role" in error["message"]


def test_response_plans_lists_only_the_plans_the_caller_may_use(api, plans):
    hidden, closed = plans["website-outage"], plans["security-event"]
    hidden.is_visible = False
    hidden.save()
    closed.allowed_groups.add(Group.objects.get(name=roles.MANAGER))
    plans["payments-degraded"].when_to_use = "Checkout is failing."
    plans["payments-degraded"].save()

    response = api.get("/api/responsePlans")

    assert response.status_code == 200
    listed = {plan["name"]: plan for plan in response.json()["data"]["response_plans"]}
    assert set(listed) == {"payments-degraded", "data-pipeline-delay", "internal-tooling"}
    payments = listed["payments-degraded"]
    assert payments["arn"] == plans["payments-degraded"].arn
    assert payments["when_to_use"] == "Checkout is failing."
    assert payments["template"]["impact"] == 2
    assert payments["display_name"] == plans["payments-degraded"].label


def test_a_declaration_reads_back_with_its_state_and_trail(api, plans):
    created = api.start({"responsePlanArn": plans["website-outage"].arn, "title": "Down", "impact": 1}).json()
    response = api.get(created["data"]["status_url"])

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["id"] == created["data"]["id"]
    assert data["created_at"] == created["data"]["created_at"]
    assert (data["state"], data["title"], data["impact"], data["source"]) == ("queued", "Down", 1, "api")
    assert data["incident_record_arn"] is None and data["failure"] is None and data["attempts"] == 0
    assert data["response_plan"]["arn"] == plans["website-outage"].arn
    assert [event["action"] for event in data["audit"]] == ["declaration.queued"]


def test_a_failed_declaration_reads_back_with_its_reason(api, plans):
    created = api.start({"responsePlanArn": plans["website-outage"].arn}).json()["data"]
    Declaration.objects.filter(pk=created["id"]).update(
        state="failed", failure_code="AccessDeniedException", failure_reason="Not allowed", attempts=1
    )
    data = api.get(f"/api/declarations/{created['id']}").json()["data"]
    assert data["failure"] == {"code": "AccessDeniedException", "reason": "Not allowed"}


def test_another_users_declaration_is_not_found(api, plans, other_support_user):
    theirs, _ = declaration_create(declared_by=other_support_user, response_plan=plans["website-outage"])
    error = assert_error(api.get(f"/api/declarations/{theirs.pk}"), 404, "NOT_FOUND")
    assert str(theirs.pk) in error["message"]


@pytest.mark.parametrize("declaration_id", ["0", "99999999", "9" * 30])
def test_ids_that_do_not_exist_are_not_found(api, declaration_id):
    assert_error(api.get(f"/api/declarations/{declaration_id}"), 404, "NOT_FOUND")


def test_managers_see_every_declaration(plans, support_user, manager_user):
    mine, _ = declaration_create(declared_by=support_user, response_plan=plans["website-outage"])
    response = api_for(manager_user).get(f"/api/declarations/{mine.pk}")
    assert response.status_code == 200
    assert response.json()["data"]["declared_by"] == "sam.support"


# --- Rate limit ----------------------------------------------------------------------------------------


def test_each_token_has_its_own_rate_limit(api, settings, manager_user):
    settings.PORTAL_API_RATE_LIMIT = "3/h"
    assert [api.get("/api/responsePlans").status_code for _ in range(3)] == [200, 200, 200]

    response = api.get("/api/responsePlans")

    error = assert_error(response, 429, "RATE_LIMITED")
    retry_after = int(response["Retry-After"])
    assert 3500 <= retry_after <= 3600
    assert error["details"] == {"retry_after_seconds": retry_after}
    assert api_for(manager_user).get("/api/responsePlans").status_code == 200  # another token is unaffected


def test_the_rate_limit_is_shared_by_every_process(api, settings):
    settings.PORTAL_API_RATE_LIMIT = "2/h"
    assert [api.get("/api/responsePlans").status_code for _ in range(2)] == [200, 200]
    key = "api-token:" + ApiToken.objects.get().secret_hash[:32]
    # Another Python process (as another gunicorn worker would be) sees the same counter in Redis.
    script = (
        "import django; django.setup(); from incidents.services.rate_limits import rate_limit_hit; "
        f"print(rate_limit_hit(key={key!r}, rate='2/h', setting='PORTAL_API_RATE_LIMIT'))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings.test", "PORTAL_API_RATE_LIMIT": "2/h"}
    output = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert int(output.stdout.strip().splitlines()[-1]) > 3500


def test_with_the_rate_limit_store_down_the_api_answers_and_still_limits_in_each_process(api, settings):
    """Redis away used to mean no limit at all; now each process counts in its own memory until it is back."""
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        },
    }
    settings.PORTAL_API_RATE_LIMIT = "2/h"
    assert [api.get("/api/responsePlans").status_code for _ in range(2)] == [200, 200]
    assert_error(api.get("/api/responsePlans"), 429, "RATE_LIMITED")


def test_more_tokens_do_not_buy_more_requests(support_user, settings):
    """Each token had its own limit and tokens were unlimited: three tokens made three times the requests."""
    settings.PORTAL_API_RATE_LIMIT = "3/h"
    settings.PORTAL_API_PERSON_RATE_LIMIT = "4/h"
    first, second = api_for(support_user), api_for(support_user)
    assert [first.get("/api/responsePlans").status_code for _ in range(3)] == [200, 200, 200]
    assert second.get("/api/responsePlans").status_code == 200

    response = second.get("/api/responsePlans")

    error = assert_error(response, 429, "RATE_LIMITED")
    assert "across all their tokens" in error["message"]
    assert 3500 <= int(response["Retry-After"]) <= 3600


def test_a_malformed_rate_limit_setting_is_a_clear_configuration_error():
    from django.core.exceptions import ImproperlyConfigured

    assert rate_limit_parse("120/m") == (120, 60)
    with pytest.raises(ImproperlyConfigured, match="PORTAL_API_RATE_LIMIT must look like 60/m"):
        rate_limit_parse("lots")
    with pytest.raises(ImproperlyConfigured):
        rate_limit_parse("0/s")


def test_rate_limited_requests_declare_nothing(client, support_token, plans, settings):
    settings.PORTAL_API_RATE_LIMIT = "1/h"
    api = ApiClient(Client(), support_token)
    assert api.start({"responsePlanArn": plans["website-outage"].arn}).status_code == 202
    assert_error(api.start({"responsePlanArn": plans["website-outage"].arn}), 429, "RATE_LIMITED")
    assert Declaration.objects.count() == 1

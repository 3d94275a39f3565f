"""POST /api/startIncident's impactStartedAt and drill: the declare page's rules, each failure at its field."""

from datetime import UTC, timedelta
from datetime import timezone as fixed_offset

import pytest
from django.utils import timezone

from incidents import validators
from incidents.models import Declaration
from incidents.services.plans import response_plan_update
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db
INDIA = fixed_offset(timedelta(hours=5, minutes=30))


@pytest.fixture
def drill_plan(plans):
    return response_plan_update(plan=plans["internal-tooling"], actor=None, is_drill=True)


def iso(moment) -> str:
    return moment.isoformat(timespec="seconds")


def test_impact_started_at_is_stored_in_utc_and_answered(api, plans):
    started = (timezone.now() - timedelta(hours=2)).replace(microsecond=0)
    body = {"responsePlanArn": plans["website-outage"].arn, "impactStartedAt": iso(started.astimezone(INDIA))}
    response = api.start(body)
    assert response.status_code == 202, response.content.decode()
    declaration = Declaration.objects.get()
    assert declaration.impact_started_at == started
    assert response.json()["data"]["drill"] is False
    answer = api.get(f"/api/declarations/{declaration.pk}").json()["data"]
    assert answer["impact_started_at"] == started.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("in an hour", validators.TIMESTAMP_FORMAT),
        ("2026-12-01T10:00", validators.TIMESTAMP_FORMAT),  # no zone: whose 10:00?
    ],
)
def test_an_impact_start_that_is_not_a_zoned_time_is_refused_at_its_field(api, plans, value, message):
    error = assert_error(
        api.start({"responsePlanArn": plans["website-outage"].arn, "impactStartedAt": value}), 400, "VALIDATION_ERROR"
    )
    assert error["details"] == {"impactStartedAt": message}


def test_an_impact_start_in_the_future_or_too_long_ago_is_refused(api, plans, settings):
    settings.PORTAL_IMPACT_START_MAX_DAYS = 3
    arn = plans["website-outage"].arn
    future = api.start({"responsePlanArn": arn, "impactStartedAt": iso(timezone.now() + timedelta(minutes=5))})
    assert assert_error(future, 400, "VALIDATION_ERROR")["details"]["impactStartedAt"].startswith(
        "The impact cannot start in the future"
    )
    old = api.start({"responsePlanArn": arn, "impactStartedAt": iso(timezone.now() - timedelta(days=3, minutes=1))})
    assert assert_error(old, 400, "VALIDATION_ERROR")["details"] == {
        "impactStartedAt": "Give a time within the last 3 days; note anything older in the incident's timeline."
    }
    assert not Declaration.objects.exists()


def test_impact_started_at_and_trigger_details_together_are_refused(api, plans):
    body = {
        "responsePlanArn": plans["website-outage"].arn,
        "impactStartedAt": iso(timezone.now() - timedelta(hours=1)),
        "triggerDetails": {"source": "com.example.alerting", "timestamp": iso(timezone.now())},
    }
    error = assert_error(api.start(body), 400, "VALIDATION_ERROR")
    assert error["details"] == {"impactStartedAt": validators.IMPACT_START_AND_TRIGGER}
    assert not Declaration.objects.exists()


def test_a_drill_on_a_drill_plan_is_marked_and_says_so(api, drill_plan):
    response = api.start({"responsePlanArn": drill_plan.arn, "drill": True, "title": "Game day: DB failover"})
    assert response.status_code == 202, response.content.decode()
    assert response.json()["data"]["drill"] is True
    declaration = Declaration.objects.get()
    assert declaration.is_drill
    assert api.get(f"/api/declarations/{declaration.pk}").json()["data"]["drill"] is True


def test_drill_and_plan_must_agree(api, plans, drill_plan):
    drill_on_real = api.start({"responsePlanArn": plans["website-outage"].arn, "drill": True})
    assert assert_error(drill_on_real, 400, "VALIDATION_ERROR")["details"] == {
        "responsePlanArn": validators.DRILL_PLAN_ONLY
    }
    real_on_drill = api.start({"responsePlanArn": drill_plan.arn})
    assert assert_error(real_on_drill, 400, "VALIDATION_ERROR")["details"] == {
        "responsePlanArn": validators.REAL_PLAN_ONLY
    }
    not_a_boolean = api.start({"responsePlanArn": drill_plan.arn, "drill": "yes"})
    assert assert_error(not_a_boolean, 400, "VALIDATION_ERROR")["details"] == {"drill": "Must be true or false."}
    assert not Declaration.objects.exists()


def test_a_drills_title_leaves_room_for_the_prefix(api, drill_plan):
    title = "t" * (validators.DRILL_TITLE_MAX_LENGTH + 1)
    error = assert_error(
        api.start({"responsePlanArn": drill_plan.arn, "drill": True, "title": title}), 400, "VALIDATION_ERROR"
    )
    assert set(error["details"]) == {"title"}


def test_the_plan_list_says_which_plans_are_drill_plans(api, drill_plan):
    listed = {plan["name"]: plan["drill"] for plan in api.get("/api/responsePlans").json()["data"]["response_plans"]}
    assert listed[drill_plan.name] is True
    assert listed["website-outage"] is False

"""When the impact really began: the declare page's optional "Impact started at", entered in the person's time zone,
checked at the field, stored in UTC, shown on the declaration's page and sent to AWS as the trigger's timestamp."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from incidents import validators
from incidents.models import Declaration
from tests.conftest import wait_for_state
from tests.helpers import declare_post

DECLARE = reverse("incidents:declare")
BERLIN = ZoneInfo("Europe/Berlin")


def wall_clock(moment: datetime, zone: ZoneInfo) -> str:
    """What a datetime-local input sends for `moment` in `zone`."""
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def declare_with_start(client, plan, started: str, zone: str = "", **kwargs):
    data = declare_post(plan, **kwargs)
    data.update(impact_started_at=started, time_zone=zone)
    return client.post(DECLARE, data)


@pytest.mark.django_db
def test_the_time_is_read_in_the_browsers_zone_and_stored_in_utc(support_client, plans):
    started = (timezone.now() - timedelta(hours=2)).replace(second=0, microsecond=0)
    response = declare_with_start(support_client, plans["website-outage"], wall_clock(started, BERLIN), "Europe/Berlin")
    assert response.status_code == 302, response.content.decode()[:2000]
    declaration = Declaration.objects.get()
    assert declaration.impact_started_at == started
    assert declaration.impact_started_at.utcoffset() == timedelta(0)
    event = declaration.audit_events.get(action="declaration.queued")
    assert event.details["impact_started_at"] == started.astimezone(UTC).isoformat()


@pytest.mark.django_db
def test_without_the_browsers_zone_the_portals_is_used_and_named(support_client, plans, settings):
    settings.TIME_ZONE = "America/New_York"
    page = support_client.get(DECLARE).content.decode()
    assert 'id="impact-start-zone" data-portal-zone="America/New_York">America/New_York</strong>' in page
    started = (timezone.now() - timedelta(hours=1)).replace(second=0, microsecond=0)
    response = declare_with_start(
        support_client, plans["website-outage"], wall_clock(started, ZoneInfo("America/New_York"))
    )
    assert response.status_code == 302
    assert Declaration.objects.get().impact_started_at == started


@pytest.mark.django_db
def test_an_unknown_zone_falls_back_to_the_portals(support_client, plans):
    started = (timezone.now() - timedelta(minutes=30)).replace(second=0, microsecond=0)
    response = declare_with_start(support_client, plans["website-outage"], wall_clock(started, UTC), "Mars/Olympus")
    assert response.status_code == 302
    assert Declaration.objects.get().impact_started_at == started


@pytest.mark.django_db
def test_a_time_in_the_future_is_refused_at_the_field(support_client, plans):
    later = timezone.now() + timedelta(hours=1)
    response = declare_with_start(support_client, plans["website-outage"], wall_clock(later, BERLIN), "Europe/Berlin")
    assert response.status_code == 200
    assert not Declaration.objects.exists()
    assert "impact_started_at" in response.context["form"].errors
    page = response.content.decode()
    assert '<p class="field-error" id="impact-start-error">The impact cannot start in the future' in page
    # What was typed, and the zone it was typed in, come back.
    assert f'value="{wall_clock(later, BERLIN)}"' in page
    assert ">Europe/Berlin</strong>" in page


@pytest.mark.django_db
def test_a_time_older_than_the_setting_allows_is_refused_at_the_field(support_client, plans, settings):
    settings.PORTAL_IMPACT_START_MAX_DAYS = 2
    old = timezone.now() - timedelta(days=2, hours=1)
    response = declare_with_start(support_client, plans["website-outage"], wall_clock(old, UTC))
    assert response.status_code == 200
    assert response.context["form"].errors["impact_started_at"] == [
        "Give a time within the last 2 days; note anything older in the incident's timeline."
    ]
    assert not Declaration.objects.exists()


@pytest.mark.django_db
def test_a_malformed_time_is_refused_at_the_field(support_client, plans):
    response = declare_with_start(support_client, plans["website-outage"], "yesterday at noon")
    assert response.context["form"].errors["impact_started_at"] == [
        "Enter a date and a time, such as 2026-12-05 14:02."
    ]


@pytest.mark.django_db
def test_left_empty_it_stays_empty(support_client, plans):
    response = declare_with_start(support_client, plans["website-outage"], "")
    assert response.status_code == 302
    assert Declaration.objects.get().impact_started_at is None


@pytest.mark.django_db
def test_the_preview_sends_it_as_the_triggers_timestamp(support_client, plans):
    started = (timezone.now() - timedelta(hours=3)).replace(second=0, microsecond=0)
    data = declare_post(plans["website-outage"])
    data.update(impact_started_at=wall_clock(started, BERLIN), time_zone="Europe/Berlin", action="preview")
    preview = support_client.post(DECLARE, data).context["preview"]
    # DjangoJSONEncoder writes UTC as Z.
    assert f'"timestamp": "{started.astimezone(UTC):%Y-%m-%dT%H:%M:%S}Z"' in preview


@pytest.mark.django_db
def test_the_declaration_page_shows_when_the_impact_started(support_client, plans):
    started = (timezone.now() - timedelta(hours=5)).replace(second=0, microsecond=0)
    declare_with_start(support_client, plans["website-outage"], wall_clock(started, BERLIN), "Europe/Berlin")
    declaration = Declaration.objects.get()
    page = support_client.get(declaration.get_absolute_url()).content.decode()
    assert (
        f'<dt>Impact started</dt><dd><time datetime="{started.isoformat()}">{started:%Y-%m-%d %H:%M} UTC</time>' in page
    )


def test_the_rule_accepts_now_and_the_oldest_allowed_moment(settings):
    settings.PORTAL_IMPACT_START_MAX_DAYS = 3
    now = timezone.now()
    assert validators.validate_impact_started_at(now - timedelta(seconds=1)) <= now
    berlin = (now - timedelta(days=3) + timedelta(minutes=1)).astimezone(BERLIN)
    assert validators.validate_impact_started_at(berlin).tzinfo == UTC


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_the_impact_start_reaches_aws_as_the_triggers_timestamp(support_client, plans, sandbox):
    started = (timezone.now() - timedelta(hours=6)).replace(second=0, microsecond=0)
    response = declare_with_start(support_client, plans["website-outage"], wall_clock(started, BERLIN), "Europe/Berlin")
    assert response.status_code == 302
    declaration = wait_for_state(Declaration.objects.get(), Declaration.State.STARTED)
    # What the sandbox received, decoded from the wire as AWS decodes it (epoch seconds).
    (call,) = sandbox.calls()
    assert call["params"]["triggerDetails"]["timestamp"] == started.timestamp()
    assert declaration.aws_request["triggerDetails"]["timestamp"].startswith(started.strftime("%Y-%m-%dT%H:%M"))

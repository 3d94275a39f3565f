"""Rate limits a person meets: declarations from the declare page per person (with when to try again, and nothing
typed lost), and every limit still holding, per process, while Redis is away."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from incidents.models import Declaration
from incidents.services.rate_limits import rate_limit_hit, rate_limit_parse
from tests.helpers import declare_post, upload

DECLARE = reverse("incidents:declare")
UNREACHABLE_CACHE = {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": "redis://127.0.0.1:1/0",
    "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
}

pytestmark = pytest.mark.django_db


def declare_on_purpose(*args, **kwargs) -> dict:
    """The same plan declared again and again, each time on purpose (a repeat within minutes is otherwise asked
    about first)."""
    return {**declare_post(*args, **kwargs), "action": "declare-again"}


@pytest.fixture
def two_per_hour(settings):
    settings.PORTAL_DECLARE_RATE_LIMIT = "2/h"
    return settings


def test_a_person_who_declares_too_often_is_told_when_to_try_again_and_keeps_what_they_typed(
    support_client, plans, two_per_hour, sandbox
):
    plan = plans["website-outage"]
    for n in range(2):
        assert support_client.post(DECLARE, declare_on_purpose(plan, title=f"Outage {n}")).status_code == 302

    typed = declare_on_purpose(
        plan,
        title="Checkout returns 500 for every card",
        impact=2,
        items=[{"kind": "link", "value": "https://status.example.com/incidents/42", "title": "Status page"}],
    )
    response = support_client.post(DECLARE, typed)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Nothing was declared yet" in page
    assert "You have declared 2 incidents in the last hour" in page
    wait = re.search(r"You can declare this one in (\d+) minutes \(at (\d\d:\d\d:\d\d) UTC\)", page)
    assert wait and 55 <= int(wait[1]) <= 60
    # Everything typed is still in the form, ready to send once the wait is over.
    assert 'value="Checkout returns 500 for every card"' in page
    assert 'value="https://status.example.com/incidents/42"' in page
    assert 'value="Status page"' in page
    assert re.search(r'value="2"[^>]*checked', page)
    assert f'value="{typed["idempotency_key"]}"' in page
    assert Declaration.objects.count() == 2


def test_the_limit_is_each_persons_own(support_client, plans, two_per_hour, other_support_user):
    for n in range(3):
        support_client.post(DECLARE, declare_on_purpose(plans["website-outage"], title=f"Outage {n}"))
    other = Client()
    other.force_login(other_support_user)
    assert other.post(DECLARE, declare_on_purpose(plans["website-outage"], title="Mine")).status_code == 302


def test_a_second_click_on_a_form_that_declared_still_lands_on_its_declaration(support_client, plans, two_per_hour):
    support_client.post(DECLARE, declare_on_purpose(plans["website-outage"], title="First"))
    second = declare_on_purpose(plans["website-outage"], title="Second")
    made = support_client.post(DECLARE, second)
    again = support_client.post(DECLARE, second)  # the limit is reached, but this form already declared
    assert again.status_code == 302
    assert again["Location"] == made["Location"]
    assert Declaration.objects.count() == 2


def test_a_refused_declaration_with_files_asks_for_the_files_again(support_client, plans, two_per_hour):
    for n in range(2):
        support_client.post(DECLARE, declare_on_purpose(plans["website-outage"], title=f"Outage {n}"))
    data = declare_on_purpose(plans["website-outage"], title="With a file", items=[{"kind": "file", "file": upload()}])
    page = support_client.post(DECLARE, data).content.decode()
    assert "choose your files again" in page
    assert Declaration.objects.count() == 2


def test_with_redis_away_the_declare_limit_holds_in_each_process(support_client, plans, two_per_hour):
    two_per_hour.CACHES = {**two_per_hour.CACHES, "default": UNREACHABLE_CACHE}
    answers = [
        support_client.post(DECLARE, declare_on_purpose(plans["website-outage"], title=f"Outage {n}")).status_code
        for n in range(3)
    ]
    assert answers == [302, 302, 200]
    assert Declaration.objects.count() == 2


def test_the_limits_count_in_process_memory_while_the_shared_cache_is_unreachable(settings):
    settings.CACHES = {**settings.CACHES, "default": UNREACHABLE_CACHE}
    answers = [rate_limit_hit(key="unreachable-test", rate="2/m", setting="PORTAL_API_RATE_LIMIT") for _ in range(3)]
    assert answers[:2] == [None, None]
    assert 1 <= answers[2] <= 60


def test_a_malformed_declare_limit_names_its_setting():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="PORTAL_DECLARE_RATE_LIMIT must look like 60/m"):
        rate_limit_parse("20 an hour", setting="PORTAL_DECLARE_RATE_LIMIT")

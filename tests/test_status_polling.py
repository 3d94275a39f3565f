"""How often the declaration's page asks for news: fast while the worker is expected to start the incident, once a
second after that, not at all for the status once it is final (issue 22 item 5); the AWS snapshot's section alone
keeps asking, slowly, while the incident is open."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from incidents.models import Declaration
from tests.helpers import make_declaration

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true", "HX-Target": "status"}


def status_trigger(html: str) -> str | None:
    section = html[html.index('id="status"') :]
    section = section[: section.index(">")]
    found = re.search(r'hx-trigger="([^"]+)"', section)
    return found.group(1) if found else None


def test_a_new_declaration_is_polled_every_150_ms_then_every_second(support_client, support_user, plans):
    fresh = make_declaration(declared_by=support_user, plan=plans["website-outage"])
    older = make_declaration(
        declared_by=support_user, plan=plans["website-outage"], created_at=timezone.now() - dt.timedelta(seconds=10)
    )

    assert status_trigger(support_client.get(fresh.get_absolute_url()).content.decode()) == "load delay:150ms"
    assert status_trigger(support_client.get(fresh.get_absolute_url(), headers=HTMX).content.decode()) == (
        "load delay:150ms"
    )
    assert status_trigger(support_client.get(older.get_absolute_url(), headers=HTMX).content.decode()) == (
        "load delay:1s"
    )


def test_a_final_declaration_stops_polling_its_status(support_client, support_user, plans):
    failed = make_declaration(
        declared_by=support_user, plan=plans["website-outage"], state=Declaration.State.FAILED, failure_code="X"
    )
    html = support_client.get(failed.get_absolute_url(), headers=HTMX).content.decode()
    assert status_trigger(html) is None
    assert "hx-trigger" not in support_client.get(failed.get_absolute_url()).content.decode()


def test_a_started_declaration_asks_only_for_its_incident_and_slowly_once_read(
    support_client, support_user, plans, settings
):
    """Started and never read: only the incident's section asks, every 2 s, until the worker's first read lands.
    (Once read and open it asks every PORTAL_INCIDENT_POLL_SECONDS, once resolved never: tests/test_incident_refresh.py
    drives those through the worker.)"""
    started = make_declaration(
        declared_by=support_user,
        plan=plans["website-outage"],
        state=Declaration.State.STARTED,
        incident_record_arn="arn:aws:ssm-incidents::123456789012:incident-record/website-outage/1",
    )
    html = support_client.get(started.get_absolute_url()).content.decode()
    assert status_trigger(html) is None
    assert html.count("hx-trigger") == 1
    assert 'id="incident"' in html and 'hx-trigger="load delay:2s"' in html
    assert "Reading the incident from AWS" in html

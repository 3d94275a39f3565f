"""The incident as AWS sees it on the declaration's page: read by the worker through the sandbox, never by the page,
refreshed while someone watches, kept when a read fails, and within the read budget however many incidents are open."""

import datetime as dt
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from incidents.models import AuditEvent, Declaration, IncidentSnapshot
from incidents.services.incident_refresh import incident_refresh, incidents_refresh_due
from tests.conftest import wait_for_state
from tests.helpers import declare_post, make_declaration

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]
READS = ("GetIncidentRecord", "ListRelatedItems", "ListTimelineEvents", "GetTimelineEvent", "GetResponsePlan")


@pytest.fixture(autouse=True)
def _reads_only_when_a_test_asks(settings):
    # Only a page without any snapshot asks for a read by itself; page_after_a_read asks on purpose.
    settings.PORTAL_INCIDENT_WATCH_REFRESH_AFTER = 3600


def started_declaration(client, plan, **kwargs) -> Declaration:
    response = client.post(reverse("incidents:declare"), declare_post(plan, **kwargs))
    assert response.status_code == 302
    return wait_for_state(Declaration.objects.latest("pk"), Declaration.State.STARTED)


def snapshot_of(declaration) -> IncidentSnapshot | None:
    return IncidentSnapshot.objects.filter(declaration=declaration).first()


def wait_for_read(declaration, *, after=None, failed=False, timeout=20) -> IncidentSnapshot:
    """Until the worker has stored a read (or a failed one) newer than `after`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snapshot = snapshot_of(declaration)
        moment = snapshot and (snapshot.failed_at if failed else snapshot.read_at)
        if moment and (after is None or moment > after):
            return snapshot
        time.sleep(0.05)
    raise AssertionError(f"the incident of declaration {declaration.pk} was not read")


def page_after_a_read(client, declaration, *, failed=False) -> str:
    """Look at the page when its last read is old (it asks the worker for a read), wait for a read begun after that
    (or a failed one), and look again."""
    asked = timezone.now()
    with override_settings(PORTAL_INCIDENT_WATCH_REFRESH_AFTER=0):
        client.get(declaration.get_absolute_url())
    wait_for_read(declaration, after=asked, failed=failed)
    return client.get(declaration.get_absolute_url()).content.decode()


def incident_section(html: str) -> str:
    return html[html.index('id="incident"') : html.index("</section>", html.index('id="incident"'))]


def test_the_page_shows_the_incident_as_aws_sees_it(support_client, plans, sandbox):
    link = "https://status.example.com/incidents/42"
    declaration = started_declaration(
        support_client, plans["website-outage"], title="Checkout down", items=[{"kind": "link", "value": link}]
    )
    assert snapshot_of(declaration) is None  # nothing is read before someone looks

    sandbox.clear_calls()
    html = incident_section(page_after_a_read(support_client, declaration))

    assert "The incident in AWS" in html and "Open" in html
    assert "Checkout down" in html
    assert "1 – Critical" in html
    assert "chatbot-incidents" in html  # the plan's chat channel, from the record
    assert "web-oncall" in html  # the plan's engagements
    assert link in html  # related items as AWS lists them
    assert "SSM Incident Record Update" in html  # AWS's own timeline event, with its text
    assert re.search(r"Read from AWS <time[^>]*>\d+ s ago</time>", html)
    declaration.refresh_from_db()
    assert declaration.aws_status == "OPEN" and declaration.resolved_at is None
    # Read by the worker within the read budget; the page itself never called AWS.
    assert {call["operation"] for call in sandbox.calls(None)} >= {
        "GetIncidentRecord",
        "ListRelatedItems",
        "ListTimelineEvents",
    }


def test_a_responders_changes_outside_the_portal_appear_on_the_page(support_client, plans, sandbox):
    declaration = started_declaration(support_client, plans["payments-degraded"])
    page_after_a_read(support_client, declaration)
    arn = declaration.incident_record_arn

    sandbox.respond("update", arn=arn, title="Card payments fail in EU", impact=1, summary="Acquirer timeouts.")
    sandbox.respond("related-item", arn=arn, url="https://grafana.example.com/d/payments", title="Payments board")
    runbook = sandbox.respond("runbook", arn=arn)["ssmExecutionArn"]
    sandbox.respond("timeline-event", arn=arn, text="It was the 14:02 deploy")
    html = incident_section(page_after_a_read(support_client, declaration))

    assert "Card payments fail in EU" in html
    assert "1 – Critical" in html
    assert "Acquirer timeouts." in html
    assert "Payments board" in html and "https://grafana.example.com/d/payments" in html
    assert runbook in html
    assert "IncidentResponder" in html  # who changed it last
    timeline = html[html.index("incident-timeline") :]
    first_event = timeline[: timeline.index("</li>")]
    assert "It was the 14:02 deploy" in first_event  # newest first
    assert 'hx-trigger="load delay:' in html  # open: the page keeps asking, slowly

    sandbox.respond("resolve", arn=arn)
    page = page_after_a_read(support_client, declaration)
    html = incident_section(page)
    assert "Resolved" in html
    declaration.refresh_from_db()
    assert declaration.aws_status == "RESOLVED" and declaration.resolved_at is not None
    assert AuditEvent.objects.filter(declaration=declaration, action="declaration.aws_status_changed").exists()
    # Final and resolved: nothing on the page polls any more.
    assert "hx-trigger" not in page


@pytest.mark.parametrize("operation", ["GetIncidentRecord", "ListRelatedItems", "ListTimelineEvents"])
def test_a_failed_read_is_shown_and_the_last_good_snapshot_kept(support_client, plans, sandbox, operation):
    declaration = started_declaration(support_client, plans["data-pipeline-delay"], title="ETL late")
    page_after_a_read(support_client, declaration)

    sandbox.respond("update", arn=declaration.incident_record_arn, title="ETL late by 3 hours")
    sandbox.inject(operation=operation, deny_next=1)
    html = incident_section(page_after_a_read(support_client, declaration, failed=True))

    assert "The last read from AWS failed" in html
    assert "AccessDeniedException" in html and f"ssm-incidents:{operation}" in html
    assert "ETL late" in html and "ETL late by 3 hours" not in html  # the last good read, not half of a new one
    assert 'hx-trigger="load delay:' in html  # and the page keeps asking

    html = incident_section(page_after_a_read(support_client, declaration))
    assert "The last read from AWS failed" not in html
    assert "ETL late by 3 hours" in html


def test_ten_people_watching_cause_one_read(support_client, plans, sandbox, support_user, settings):
    settings.PORTAL_INCIDENT_WATCH_REFRESH_AFTER = 60
    declaration = started_declaration(support_client, plans["internal-tooling"])
    sandbox.clear_calls()

    def watch(_):
        client = Client()
        client.force_login(support_user)
        try:
            return client.get(declaration.get_absolute_url(), headers={"HX-Request": "true", "HX-Target": "incident"})
        finally:
            connection.close()

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(watch, range(10)))
    assert {answer.status_code for answer in answers} == {200}
    wait_for_read(declaration)
    for _ in range(5):  # a second read would have come by now
        support_client.get(declaration.get_absolute_url())
        time.sleep(0.2)

    reads = [call for call in sandbox.calls("GetIncidentRecord")]
    assert len(reads) == 1


def test_the_refresh_stays_within_its_aws_call_budget_with_1000_open_incidents(
    support_user, plans, sandbox, sandbox_server, settings
):
    """Beat's round over 1,000 open incidents queues only what the budget allows; the sandbox's call log shows the
    reads never came faster than the budget (the worker's PORTAL_AWS_READ_RATE and _BURST, these settings' too)."""
    plan = plans["data-pipeline-delay"]
    arns = [
        sandbox_server.emulator.handle("StartIncident", {"responsePlanArn": plan.arn})["incidentRecordArn"]
        for _ in range(1000)
    ]
    Declaration.objects.bulk_create(
        Declaration(
            declared_by=support_user,
            response_plan=plan,
            effective_title=plan.template_title,
            effective_impact=plan.template_impact,
            state=Declaration.State.STARTED,
            client_token=f"budget-{index}",
            incident_record_arn=arn,
        )
        for index, arn in enumerate(arns)
    )
    rate, burst = django_settings.PORTAL_AWS_READ_RATE, django_settings.PORTAL_AWS_READ_BURST
    settings.PORTAL_INCIDENT_REFRESH_INTERVAL = 4  # one short round: 4 s of the budget
    sandbox.clear_calls()

    queued = incidents_refresh_due()
    assert 0 < len(queued) == int(4 * rate / 3) < 1000
    assert incidents_refresh_due() == []  # the next round before this one is done: nothing twice
    for declaration in Declaration.objects.filter(pk__in=queued):
        wait_for_read(declaration, timeout=60)

    calls = [call for call in sandbox.calls(None) if call["operation"] in READS]
    times = sorted(call["received_at"] for call in calls)
    assert len(calls) >= 3 * len(queued)
    for window in (1.0, times[-1] - times[0]):
        busiest = max(sum(1 for t in times if start <= t < start + window) for start in times)
        # GCRA: at most a burst at once, then the rate; one call of slack for the two clocks involved.
        assert busiest <= burst + rate * window + 1, (window, busiest)
    # Every other incident waits for the next rounds: not read, not queued, no failure.
    waiting = IncidentSnapshot.objects.exclude(declaration_id__in=queued)
    assert not waiting.filter(read_at__isnull=False).exists()
    assert not IncidentSnapshot.objects.exclude(failure_code="").exists()
    assert Declaration.objects.filter(incident_snapshot__isnull=True).count() == 1000 - len(queued)
    # The next round takes the stalest: ones never read, not those just read.
    assert not set(incidents_refresh_due()) & set(queued)


def test_a_note_written_as_aws_stores_it_reads_as_its_words(support_client, plans, ssm_incidents):
    # The console and the portal write a note's eventData as a JSON string; the page shows the words, line by line.
    declaration = started_declaration(support_client, plans["payments-degraded"])
    ssm_incidents.create_timeline_event(
        incidentRecordArn=declaration.incident_record_arn,
        eventTime=timezone.now(),
        eventType="Custom Event",
        eventData=json.dumps("Rolled back the 14:02 deploy\n— sam.support, via the incident portal"),
    )
    html = incident_section(page_after_a_read(support_client, declaration))
    assert "Rolled back the 14:02 deploy<br>— sam.support, via the incident portal" in html
    assert "&quot;Rolled back" not in html and "\\n" not in html


# --- What the person does from the page shows in the AWS section soon after -----------------------------------


def test_a_note_sent_from_the_page_is_read_back_into_the_aws_section(support_client, plans, sandbox):
    """The page's own reads wait PORTAL_INCIDENT_WATCH_REFRESH_AFTER (an hour here): the sent action asks for one."""
    declaration = started_declaration(support_client, plans["website-outage"], title="Checkout down")
    first = page_after_a_read(support_client, declaration)
    assert "Rolled back the 14:02 deploy" not in incident_section(first)
    read_before = snapshot_of(declaration).read_at

    response = support_client.post(
        reverse("incidents:declaration-note", kwargs={"declaration_id": declaration.pk}),
        {"idempotency_key": "a" * 32, "text": "Rolled back the 14:02 deploy"},
    )
    assert response.status_code == 302
    # Right after sending, the section asks again soon rather than at its slow pace.
    assert 'hx-trigger="load delay:2s"' in incident_section(
        support_client.get(declaration.get_absolute_url()).content.decode()
    )

    wait_for_read(declaration, after=read_before)
    html = incident_section(support_client.get(declaration.get_absolute_url()).content.decode())
    assert "Rolled back the 14:02 deploy" in html


def test_resolving_from_the_page_is_read_back_and_the_page_stops_asking(support_client, plans, sandbox):
    declaration = started_declaration(support_client, plans["website-outage"], title="Checkout down")
    page_after_a_read(support_client, declaration)
    read_before = snapshot_of(declaration).read_at

    response = support_client.post(
        reverse("incidents:declaration-resolve", kwargs={"declaration_id": declaration.pk}),
        {"idempotency_key": "b" * 32, "note": "All green since 14:40."},
    )
    assert response.status_code == 302

    snapshot = wait_for_read(declaration, after=read_before)
    assert snapshot.record["status"] == "RESOLVED"
    declaration.refresh_from_db()
    # The declaration and the snapshot agree: AWS's own moment of resolving.
    assert declaration.aws_status == "RESOLVED"
    assert declaration.resolved_at.timestamp() == pytest.approx(snapshot.record["resolvedTime"], abs=0.001)
    page = support_client.get(declaration.get_absolute_url()).content.decode()
    html = incident_section(page)
    assert "Resolved" in html and "All green since 14:40." in html
    assert "hx-trigger" not in html


def test_a_started_incident_counts_as_open_before_its_first_read(support_client, manager_client, plans):
    """StartIncident makes an open incident: the history's AWS status filter finds it at once, not after a read."""
    declaration = started_declaration(support_client, plans["website-outage"], title="Checkout down")

    assert snapshot_of(declaration) is None
    assert declaration.aws_status == "OPEN"
    listed = manager_client.get(reverse("incidents:declaration-list"), {"aws_status": "OPEN"}).content.decode()
    assert declaration.get_absolute_url() in listed
    # The first read finds it open too: no change to record.
    page_after_a_read(support_client, declaration)
    assert not AuditEvent.objects.filter(declaration=declaration, action="declaration.aws_status_changed").exists()


def test_a_read_begun_before_the_portal_resolved_the_incident_does_not_reopen_it(support_user, plans, sandbox_server):
    """The worker's read and the resolve action cross: the read began while AWS still said open, the action finished
    (RESOLVED, at its own moment) before the read stored its answer. The older read must not undo the newer change."""
    plan = plans["website-outage"]
    arn = sandbox_server.emulator.handle("StartIncident", {"responsePlanArn": plan.arn})["incidentRecordArn"]
    declaration = make_declaration(
        declared_by=support_user, plan=plan, state=Declaration.State.STARTED, incident_record_arn=arn
    )
    # Resolved by the portal at a moment after the read below begins.
    resolved_at = timezone.now() + dt.timedelta(seconds=30)
    Declaration.objects.filter(pk=declaration.pk).update(aws_status="RESOLVED", resolved_at=resolved_at)

    assert incident_refresh(declaration_id=declaration.pk).outcome == "read"

    declaration.refresh_from_db()
    assert (declaration.aws_status, declaration.resolved_at) == ("RESOLVED", resolved_at)
    assert not AuditEvent.objects.filter(declaration=declaration, action="declaration.aws_status_changed").exists()
    # A read that began after the resolving is believed, whatever it says (a responder may reopen the incident).
    Declaration.objects.filter(pk=declaration.pk).update(resolved_at=timezone.now() - dt.timedelta(seconds=1))
    incident_refresh(declaration_id=declaration.pk)
    declaration.refresh_from_db()
    assert (declaration.aws_status, declaration.resolved_at) == ("OPEN", None)

"""Declaring under stress, without a browser: Enter never declares, a second declaration is a choice, the success
page leads to the incident, failures say what to do."""

import re
from datetime import datetime

import pytest
from django.urls import reverse

from incidents.aws.client import incident_manager_region
from incidents.models import Declaration
from incidents.services.declarations import declaration_create
from incidents.services.starting import StartRetryable, declaration_start
from incidents.views.declarations import AWS_CONSOLE_URL, failure_explanation, incident_console_urls
from tests.helpers import declare_post

DECLARE = reverse("incidents:declare")
pytestmark = pytest.mark.django_db


def first_submit_button(page: str) -> str:
    form = page[page.index('id="declare-form"') :]
    return re.search(r"<button[^>]*type=\"submit\"[^>]*>", form)[0]


def test_the_forms_first_submit_button_does_not_declare(support_client, plans):
    """Without JavaScript, Enter in a field submits through the form's first submit button."""
    page = support_client.get(DECLARE).content.decode()
    assert 'value="declare"' not in first_submit_button(page)


def test_enter_without_javascript_declares_nothing_and_adds_a_row_when_all_are_used(support_client, plans):
    data = declare_post(plans["website-outage"], items=[{"value": "https://status.example.com/1"}])
    data["action"] = "enter"
    page = support_client.post(DECLARE, data).content.decode()
    assert Declaration.objects.count() == 0
    assert "Nothing was declared: Enter only moves on." in page
    assert 'value="https://status.example.com/1"' in page
    assert 'name="items-TOTAL_FORMS" value="2"' in page

    data = declare_post(plans["website-outage"], extra_rows=1)
    data["action"] = "enter"
    page = support_client.post(DECLARE, data).content.decode()
    # An empty row is still there to fill: none is added.
    assert 'name="items-TOTAL_FORMS" value="1"' in page
    assert Declaration.objects.count() == 0


def test_the_same_form_sent_again_answers_with_its_declaration(support_client, plans):
    data = declare_post(plans["website-outage"])
    first = support_client.post(DECLARE, data)
    again = support_client.post(DECLARE, data)
    assert again.status_code == 302 and again["Location"] == first["Location"]
    assert Declaration.objects.count() == 1


def test_a_page_opened_again_with_a_new_key_says_it_was_declared_and_declares_again_only_on_purpose(
    support_client, plans
):
    support_client.post(DECLARE, declare_post(plans["website-outage"], title="Checkout down"))
    declaration = Declaration.objects.get()
    # Back re-fetched the page: it says what was declared a moment ago, with a link.
    page = support_client.get(DECLARE).content.decode()
    assert 'id="declared-lately"' in page
    assert f'href="/declarations/{declaration.pk}/"' in page

    # Declaring the same plan again with the new form's key declares nothing, and says why.
    data = declare_post(plans["website-outage"], title="Checkout down")
    page = support_client.post(DECLARE, data).content.decode()
    assert Declaration.objects.count() == 1
    assert "Nothing was declared: you declared this plan just now." in page
    assert f'<a href="/declarations/{declaration.pk}/">Open your declaration “Checkout down”</a>' in page
    assert 'value="declare-again"' in page

    # Another plan is not held up.
    support_client.post(DECLARE, declare_post(plans["security-event"]))
    assert Declaration.objects.count() == 2
    # The same plan, on purpose.
    response = support_client.post(DECLARE, {**data, "action": "declare-again"})
    assert response.status_code == 302
    assert Declaration.objects.filter(response_plan=plans["website-outage"]).count() == 2


def test_someone_elses_declaration_of_the_plan_does_not_ask_again(support_client, plans, other_support_user):
    declaration_create(declared_by=other_support_user, response_plan=plans["website-outage"])
    response = support_client.post(DECLARE, declare_post(plans["website-outage"]))
    assert response.status_code == 302
    assert Declaration.objects.count() == 2


def test_the_success_page_leads_to_the_incident_in_its_region_and_names_the_state_in_the_tab(
    support_client, plans, support_user
):
    declaration, _ = declaration_create(declared_by=support_user, response_plan=plans["website-outage"], title="Down")
    page = support_client.get(declaration.get_absolute_url()).content.decode()
    assert "<title>Queued · Declaration" in page

    declaration_start(declaration_id=declaration.pk, final_attempt=True)
    declaration.refresh_from_db()
    arn = declaration.incident_record_arn
    # Incident Manager's ARNs carry no region: the console link uses the one the portal started it in.
    region, account = incident_manager_region(), arn.split(":")[4]
    assert region
    page = support_client.get(declaration.get_absolute_url()).content.decode()
    assert f"<title>Started · Declaration {declaration.pk}: Down · Incident portal</title>" in page
    encoded = arn.replace(":", "%3A").replace("/", "%2F")
    assert (
        f'href="https://{region}.console.aws.amazon.com/systems-manager/incidents/incident/{encoded}/overview'
        f'?region={region}"' in page
    )
    assert f"{account} · {region}" in page
    assert f'data-copy="{arn}"' in page
    assert f'data-copy="http://testserver/declarations/{declaration.pk}/"' in page
    # The live status carries the tab's title, so that the script can follow it while polling.
    status = support_client.get(declaration.get_absolute_url(), headers={"HX-Request": "true", "HX-Target": "status"})
    assert 'data-tab-title="Started · Declaration' in status.content.decode()


def test_console_links_for_other_partitions_and_unexpected_arns():
    gov = incident_console_urls("arn:aws-us-gov:ssm-incidents::1:incident-record/p/1", region="us-gov-west-1")
    assert gov["incident"].startswith("https://us-gov-west-1.console.amazonaws-us-gov.com/systems-manager/incidents/")
    assert (
        gov["home"]
        == "https://us-gov-west-1.console.amazonaws-us-gov.com/systems-manager/incidents/home?region=us-gov-west-1"
    )
    unknown = incident_console_urls("not-an-arn", region="eu-west-1")
    assert unknown["incident"] == unknown["home"] == AWS_CONSOLE_URL


def test_a_failure_says_in_plain_words_what_happened_whether_retrying_helps_and_whom_to_call(
    support_client, plans, support_user, sandbox, settings
):
    settings.PORTAL_ESCALATION_CONTACT = "the SRE on call (+1 555 0100)"
    sandbox.inject(operation="StartIncident", deny_next=1)
    declaration, _ = declaration_create(declared_by=support_user, response_plan=plans["website-outage"])
    declaration_start(declaration_id=declaration.pk, final_attempt=True)
    declaration.refresh_from_db()
    page = support_client.get(declaration.get_absolute_url()).content.decode()
    assert "AWS refused: the portal is not allowed to start incidents with this response plan." in page
    assert "Retrying will not help until an AWS administrator" in page
    assert "call the SRE on call (+1 555 0100)" in page
    region = incident_manager_region()
    assert f'href="https://{region}.console.aws.amazon.com/systems-manager/incidents/home?region={region}"' in page
    # AWS's own text stays, under the plain sentence.
    assert page.index("AWS refused:") < page.index(declaration.failure_reason) and declaration.failure_code in page


@pytest.mark.parametrize(
    ("code", "sentence", "helps"),
    [
        ("AccessDeniedException", "not allowed to start incidents", False),
        ("ValidationException", "refused the request as invalid", False),
        ("ResourceNotFoundException", "no longer knows this response plan", False),
        ("ThrottlingException", "AWS is throttling", True),
        ("InternalServerException", "internal error or was unavailable", True),
        ("ConnectionError", "could not reach AWS", True),
        ("PortalRateLimited", "no slot came free in time", True),
        ("RateLimiterUnavailable", "rate limiter (Redis) could not be reached", True),
    ],
)
def test_each_kind_of_failure_has_its_sentence(code, sentence, helps):
    explanation = failure_explanation(code=code, attempts=3, final=True)
    assert sentence in explanation.what
    assert explanation.retry_helps is helps
    if helps:
        assert "gave up after 3 attempts" in explanation.retry


def test_while_retrying_the_page_says_so_with_the_time_of_the_next_try(support_client, plans, support_user, sandbox):
    sandbox.inject(operation="StartIncident", throttle_next=100)
    declaration, _ = declaration_create(declared_by=support_user, response_plan=plans["website-outage"])
    with pytest.raises(StartRetryable):
        declaration_start(declaration_id=declaration.pk, final_attempt=False, retry_in=40)
    event = declaration.audit_events.get(action="declaration.attempt_failed")
    next_at = datetime.fromisoformat(event.details["next_attempt_at"])
    assert 39 <= (next_at - event.created_at).total_seconds() <= 41
    status = support_client.get(
        declaration.get_absolute_url(), headers={"HX-Request": "true", "HX-Target": "status"}
    ).content.decode()
    assert "Attempt 1 did not get through, and the portal will try again." in status
    assert "AWS is throttling" in status
    assert f'Next try at <time datetime="{next_at.isoformat()}">' in status
    assert "(attempt 2)" in status
    assert "ThrottlingException" in status

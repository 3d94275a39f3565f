"""The declare page's guidance: plan search and defaults, prefill by URL, duplicate guard, preview, htmx fragments."""

import html
import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from incidents import roles
from incidents.aws.client import start_incident_limits
from incidents.models import AttachmentState, Declaration
from incidents.selectors.declarations import ASSIGNED_ON_SUBMIT, declaration_start_request
from incidents.services.attachments import RelatedItemInput
from incidents.services.declarations import declaration_create
from incidents.services.plans import response_plan_update
from tests.helpers import declare_post, upload

DECLARE = reverse("incidents:declare")
HTMX = {"HTTP_HX_REQUEST": "true"}
INSTANCE_ARN = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc1234def567890"
pytestmark = pytest.mark.django_db


def htmx(target: str) -> dict:
    return {**HTMX, "HTTP_HX_TARGET": target}


def checked_plan(page: str) -> str | None:
    match = re.search(r'<input type="radio" name="response_plan" value="(\d+)"[^>]*checked', page)
    return match and match[1]


def test_a_link_names_the_plan_title_and_impact(support_client, plans):
    page = support_client.get(DECLARE, {"plan": "payments-degraded", "title": "Card payments time out", "impact": "1"})
    page = page.content.decode()
    assert checked_plan(page) == str(plans["payments-degraded"].pk)
    assert 'value="Card payments time out"' in page
    assert re.search(r'name="impact" value="1"[^>]*checked', page)
    assert "Your own — overrides the plan's" in page
    assert "Differs from the plan:" in page


def test_a_link_with_only_the_plan_shows_its_defaults_as_from_the_plan(support_client, plans):
    plan = plans["website-outage"]
    page = support_client.get(DECLARE, {"plan": str(plan.pk)}).content.decode()
    assert checked_plan(page) == str(plan.pk)
    assert f'value="{plan.template_title}"' in page
    assert re.search(r'name="impact" value="1"[^>]*checked', page)
    assert 'id="title-source" data-source="plan"' in page
    assert "No declaration of this plan in the last 60 minutes." in page


def test_plan_names_notes_and_defaults_show_as_text_not_markup(support_client, plans):
    """AWS's template title, an admin's name and note for a plan are text however they are spelled."""
    plan = plans["website-outage"]
    plan.display_name, plan.when_to_use = "Web <i>down</i>", 'Use when "checkout" <script>x</script> fails & more'
    plan.template_title = '"><img src=x onerror=alert(1)>'
    plan.save()
    page = support_client.get(DECLARE).content.decode()
    assert "<i>down" not in page and "<script>x" not in page and "<img src=x" not in page
    assert '<span class="plan-name">Web &lt;i&gt;down&lt;/i&gt;</span>' in page
    assert "Use when &quot;checkout&quot; &lt;script&gt;x&lt;/script&gt; fails &amp; more" in page
    assert f'value="{plan.pk}" id="id_response_plan_' in page
    assert 'data-default-title="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"' in page


def test_a_change_to_a_plan_shows_in_the_plan_list_at_once(support_client, plans):
    """The full plan list is kept once rendered (declare.html): any change to a plan must show on the next page."""
    plan = plans["website-outage"]
    assert '<span class="plan-name">Website outage</span>' in support_client.get(DECLARE).content.decode()
    response_plan_update(plan=plan, actor=None, display_name="Storefront down", when_to_use="Checkout fails")
    page = support_client.get(DECLARE).content.decode()
    assert '<span class="plan-name">Storefront down</span><span class="plan-note" id="plan-' in page
    assert '<span class="plan-when">Checkout fails</span>' in page
    assert checked_plan(support_client.get(DECLARE, {"plan": str(plan.pk)}).content.decode()) == str(plan.pk)
    response_plan_update(plan=plan, actor=None, is_visible=False)
    assert f'name="response_plan" value="{plan.pk}"' not in support_client.get(DECLARE).content.decode()


def test_a_plan_open_to_managers_only_is_listed_for_managers_only(support_client, manager_client, plans):
    plan = plans["security-event"]
    response_plan_update(plan=plan, actor=None, allowed_groups=[Group.objects.get(name=roles.MANAGER)])
    option = f'name="response_plan" value="{plan.pk}"'
    assert option in manager_client.get(DECLARE).content.decode()
    assert option not in support_client.get(DECLARE).content.decode()
    assert option in manager_client.get(DECLARE).content.decode()


@pytest.mark.parametrize(
    ("query", "note"),
    [
        ({"plan": "no-such-plan"}, "The response plan “no-such-plan” is not available to you"),
        ({"plan": "website\x00outage"}, "The response plan “website\ufffdoutage” is not available to you"),
        ({"plan": "website-outage", "impact": "9"}, "The impact “9” in the link was not used"),
        ({"plan": "website-outage", "title": "x" * 201}, "A title can be at most 200 characters (it has 201)."),
        ({"plan": "website-outage", "title": "two\nlines"}, "Remove the control characters"),
    ],
    ids=["unknown plan", "plan with a NUL", "impact 9", "long title", "control characters"],
)
def test_values_in_a_link_that_cannot_be_used_are_flagged(support_client, plans, query, note):
    page = support_client.get(DECLARE, query).content.decode()
    assert "Some values in the link you followed were not used" in page
    assert note in page


def test_a_hidden_plan_named_in_a_link_is_not_chosen(support_client, plans):
    hidden = plans["internal-tooling"]
    hidden.is_visible = False
    hidden.save()
    page = support_client.get(DECLARE, {"plan": "internal-tooling"}).content.decode()
    assert checked_plan(page) is None
    assert "is not available to you" in page


def test_plan_search_answers_htmx_with_the_matching_options_only(support_client, plans):
    response = support_client.get(DECLARE, {"q": "payment"}, **htmx("plan-options"))
    page = response.content.decode()
    assert "<html" not in page
    assert "Payments degraded" in page
    assert "Website outage" not in page
    # A plan already chosen stays listed (and chosen) whatever the search.
    chosen = plans["website-outage"].pk
    page = support_client.get(DECLARE, {"q": "zzz", "response_plan": chosen}, **htmx("plan-options")).content.decode()
    assert checked_plan(page) == str(chosen)
    assert "Payments degraded" not in page


def test_plan_search_without_javascript_is_a_plain_get(support_client, plans):
    page = support_client.get(DECLARE, {"q": "security"}).content.decode()
    assert "<html" in page
    assert "Security event" in page
    assert "Data pipeline delay" not in page
    assert "Show all plans" in page


def test_a_nul_in_the_plan_search_separates_words_like_a_space(support_client, plans):
    # PostgreSQL's text cannot hold a NUL, nor be asked about one: it was a server error.
    response = support_client.get(DECLARE, {"q": "pay\x00degraded"}, **htmx("plan-options"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Payments degraded" in page
    assert "Website outage" not in page


def test_the_duplicate_guard_lists_recent_declarations_of_the_plan(
    support_client, plans, support_user, other_support_user
):
    plan = plans["security-event"]
    mine, _ = declaration_create(declared_by=support_user, response_plan=plan, title="Leaked key")
    theirs, _ = declaration_create(declared_by=other_support_user, response_plan=plan, title="Phishing")
    Declaration.objects.filter(pk=theirs.pk).update(state=Declaration.State.STARTED)
    old, _ = declaration_create(declared_by=support_user, response_plan=plan, title="Last week's")
    Declaration.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=61))
    failed, _ = declaration_create(declared_by=support_user, response_plan=plan, title="Did not start")
    Declaration.objects.filter(pk=failed.pk).update(state=Declaration.State.FAILED)
    declaration_create(declared_by=support_user, response_plan=plans["website-outage"], title="Other plan")

    page = support_client.get(DECLARE, {"plan": plan.pk}, **htmx("plan-summary")).content.decode()
    assert "<html" not in page
    assert "2 declarations of this plan in the last 60 minutes" in page
    assert f'href="/declarations/{mine.pk}/"' in page and "Leaked key" in page
    for absent in ("Last week&#x27;s", "Did not start", "Other plan"):
        assert absent not in page


def test_support_staff_learn_of_others_declarations_without_their_titles_or_names(
    support_client, plans, support_user, other_support_user
):
    """Support staff may open only their own declarations: the warning used to show everyone's titles and names.
    It still warns — how many, how recent, whether an incident already started — so nobody declares twice."""
    plan = plans["security-event"]
    theirs, _ = declaration_create(declared_by=other_support_user, response_plan=plan, title="Phishing of the CFO")
    Declaration.objects.filter(pk=theirs.pk).update(state=Declaration.State.STARTED)
    declaration_create(declared_by=other_support_user, response_plan=plan, title="Second wave")

    page = support_client.get(DECLARE, {"plan": plan.pk}, **htmx("plan-summary")).content.decode()

    assert "Already declared? 2 declarations of this plan in the last 60 minutes." in page
    assert "2 by other people, the latest just now; 1 already started an incident in Incident Manager." in page
    assert "ask your incident channel or a manager" in page
    for secret in ("Phishing of the CFO", "Second wave", "olga.support", f"/declarations/{theirs.pk}/"):
        assert secret not in page


def test_the_duplicate_window_is_configurable(support_client, plans, support_user, settings):
    settings.PORTAL_DUPLICATE_WINDOW_MINUTES = 5
    declaration, _ = declaration_create(declared_by=support_user, response_plan=plans["website-outage"])
    Declaration.objects.filter(pk=declaration.pk).update(created_at=timezone.now() - timedelta(minutes=6))
    page = support_client.get(DECLARE, {"plan": "website-outage"}, **htmx("plan-summary")).content.decode()
    assert "No declaration of this plan in the last 5 minutes." in page


def test_managers_get_links_to_everyones_declarations(client, manager_user, other_support_user, plans):
    theirs, _ = declaration_create(
        declared_by=other_support_user, response_plan=plans["website-outage"], title="Checkout down"
    )
    client.force_login(manager_user)
    page = client.get(DECLARE, {"plan": "website-outage"}, **htmx("plan-summary")).content.decode()
    assert f'href="/declarations/{theirs.pk}/"' in page
    assert "Checkout down" in page and "by olga.support" in page
    assert "by other people" not in page


def preview_of(client, data) -> dict:
    response = client.post(DECLARE, {**data, "action": "preview"}, **htmx("preview"))
    page = response.content.decode()
    assert "<html" not in page
    return json.loads(html.unescape(re.search(r"<pre[^>]*><code>(.*?)</code></pre>", page, re.S)[1]))


def test_the_preview_is_what_the_worker_will_send(support_client, plans, support_user):
    plan = plans["website-outage"]
    items = [
        {"kind": "link", "value": "https://status.example.com/incidents/42", "title": "Status page"},
        {"kind": "resource", "value": INSTANCE_ARN},
    ]
    data = declare_post(plan, title="Checkout returns 500", impact=2, items=items)
    data["items-2-kind"], data["items-2-file_name"], data["items-TOTAL_FORMS"] = "file", "timeline.txt", "3"
    preview = preview_of(support_client, data)
    assert preview["clientToken"] == ASSIGNED_ON_SUBMIT
    assert preview["relatedItems"][2] == {
        "identifier": {
            "type": "ATTACHMENT",
            "value": {
                "arn": "arn:aws:s3:::incident-portal-attachments/declarations/<assigned on submit>/002-timeline.txt"
            },
        },
        "title": "timeline.txt",
    }

    declaration, _ = declaration_create(
        declared_by=support_user,
        response_plan=plan,
        title="Checkout returns 500",
        impact=2,
        related_items=[RelatedItemInput(**item) for item in items],
    )
    sent = json.loads(json.dumps(declaration_start_request(declaration), default=str))
    # Apart from what only exists once stored, the preview is the request, key for key.
    for request in (preview, sent):
        request.pop("clientToken")
        request["relatedItems"] = request["relatedItems"][:2]
        trigger = request.pop("triggerDetails")
        assert trigger["source"] == "com.example.incident-portal"
        assert json.loads(trigger["rawData"])["declaredBy"] == "sam.support"
    assert preview == sent


def test_the_plans_own_title_and_impact_are_left_to_the_plan(support_client, plans, sandbox):
    plan = plans["payments-degraded"]
    data = declare_post(plan, title=plan.template_title, impact=plan.template_impact)
    preview = preview_of(support_client, data)
    assert "title" not in preview and "impact" not in preview
    support_client.post(DECLARE, data)
    declaration = Declaration.objects.get()
    assert declaration.title == "" and declaration.impact is None


def test_the_preview_leaves_out_items_not_yet_valid(support_client, plans):
    data = declare_post(plans["website-outage"], items=[{"kind": "resource", "value": "notanarn"}])
    response = support_client.post(DECLARE, {**data, "action": "preview"}, **htmx("preview"))
    assert "1 related item is left out until it is complete and valid." in response.content.decode()


def test_adding_a_row_without_javascript_keeps_what_was_entered(support_client, plans, sandbox):
    data = declare_post(
        plans["website-outage"], title="Checkout 500s", items=[{"kind": "link", "value": "javascript:alert(1)"}]
    )
    page = support_client.post(DECLARE, {**data, "action": "add-row"}).content.decode()
    assert 'name="items-TOTAL_FORMS" value="2"' in page
    assert 'value="Checkout 500s"' in page
    assert 'value="javascript:alert(1)"' in page
    assert 'id="id_items-1-value"' in page
    # Nothing is judged (or stored) until the person declares.
    assert "Nothing was declared yet" not in page
    assert Declaration.objects.count() == 0


def test_an_htmx_submit_is_redirected_by_htmx(support_client, plans, sandbox):
    response = support_client.post(DECLARE, declare_post(plans["website-outage"]), **htmx("declare-body"))
    declaration = Declaration.objects.get()
    assert response["HX-Redirect"] == f"/declarations/{declaration.pk}/"


def test_an_htmx_submit_with_errors_gets_the_form_back_with_its_summary(support_client, plans, sandbox):
    response = support_client.post(DECLARE, declare_post(None, title="x" * 201), **htmx("declare-body"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in page
    assert 'id="error-summary"' in page
    assert 'href="#id_title"' in page
    assert Declaration.objects.count() == 0


def test_the_same_form_sent_twice_makes_one_declaration(support_client, plans, sandbox):
    data = declare_post(plans["website-outage"], title="Checkout down")
    first = support_client.post(DECLARE, data)
    second = support_client.post(DECLARE, data)
    assert first["Location"] == second["Location"]
    assert Declaration.objects.count() == 1


def test_a_form_reused_with_other_values_is_refused(support_client, plans, sandbox):
    data = declare_post(plans["website-outage"], title="Checkout down")
    support_client.post(DECLARE, data)
    page = support_client.post(DECLARE, {**data, "title": "Something else"}).content.decode()
    assert "This form was already used to declare an incident with other values." in page
    assert Declaration.objects.count() == 1


def test_the_page_carries_the_servers_rules_for_the_browser(support_client, plans, settings):
    settings.PORTAL_MAX_FILES = 3
    page = support_client.get(DECLARE).content.decode()
    rules = json.loads(re.search(r'<script id="declare-rules" type="application/json">(.*?)</script>', page)[1])
    assert rules["arn_pattern"] == start_incident_limits()["arn_pattern"]
    assert rules["max_files"] == 3
    assert rules["link_schemes"] == ["http", "https"]
    assert "up to <strong>3</strong>" in page


def status_section(html: str) -> str:
    """The live status's own element, without what rides along out of band."""
    start = html.index('id="status"')
    return html[start : html.index("</section>", start)]


def test_the_live_status_stops_polling_at_a_final_state(support_client, plans, support_user):
    declaration, _ = declaration_create(declared_by=support_user, response_plan=plans["website-outage"])
    url = declaration.get_absolute_url()
    polling = support_client.get(url, **htmx("status")).content.decode()
    assert "<html" not in polling
    assert 'hx-trigger="load delay:150ms"' in polling  # a new declaration: asked for fast

    Declaration.objects.filter(pk=declaration.pk).update(
        state=Declaration.State.STARTED, incident_record_arn="arn:aws:ssm-incidents::123456789012:incident-record/x/1"
    )
    final = support_client.get(url, **htmx("status")).content.decode()
    # The status stops asking; the incident's own section asks from now on (tests/test_status_polling.py).
    assert "hx-trigger" not in status_section(final)
    assert 'id="incident" hx-swap-oob="true"' in final
    assert "incident-record/x/1" in final
    # The console link leads to that incident record, in the region the portal called.
    assert (
        "/systems-manager/incidents/incident/arn%3Aaws%3Assm-incidents%3A%3A123456789012%3Aincident-record%2Fx%2F1/"
        in final
    )
    # The audit trail is refreshed alongside, out of band.
    assert 'id="audit-trail" hx-swap-oob="true"' in final


def test_the_live_status_refreshes_file_states_and_keeps_polling_while_a_file_waits_for_s3(
    support_client, plans, support_user
):
    declaration, _ = declaration_create(
        declared_by=support_user,
        response_plan=plans["website-outage"],
        related_items=[RelatedItemInput(kind="file", upload=upload("timeline.txt", b"12:01 spike"))],
    )
    # S3 was down at declare time: the incident started, the file still waits in the portal.
    Declaration.objects.filter(pk=declaration.pk).update(state=Declaration.State.STARTED)
    declaration.related_items.update(attachment_state=AttachmentState.PENDING)
    url = declaration.get_absolute_url()

    waiting = support_client.get(url, **htmx("status")).content.decode()
    assert 'hx-trigger="load delay:1s"' in waiting, "a final declaration still polls while a file is pending"
    assert "1 file still waiting to reach S3" in waiting
    assert 'id="attachments" hx-swap-oob="true"' in waiting
    assert "Waiting to be uploaded" in waiting

    declaration.related_items.update(attachment_state=AttachmentState.ATTACHED)
    landed = support_client.get(url, **htmx("status")).content.decode()
    assert "hx-trigger" not in status_section(landed), "polling stops once no file is pending"
    assert "still waiting" not in landed
    # The answer that stops polling still carries the files' final states.
    assert 'id="attachments" hx-swap-oob="true"' in landed
    assert "Attached to the incident" in landed and "Download timeline.txt" in landed


def test_a_declaration_without_files_refreshes_no_related_items(support_client, plans, support_user):
    declaration, _ = declaration_create(
        declared_by=support_user, response_plan=plans["website-outage"], related_items=[]
    )
    polling = support_client.get(declaration.get_absolute_url(), **htmx("status")).content.decode()
    assert 'hx-trigger="load delay:150ms"' in polling  # a new declaration: asked for fast
    assert 'id="attachments"' not in polling


def test_every_page_loads_htmx_from_the_projects_static_files_with_a_nonce(support_client, plans):
    page = support_client.get(DECLARE).content.decode()
    assert re.search(r'<script src="/static/js/htmx-2\.0\.11\.min\.js" nonce="[^"]+" defer>', page)
    assert "includeIndicatorStyles&quot;: false" in page or '"includeIndicatorStyles": false' in page
    assert "style=" not in page
    assert not re.search(r"<script(?![^>]*(src=|application/json))", page)


def test_the_live_status_keeps_the_rest_of_the_page_in_step(support_client, plans, support_user):
    declaration, _ = declaration_create(declared_by=support_user, response_plan=plans["website-outage"])
    url = declaration.get_absolute_url()
    arn = "arn:aws:ssm-incidents::123456789012:incident-record/website-outage/1"
    Declaration.objects.filter(pk=declaration.pk).update(
        state=Declaration.State.STARTED,
        incident_record_arn=arn,
        aws_request={"responsePlanArn": plans["website-outage"].arn, "clientToken": declaration.client_token},
    )
    final = support_client.get(url, **htmx("status")).content.decode()
    # The facts card and what was sent to AWS change with the state: both are swapped in out of band, so the
    # page never shows "Started" above a card still saying "Starting" and "None yet".
    facts = final[final.index('id="declaration-facts" hx-swap-oob="true"') :]
    facts = facts[: facts.index("</section>")]
    assert "state-pill-started" in facts
    assert arn in facts
    exchange = final[final.index('id="aws-exchange" hx-swap-oob="true"') :]
    assert declaration.client_token in exchange[: exchange.index("</section>")]

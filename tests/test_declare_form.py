"""The declare form: what a person sees and what is refused before anything is stored or sent."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from incidents import roles
from incidents.errors import PortalError
from incidents.models import AuditEvent, Declaration
from incidents.selectors.plans import response_plan_available_get, response_plans_available_to
from incidents.services.declarations import declaration_create
from tests.conftest import make_user
from tests.helpers import declare_post, upload

DECLARE = reverse("incidents:declare")


def assert_nothing_made(sandbox):
    assert Declaration.objects.count() == 0
    assert AuditEvent.objects.filter(declaration__isnull=False).count() == 0
    assert sandbox.calls() == []


@pytest.mark.django_db
def test_form_lists_visible_plans_with_their_note_and_defaults(support_client, plans):
    response = support_client.get(DECLARE)
    page = response.content.decode()
    assert response.status_code == 200
    website = plans["website-outage"]
    assert website.label in page
    assert website.template_title in page
    assert "Default impact: 1 – Critical" in page
    # Every impact is offered with its plain-language meaning.
    assert "Full application failure that impacts many to all customers." in page
    assert "urgent action is needed to avoid impact" in page
    assert "Leave empty to use the response plan&#x27;s title." in page


@pytest.mark.django_db
def test_hidden_plans_are_not_offered(support_client, plans):
    hidden = plans["internal-tooling"]
    hidden.is_visible = False
    hidden.save()
    page = support_client.get(DECLARE).content.decode()
    assert hidden.label not in page


@pytest.mark.django_db
def test_plans_limited_to_groups_are_offered_only_to_those_groups(support_client, plans):
    from django.contrib.auth.models import Group

    security = plans["security-event"]
    security.allowed_groups.set([Group.objects.get_or_create(name="managers")[0]])
    page = support_client.get(DECLARE).content.decode()
    assert security.label not in page
    response = support_client.post(DECLARE, declare_post(security))
    assert "not available to you" in response.content.decode()


def too_many_items():
    return [{"kind": "link", "value": f"https://status.example.com/{n}"} for n in range(101)]


BAD_INPUTS = {
    "no plan": (dict(plan=None), "Choose the response plan that fits this incident."),
    "unknown plan": (dict(plan=999_999), "Choose one of the response plans listed"),
    "plan id beyond any bigint": (dict(plan=2**63), "Choose one of the response plans listed"),
    "plan id negative": (dict(plan=-1), "Choose one of the response plans listed"),
    "plan id not a number": (dict(plan="website-outage"), "Choose one of the response plans listed"),
    "title over 200 characters": (dict(title="x" * 201), "A title can be at most 200 characters (it has 201)."),
    "title with a line break": (dict(title="two\nlines"), "Remove the control characters"),
    "impact 0": (dict(impact=0), "Choose an impact from 1 (critical) to 5 (no impact)."),
    "impact 6": (dict(impact=6), "Choose an impact from 1 (critical) to 5 (no impact)."),
    "impact not a number": (dict(impact="high"), "Choose an impact from 1 (critical) to 5 (no impact)."),
    "javascript: link": (
        dict(items=[{"kind": "link", "value": "javascript:alert(1)"}]),
        "Only http:// and https:// links can be attached, not javascript: links.",
    ),
    "data: link": (
        dict(items=[{"kind": "link", "value": "data:text/html,<script>alert(1)</script>"}]),
        "not data: links",
    ),
    "malformed link": (
        dict(items=[{"kind": "link", "value": "https://"}]),
        "Enter a complete web address starting with https:// or http://",
    ),
    "link over 1000 characters": (
        dict(items=[{"kind": "link", "value": "https://example.com/" + "a" * 990}]),
        "A link can be at most 1000 characters (it has 1010).",
    ),
    "malformed ARN": (
        dict(items=[{"kind": "resource", "value": "notanarn"}]),
        "Enter an AWS resource ARN, such as arn:aws:ec2:",
    ),
    "ARN with a bad account": (
        dict(items=[{"kind": "resource", "value": "arn:aws:ec2:us-east-1:12345:instance/i-1"}]),
        "Enter an AWS resource ARN",
    ),
    "link row without a value": (dict(items=[{"kind": "link", "title": "dashboard"}]), "Enter the link or ARN"),
    "more than 100 related items": (dict(items=too_many_items()), "An incident can have at most 100 related items."),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", BAD_INPUTS.keys())
def test_bad_input_gets_a_field_error_and_nothing_is_stored(support_client, plans, sandbox, case):
    overrides, message = BAD_INPUTS[case]
    arguments = {"plan": plans["website-outage"], **overrides}
    response = support_client.post(DECLARE, declare_post(arguments.pop("plan"), **arguments))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Nothing was declared yet" in page
    assert message.replace("'", "&#x27;") in page or message in page
    assert_nothing_made(sandbox)


@pytest.mark.django_db
def test_hidden_plan_is_refused_even_when_posted_directly(support_client, plans, sandbox):
    hidden = plans["internal-tooling"]
    hidden.is_visible = False
    hidden.save()
    response = support_client.post(DECLARE, declare_post(hidden))
    assert "not available to you" in response.content.decode()
    assert_nothing_made(sandbox)


@pytest.mark.django_db
def test_plan_deleted_in_aws_is_refused(support_client, plans, sandbox):
    gone = plans["data-pipeline-delay"]
    gone.deleted_in_aws = True
    gone.save()
    response = support_client.post(DECLARE, declare_post(gone))
    assert "not available to you" in response.content.decode()
    assert_nothing_made(sandbox)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("file", "message"),
    [
        (upload("empty.log", b""), "“empty.log” is empty; attach a file with content."),
        (upload("big.log", b"x" * 2048), "“big.log” is 2 KB; files can be at most 1 KB."),
        (upload("run.exe", b"MZ"), "“run.exe” is not an allowed type."),
        (upload("report.pdf.exe", b"MZ"), "“report.pdf.exe” is not an allowed type."),
    ],
    ids=["empty", "oversized", "executable", "double extension"],
)
def test_bad_files_are_refused(support_client, plans, sandbox, settings, file, message):
    settings.PORTAL_MAX_FILE_BYTES = 1024
    response = support_client.post(
        DECLARE, declare_post(plans["website-outage"], items=[{"kind": "file", "file": file}])
    )
    assert message in response.content.decode()
    assert_nothing_made(sandbox)


@pytest.mark.django_db
def test_a_file_row_without_a_file_is_refused(support_client, plans, sandbox):
    response = support_client.post(DECLARE, declare_post(plans["website-outage"], items=[{"kind": "file"}]))
    assert "Choose a file to attach, or remove this row." in response.content.decode()
    assert_nothing_made(sandbox)


@pytest.mark.django_db
def test_error_summary_links_to_the_field(support_client, plans):
    response = support_client.post(DECLARE, declare_post(plans["website-outage"], title="x" * 201))
    assert 'href="#id_title"' in response.content.decode()


@pytest.mark.django_db
def test_values_entered_survive_a_failed_submission(support_client, plans):
    data = declare_post(
        plans["website-outage"],
        title="Checkout 500s",
        items=[
            {"kind": "link", "value": "javascript:alert(1)", "title": "bad"},
            {"kind": "resource", "value": "arn:aws:ec2:us-east-1:123456789012:instance/i-1"},
        ],
    )
    page = support_client.post(DECLARE, data).content.decode()
    assert 'value="Checkout 500s"' in page
    assert "arn:aws:ec2:us-east-1:123456789012:instance/i-1" in page


@pytest.mark.django_db
def test_a_plan_chosen_for_one_person_is_checked_again_for_another(plans, support_user, manager_user, sandbox):
    """The form's plan carries whom it was selected for, which spares the service a query; only for that person."""
    managers_only = plans["internal-tooling"]
    managers_only.allowed_groups.set([Group.objects.get(name=roles.MANAGER)])
    chosen_by_manager = response_plans_available_to(user=manager_user).get(pk=managers_only.pk)
    with pytest.raises(PortalError, match="not available to you"):
        declaration_create(declared_by=support_user, response_plan=chosen_by_manager)
    assert not Declaration.objects.exists()
    assert_nothing_made(sandbox)


@pytest.mark.django_db
def test_the_submitted_plan_is_looked_up_with_the_same_rules_as_the_list(plans, django_user_model):
    """The form's list of plans and its check of a submitted one are two queries: they must agree for everyone."""
    managers, support = Group.objects.get(name=roles.MANAGER), Group.objects.get(name=roles.SUPPORT)
    plans["security-event"].allowed_groups.set([managers])
    plans["internal-tooling"].allowed_groups.set([managers, support])
    hidden = plans["website-outage"]
    hidden.is_visible = False
    hidden.save()
    people = [
        make_user(django_user_model, "only.support"),
        make_user(django_user_model, "only.manager", roles.MANAGER),
        make_user(django_user_model, "no.role", role=None),
        django_user_model.objects.create_superuser("root", password="a-long-test-password"),
    ]
    both = make_user(django_user_model, "both.roles", roles.MANAGER)
    both.groups.add(support)
    people.append(both)
    restricted = {plans["security-event"].pk, plans["internal-tooling"].pk}
    seen = {}
    for person in people:
        person = django_user_model.objects.get(pk=person.pk)  # as a request reads them
        listed = set(response_plans_available_to(user=person).values_list("pk", flat=True))
        looked_up = {plan.pk for plan in plans.values() if response_plan_available_get(user=person, pk=plan.pk)}
        assert looked_up == listed, person.username
        assert hidden.pk not in looked_up
        seen[person.username] = looked_up & restricted
    assert seen == {
        "only.support": {plans["internal-tooling"].pk},
        "only.manager": restricted,
        "no.role": set(),
        "root": restricted,
        "both.roles": restricted,
    }

"""Declaring quickly, as the server answers it (issue 22, items 6 and 7): the kind of a related item read from what
is typed, several files attached at once, the plan's defaults said once, the newest few duplicates, and the bar that
says what will be declared beside the Declare button."""

import re

import pytest
from django.urls import reverse

from incidents import validators
from incidents.models import Declaration
from incidents.services.declarations import declaration_create
from tests.helpers import declare_post, upload

DECLARE = reverse("incidents:declare")
INSTANCE_ARN = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc1234def567890"
pytestmark = pytest.mark.django_db


def detected(*values: str) -> list[dict]:
    return [{"kind": "", "value": value} for value in values]


def test_the_kind_of_an_item_is_read_from_what_was_typed(support_client, plans, sandbox):
    data = declare_post(plans["website-outage"], items=detected(INSTANCE_ARN, " https://status.example.com/42 "))
    response = support_client.post(DECLARE, data)
    assert response.status_code == 302
    declaration = Declaration.objects.get()
    assert [(item.kind, item.value) for item in declaration.related_items.all()] == [
        ("resource", INSTANCE_ARN),
        ("link", "https://status.example.com/42"),
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("status.example.com/42", validators.MESSAGES["link_invalid"]),
        ("arn:aws:ec2:us-east-1:12345:instance/i-1", validators.MESSAGES["arn_invalid"]),
        ("ARN:aws:ec2", validators.MESSAGES["arn_invalid"]),
    ],
)
def test_what_was_typed_is_checked_as_the_kind_it_reads_as(support_client, plans, sandbox, value, message):
    response = support_client.post(DECLARE, declare_post(plans["website-outage"], items=detected(value)))
    assert f"Related item 1, link or arn: {message}" in response.content.decode()
    assert not Declaration.objects.exists()


def test_the_kind_detection_is_the_validators_one():
    assert validators.related_item_kind_detect("  arn:aws:s3:::bucket") == "resource"
    assert validators.related_item_kind_detect("https://example.com/arn:aws:x") == "link"
    assert validators.related_item_kind_detect("") == "link"
    assert validators.client_rules()["arn_prefix"] == validators.ARN_PREFIX


def test_an_empty_row_left_to_detection_is_not_an_item(support_client, plans, sandbox):
    data = declare_post(plans["website-outage"], items=detected(""))
    data["items-1-kind"], data["items-TOTAL_FORMS"] = "link", "2"  # as older pages sent an empty row
    assert support_client.post(DECLARE, data).status_code == 302
    assert not Declaration.objects.get().related_items.exists()


def test_several_files_attached_at_once_become_an_item_each_after_the_typed_ones(support_client, plans, sandbox):
    data = declare_post(plans["website-outage"], items=detected(INSTANCE_ARN), extra_rows=1)
    data["attachments"] = [upload("app.log"), upload("db.log", b"WARN slow query\n")]
    response = support_client.post(DECLARE, data)
    assert response.status_code == 302
    items = list(Declaration.objects.get().related_items.all())
    assert [(item.kind, item.file_name or item.value) for item in items] == [
        ("resource", INSTANCE_ARN),
        ("file", "app.log"),
        ("file", "db.log"),
    ]


def test_attached_files_are_checked_as_files_and_counted_with_the_others(support_client, plans, sandbox, settings):
    settings.PORTAL_MAX_FILES = 2
    data = declare_post(plans["website-outage"], items=[{"kind": "file", "file": upload("one.txt")}])
    data["attachments"] = [upload("run.exe"), upload("two.txt")]
    page = support_client.post(DECLARE, data).content.decode()
    assert "Related item 2, file: “run.exe” is not an allowed type." in page
    data["attachments"] = [upload("two.txt"), upload("three.txt")]
    data["items-0-file"] = upload("one.txt")
    page = support_client.post(DECLARE, data).content.decode()
    assert "Attach at most 2 files (there are 3)." in page
    assert not Declaration.objects.exists()


def test_attached_files_show_in_the_preview_and_come_back_as_rows_to_choose_again(support_client, plans):
    data = declare_post(plans["website-outage"], extra_rows=1)
    data["attachments"] = [upload("app.log")]
    page = support_client.post(DECLARE, {**data, "action": "preview"}).content.decode()
    assert "declarations/&lt;assigned on submit&gt;/000-app.log" in page
    assert re.search(r'<option value="file" selected>File</option>', page)
    assert 'id="files-dropped"' in page


def test_the_page_offers_to_attach_several_files_and_no_kind_to_choose_first(support_client, plans):
    page = support_client.get(DECLARE).content.decode()
    assert re.search(r'<input type="file" id="id_attachments" name="attachments" multiple', page)
    assert '<option value="" selected>Link or ARN</option>' in page
    assert 'placeholder="https://… or arn:aws:…"' in page


def test_a_row_said_to_be_a_link_does_not_suggest_an_arn(support_client, plans):
    data = declare_post(plans["website-outage"], items=[{"kind": "link", "value": "x"}, {"kind": "resource"}])
    page = support_client.post(DECLARE, {**data, "action": "add-row"}).content.decode()
    placeholders = re.findall(r'name="items-\d+-value"[^>]*?placeholder="([^"]*)"', page, re.S)
    assert placeholders == ["https://status.example.com/…", "arn:aws:…", "https://… or arn:aws:…"]


def test_the_plans_defaults_are_said_once(support_client, plans):
    page = support_client.get(DECLARE, {"plan": "website-outage"}).content.decode()
    assert page.count("Default impact: 1 – Critical") == 1
    assert "does by default" not in page


def test_the_bar_beside_declare_says_what_will_be_declared(support_client, plans):
    page = support_client.get(DECLARE, {"plan": "website-outage", "impact": "3"}).content.decode()
    bar = re.search(r'<div class="declare-bar" id="declare-bar">(.*?)</div>\s*</div>', page, re.S)[1]
    assert '<span class="summary-plan">Website outage</span>' in bar
    assert '<span class="summary-impact">Impact 3 – Medium</span>' in bar
    assert '<span class="summary-title">“Customer-facing website is down”</span>' in bar
    assert 'value="declare" class="primary submit-declare"' in bar
    assert "Choose a response plan first." in support_client.get(DECLARE).content.decode()


def test_the_duplicate_warning_lists_the_newest_three_and_links_to_the_rest(support_client, plans, support_user):
    plan = plans["security-event"]
    made = [declaration_create(declared_by=support_user, response_plan=plan, title=f"Wave {n}")[0] for n in range(5)]
    page = support_client.get(DECLARE, {"plan": plan.pk}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="plan-summary")
    page = page.content.decode()
    assert "Already declared? 5 declarations of this plan" in page
    assert page.count('class="recent-entry"') == 3
    for shown in made[2:]:
        assert f'href="/declarations/{shown.pk}/"' in page
    for older in made[:2]:
        assert f'href="/declarations/{older.pk}/"' not in page
    assert f'<a href="/declarations/?plan={plan.pk}">See the 2 older ones in the history</a>' in page

"""Acting on a started incident in a real browser: a note, a file, a new impact and resolving from the declaration's
page (with and without JavaScript), and joining an incident from the declare page instead of declaring again."""

import json
import re

from playwright.sync_api import expect

from incidents.models import Declaration
from tests.browser.conftest import assert_accessible, screenshot
from tests.helpers import started_declaration, wait_for_action


def action(page, kind: str):
    return page.locator(f"#action-list [data-kind={kind}]").first


def test_the_declarer_notes_attaches_changes_and_resolves_from_the_page(
    page, live_server, support_user, plans, sandbox, ssm_incidents, tmp_path
):
    declaration = started_declaration(declared_by=support_user, plan=plans["website-outage"])
    screenshot_file = tmp_path / "graph.png"
    screenshot_file.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    page.goto(live_server.url + declaration.get_absolute_url())
    assert_accessible(page, "declaration page with its actions")

    page.get_by_label("Note", exact=True).fill("Rolled back the 14:02 deploy")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator(".messages")).to_contain_text("Your note is queued")
    # The list follows the action without a reload (htmx polls it while one is queued).
    expect(action(page, "note")).to_have_attribute("data-state", "sent")

    page.get_by_text("Attach links, ARNs or files").click()
    page.get_by_label("Links and AWS resource ARNs").fill("Errors https://grafana.example.com/d/errors")
    page.get_by_label("Files").set_input_files(str(screenshot_file))
    page.get_by_role("button", name="Attach").click()
    expect(action(page, "related_items")).to_have_attribute("data-state", "sent")

    page.get_by_text("Change the title, impact or summary").click()
    page.get_by_role("radio", name=re.compile("^2 High")).check()
    page.get_by_role("button", name="Change the incident").click()
    expect(action(page, "update")).to_have_attribute("data-state", "sent")

    page.get_by_text("Resolve the incident").click()
    page.get_by_label("Closing note").fill("Customers recovered at 14:40.")
    page.get_by_role("button", name="Resolve incident").click()
    expect(action(page, "resolve")).to_have_attribute("data-state", "sent")
    page.reload()
    expect(page.locator("#incident-resolved")).to_be_visible()
    expect(page.get_by_text("Resolve the incident")).to_have_count(0)
    screenshot(page, "incident-actions-resolved")
    assert_accessible(page, "declaration page after resolving")

    record = ssm_incidents.get_incident_record(arn=declaration.incident_record_arn)["incidentRecord"]
    assert (record["impact"], record["status"]) == (2, "RESOLVED")
    related = ssm_incidents.list_related_items(incidentRecordArn=declaration.incident_record_arn)["relatedItems"]
    assert [item["identifier"]["type"] for item in related] == ["OTHER", "ATTACHMENT"]


def test_a_note_without_javascript(page_without_js, live_server, support_user, plans, sandbox):
    page = page_without_js
    declaration = started_declaration(declared_by=support_user, plan=plans["website-outage"])
    page.goto(live_server.url + declaration.get_absolute_url())

    page.get_by_label("Note", exact=True).fill("")
    page.get_by_role("button", name="Add note").click()
    # Refused where it was typed, nothing sent; then sent for real.
    expect(page.locator("#error-summary")).to_contain_text("Write the note.")
    page.get_by_label("Note", exact=True).fill("Paged the payments team")
    page.get_by_role("button", name="Add note").click()
    expect(page).to_have_url(re.compile(rf"/declarations/{declaration.pk}/#incident-actions$"))
    expect(action(page, "note")).to_be_visible()
    wait_for_action(declaration.actions.get(), "sent")
    page.reload()
    expect(action(page, "note")).to_have_attribute("data-state", "sent")
    events = sandbox.server.emulator.timeline[declaration.incident_record_arn]
    notes = [json.loads(e["eventData"]) for e in events if e["eventType"] == "Custom Event"]
    assert notes == ["Paged the payments team\n— sam.support, via the incident portal"]


def test_joining_from_the_declare_page_adds_to_the_incident_and_starts_nothing(
    page, live_server, support_user, plans, sandbox, ssm_incidents
):
    declaration = started_declaration(declared_by=support_user, plan=plans["website-outage"])
    starts = len(sandbox.calls("StartIncident"))
    page.goto(f"{live_server.url}/declare/?plan=website-outage")
    page.wait_for_function("window.PortalDeclare !== undefined && window.htmx !== undefined")
    page.locator("[data-item-row]").first.locator("input[data-validate=value]").fill("https://status.example.com/x")
    page.get_by_label("Note for the incident you join").fill("Same outage, seen from support")

    page.get_by_role("button", name="Add my items and note to that incident instead").click()

    expect(page).to_have_url(re.compile(rf"/declarations/{declaration.pk}/#incident-actions$"))
    expect(action(page, "note")).to_have_attribute("data-state", "sent")
    expect(action(page, "related_items")).to_have_attribute("data-state", "sent")
    assert Declaration.objects.count() == 1
    assert len(sandbox.calls("StartIncident")) == starts
    related = ssm_incidents.list_related_items(incidentRecordArn=declaration.incident_record_arn)["relatedItems"]
    assert [item["identifier"]["value"] for item in related] == [{"url": "https://status.example.com/x"}]

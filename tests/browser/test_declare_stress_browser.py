"""Declaring under stress in a real browser: Enter never declares, Back does not declare twice, the success page
leads to the incident, failures say what to do."""

import re

from playwright.sync_api import expect

from incidents.aws.client import incident_manager_region
from incidents.models import Declaration
from tests.browser.conftest import assert_accessible
from tests.browser.test_declare_browser import STATUS, open_declare


def test_enter_in_any_field_moves_on_and_never_declares(page, live_server, plans, sandbox):
    open_declare(page, live_server)
    page.get_by_role("radio", name=re.compile("^Website outage")).check()
    page.keyboard.press("Enter")
    page.locator("#id_title").press("Enter")
    first = page.locator("[data-item-row]").first
    first.locator("input[data-validate=value]").fill("https://status.example.com/incidents/42")
    # As one does to "add" a pasted link: the next item is added, and the keyboard is in it.
    first.locator("input[data-validate=value]").press("Enter")
    expect(page.locator("[data-item-row]")).to_have_count(2)
    expect(page.locator("[data-item-row]").last.locator("input[data-validate=value]")).to_be_focused()
    page.locator("[data-item-row]").last.locator("input[data-validate=title]").press("Enter")
    expect(page.locator("[data-item-row]")).to_have_count(3)
    assert page.url.endswith("/declare/")
    assert Declaration.objects.count() == 0
    assert sandbox.calls() == []

    # Ctrl+Enter declares on purpose.
    page.locator("#id_title").press("Control+Enter")
    page.wait_for_url(re.compile(r"/declarations/\d+/$"))
    expect(page.locator(STATUS)).to_have_text("Started", timeout=20_000)
    assert Declaration.objects.count() == 1


def test_enter_without_javascript_declares_nothing(page_without_js, live_server, plans, sandbox):
    page = page_without_js
    page.goto(f"{live_server.url}/declare/?plan=website-outage")
    page.locator("#id_items-0-value").fill("https://status.example.com/incidents/42")
    page.locator("#id_items-0-value").press("Enter")
    expect(page.locator("#enter-pressed")).to_contain_text("Nothing was declared")
    expect(page.locator("[data-item-row]")).to_have_count(2)
    expect(page.locator("#id_items-0-value")).to_have_value("https://status.example.com/incidents/42")
    page.locator("#id_title").press("Enter")
    expect(page.locator("#enter-pressed")).to_be_visible()
    assert Declaration.objects.count() == 0


def test_back_after_declaring_says_so_and_does_not_declare_again(page, live_server, plans, sandbox):
    open_declare(page, live_server)
    page.get_by_role("radio", name=re.compile("^Website outage")).check()
    page.click("button.submit-declare")
    page.wait_for_url(re.compile(r"/declarations/\d+/$"))
    declaration = Declaration.objects.get()
    expect(page.locator(STATUS)).to_have_text("Started", timeout=20_000)

    page.go_back()
    page.wait_for_url(re.compile(r"/declare/$"))
    # Restored from the back/forward cache or fetched again, the page links the declaration just made.
    note = page.locator("#declared-from-here, #declared-lately").first
    expect(note).to_be_visible()
    expect(note.get_by_role("link").first).to_have_attribute("href", re.compile(f"/declarations/{declaration.pk}/$"))

    if not page.get_by_role("radio", name=re.compile("^Website outage")).is_checked():
        page.get_by_role("radio", name=re.compile("^Website outage")).check()
    page.click("button.submit-declare")
    page.wait_for_load_state()
    expect(page.locator("#declared-already, #status").first).to_be_visible()
    assert_accessible(page, "page after declaring again from a restored form")
    assert Declaration.objects.count() == 1
    assert len(sandbox.calls()) == 1


def test_the_success_page_leads_to_the_incident_copies_and_shows_the_state_in_the_tab(page, live_server, plans):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    open_declare(page, live_server, "?plan=website-outage")
    page.click("button.submit-declare")
    page.wait_for_url(re.compile(r"/declarations/\d+/$"))
    # After the redirect the keyboard is on the status, which the person is waiting for.
    expect(page.locator("#live-status")).to_be_focused()
    expect(page.locator(STATUS)).to_have_text("Started", timeout=20_000)
    # The tab's title followed the live status.
    expect(page).to_have_title(re.compile(r"^Started · Declaration \d+"))
    declaration = Declaration.objects.get()
    region = incident_manager_region()
    expect(page.locator("#incident-console-link")).to_have_attribute(
        "href", re.compile(rf"^https://{region}\.console\.aws\.amazon\.com/systems-manager/incidents/incident/arn%3A")
    )
    assert_accessible(page, "started declaration with console link and copy buttons")
    page.get_by_role("button", name="Copy ARN").click()
    expect(page.locator("[data-copy-status]")).to_have_text("Copied the ARN.")
    assert page.evaluate("navigator.clipboard.readText()") == declaration.incident_record_arn
    page.get_by_role("button", name="Copy link").click()
    assert page.evaluate("navigator.clipboard.readText()") == f"{live_server.url}/declarations/{declaration.pk}/"


def test_another_tab_sees_failed_in_its_title(page, live_server, plans, sandbox):
    sandbox.inject(operation="StartIncident", deny_next=1)
    open_declare(page, live_server, "?plan=website-outage")
    page.click("button.submit-declare")
    page.wait_for_url(re.compile(r"/declarations/\d+/$"))
    expect(page).to_have_title(re.compile(r"^Failed · Declaration \d+"), timeout=20_000)


def test_a_failure_speaks_plainly_and_keeps_awss_text_under_it(page, live_server, plans, sandbox, settings):
    sandbox.inject(operation="StartIncident", throttle_next=1000)
    open_declare(page, live_server, "?plan=website-outage")
    page.click("button.submit-declare")
    page.wait_for_url(re.compile(r"/declarations/\d+/$"))
    expect(page.locator(STATUS)).to_have_text("Failed", timeout=30_000)
    failure = page.locator("#failure")
    expect(failure).to_contain_text("AWS is throttling")
    expect(failure).to_contain_text("Retrying can help once AWS answers again.")
    expect(failure).to_contain_text(f"call {settings.PORTAL_ESCALATION_CONTACT}")
    expect(failure.get_by_role("link", name=re.compile("declare it in the AWS console"))).to_have_attribute(
        "href", re.compile(r"/systems-manager/incidents/home\?region=")
    )
    expect(page.locator(".failure-reason")).to_contain_text("gave up after")
    expect(page.locator("#status")).to_contain_text("ThrottlingException")
    assert_accessible(page, "failed declaration explained")

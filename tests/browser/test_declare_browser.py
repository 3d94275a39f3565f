"""The declare page in a real browser: a person declares, watches it start, and recovers from failures."""

import re

import pytest
from django.core.exceptions import ValidationError
from playwright.sync_api import expect

from incidents import validators
from incidents.models import Declaration
from incidents.services.declarations import declaration_create
from tests.browser.conftest import assert_accessible, screenshot

INSTANCE_ARN = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc1234def567890"
STATUS = "#status .state-badge"


def open_declare(page, live_server, query=""):
    page.goto(f"{live_server.url}/declare/{query}")
    page.wait_for_function("window.PortalDeclare !== undefined && window.htmx !== undefined")


def add_item(page, kind, *, value=None, title=None, file=None):
    """A link or ARN in a row of its own (its kind is read from it), or a file through "Attach files"."""
    if kind == "file":
        page.locator("#id_attachments").set_input_files(file)
        row = page.locator("[data-item-row]").filter(has=page.locator("[data-file-label]:visible")).last
    else:
        page.click("#add-row")
        row = page.locator("[data-item-row]").last
        row.locator("input[data-validate=value]").fill(value)
        expect(row.locator("[data-detected-kind]")).to_have_text({"link": "Link", "resource": "AWS resource"}[kind])
    if title is not None:
        row.locator("input[data-validate=title]").fill(title)
    return row


def test_a_declaration_with_a_link_an_arn_and_a_file_reaches_started_live(page, live_server, plans, tmp_path, s3):
    timeline = tmp_path / "timeline.txt"
    timeline.write_bytes(b"12:01 error rate spiked\n" * 2000)
    open_declare(page, live_server)
    assert_accessible(page, "empty declare page")
    screenshot(page, "01-declare-empty")

    page.get_by_role("radio", name=re.compile("^Website outage")).check()
    expect(page.locator("#declare-summary")).to_contain_text("Website outage")
    # The plan fills in its defaults, marked as coming from the plan.
    expect(page.locator("#id_title")).to_have_value("Customer-facing website is down")
    expect(page.locator("#title-source")).to_have_text("From the plan")
    expect(page.locator("input[name=impact][value='1']")).to_be_checked()

    page.fill("#id_title", "Checkout returns 500 for all customers")
    expect(page.locator("#title-source")).to_have_text("Your own — overrides the plan's")
    page.get_by_role("radio", name=re.compile("^2 High")).check()
    expect(page.locator("#impact-override")).to_contain_text("the plan's impact is 1 – Critical")

    first = page.locator("[data-item-row]").first
    first.locator("input[data-validate=value]").fill("https://status.example.com/incidents/42")
    first.locator("input[data-validate=title]").fill("Status page")
    add_item(page, "resource", value=INSTANCE_ARN, title="Web server")
    file_row = add_item(page, "file", file=str(timeline), title="Timeline")
    expect(file_row.locator("[data-file-label]")).to_have_text("timeline.txt · 46.9 KB")
    expect(page.locator("#item-counts")).to_have_text("3 of 100 items · 1 of 10 files")

    page.locator("#preview-details summary").click()
    preview = page.locator("#preview pre")
    expect(preview).to_contain_text('"url": "https://status.example.com/incidents/42"')
    expect(preview).to_contain_text(INSTANCE_ARN)
    expect(preview).to_contain_text("declarations/<assigned on submit>/002-timeline.txt")
    expect(preview).to_contain_text('"impact": 2')
    screenshot(page, "02-declare-filled")

    page.click("button.submit-declare")
    page.wait_for_url(re.compile(r"/declarations/\d+/$"))
    page.evaluate("window.stayedOnPage = true")
    expect(page.locator(STATUS)).to_have_text("Started", timeout=20_000)
    # The status arrived live, without reloading, and polling stopped at the final state.
    assert page.evaluate("window.stayedOnPage") is True
    expect(page.locator("#status")).not_to_have_attribute("hx-trigger", re.compile("."))
    expect(page.locator("#audit-trail")).to_contain_text("declaration.started")
    expect(page.get_by_role("link", name=re.compile("Open this incident in the AWS console"))).to_have_attribute(
        "href", re.compile(r"^https://[a-z0-9-]+\.console\.aws\.amazon\.com/systems-manager/incidents/incident/arn%3A")
    )
    screenshot(page, "03-detail-started")
    assert_accessible(page, "declaration page")

    declaration = Declaration.objects.get()
    assert declaration.title == "Checkout returns 500 for all customers"
    assert declaration.impact == 2
    expect(page.locator("#status")).to_contain_text(declaration.incident_record_arn)
    items = {item.kind: item for item in declaration.related_items.all()}
    assert items["link"].value == "https://status.example.com/incidents/42"
    assert items["resource"].value == INSTANCE_ARN
    stored = s3.get_object(Bucket=items["file"].s3_bucket, Key=items["file"].s3_key)
    assert stored["Body"].read() == timeline.read_bytes()


def test_mistakes_are_shown_at_the_field_as_you_type_and_nothing_is_stored(page, live_server, plans, sandbox, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("first responder notes\n")
    open_declare(page, live_server)
    value = page.locator("[data-item-row] input[data-validate=value]").first
    value.fill("arn:aws:ec2:us-east-1:12345:instance/i-1")
    expect(page.locator("#id_items-0-value-error")).to_have_text(validators.MESSAGES["arn_invalid"])
    add_item(page, "file", file=str(notes))
    value.fill("ftp://files.example.com/log")
    expect(page.locator("#id_items-0-value-error")).to_have_text(
        "Only http:// and https:// links can be attached, not ftp: links."
    )
    expect(value).to_have_attribute("aria-invalid", "true")

    # Submitted anyway, with no plan: the server answers with a summary linked to each field.
    page.click("button.submit-declare")
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Response plan: Choose the response plan that fits this incident.")
    expect(summary).to_contain_text("Related item 1, link or arn: Only http:// and https:// links")
    expect(page.locator("#plan-picker-error")).to_have_text("Choose the response plan that fits this incident.")
    screenshot(page, "04-declare-errors")
    assert_accessible(page, "declare page with errors")
    summary.get_by_role("link", name=re.compile("Related item 1")).click()
    expect(page.locator("#id_items-0-value")).to_be_focused()
    # The file chosen before the page came back with errors is still chosen.
    assert page.locator("#id_items-1-file").evaluate("input => input.files[0].name") == "notes.txt"
    expect(page.locator("[data-item-row]").nth(1).locator("[data-file-label]")).to_have_text("notes.txt · 22 bytes")

    assert Declaration.objects.count() == 0
    assert sandbox.calls() == []


def test_a_file_the_server_would_refuse_is_refused_before_uploading(page, live_server, plans, tmp_path, settings):
    settings.PORTAL_MAX_FILE_BYTES = 1024
    big = tmp_path / "dump.log"
    big.write_bytes(b"x" * 2048)
    open_declare(page, live_server)
    page.get_by_role("radio", name=re.compile("^Payments degraded")).check()
    row = add_item(page, "file", file=str(big))
    expect(page.locator("#id_items-0-file-error")).to_have_text("“dump.log” is 2 KB; files can be at most 1 KB.")
    page.click("button.submit-declare")
    expect(row.get_by_role("button", name="Remove file dump.log")).to_be_focused()
    # Removing the file before submitting clears the problem.
    row.get_by_role("button", name="Remove file dump.log").click()
    expect(page.locator("#id_items-0-file-error")).to_be_hidden()
    assert Declaration.objects.count() == 0


def test_a_double_click_makes_one_declaration(page, live_server, plans, sandbox):
    open_declare(page, live_server)
    page.get_by_role("radio", name=re.compile("^Data pipeline delay")).check()
    page.dblclick("button.submit-declare")
    page.wait_for_url(re.compile(r"/declarations/\d+/$"))
    expect(page.locator(STATUS)).to_have_text("Started", timeout=20_000)
    assert Declaration.objects.count() == 1
    assert len(sandbox.calls()) == 1


def test_the_status_moves_from_starting_to_started_on_its_own(page, live_server, plans, sandbox):
    sandbox.inject(operation="StartIncident", latency_ms=2500)
    open_declare(page, live_server, "?plan=payments-degraded")
    page.click("button.submit-declare")
    page.wait_for_url(re.compile(r"/declarations/\d+/$"))
    expect(page.locator(STATUS)).to_have_text("Starting", timeout=10_000)
    expect(page.locator("#status .step-current")).to_contain_text("Starting")
    screenshot(page, "05-detail-starting")
    expect(page.locator(STATUS)).to_have_text("Started", timeout=20_000)


def test_a_failed_declaration_shows_why_and_retries_with_the_same_client_token(page, live_server, plans, sandbox):
    sandbox.inject(operation="StartIncident", deny_next=1)
    open_declare(page, live_server, "?plan=website-outage")
    page.click("button.submit-declare")
    page.wait_for_url(re.compile(r"/declarations/\d+/$"))
    expect(page.locator(STATUS)).to_have_text("Failed", timeout=20_000)
    expect(page.locator(".failure-reason")).not_to_be_empty()
    expect(page.locator("#status")).to_contain_text("AccessDeniedException")
    screenshot(page, "06-detail-failed")
    assert_accessible(page, "failed declaration page")

    page.get_by_role("button", name="Retry").click()
    expect(page.locator(".message-success")).to_contain_text("same client token")
    expect(page.locator(STATUS)).to_have_text("Started", timeout=20_000)
    tokens = {call["params"]["clientToken"] for call in sandbox.calls()}
    assert tokens == {Declaration.objects.get().client_token}
    assert len(sandbox.calls()) == 2


def test_a_link_can_open_the_form_filled_in(page, live_server, plans):
    open_declare(page, live_server, "?plan=payments-degraded&title=Card+payments+time+out&impact=1")
    expect(page.get_by_role("radio", name=re.compile("^Payments degraded"))).to_be_checked()
    expect(page.locator("#id_title")).to_have_value("Card payments time out")
    expect(page.locator("#title-source")).to_have_text("Your own — overrides the plan's")
    expect(page.locator("input[name=impact][value='1']")).to_be_checked()
    expect(page.locator("#impact-override")).to_be_visible()

    # The impact is chosen with the keyboard like any radio group, and the form keeps saying what overrides what.
    page.locator("input[name=impact][value='1']").focus()
    page.keyboard.press("ArrowDown")
    expect(page.locator("input[name=impact][value='2']")).to_be_checked()
    expect(page.locator("#impact-source")).to_have_text("From the plan")
    expect(page.locator("#impact-override")).to_be_hidden()
    page.keyboard.press("ArrowDown")
    expect(page.locator("#impact-override")).to_contain_text("yours (3 – Medium) overwrites it")

    # By the plan's portal number too; values that cannot be used are said, not silently dropped.
    open_declare(page, live_server, f"?plan={plans['website-outage'].pk}&impact=9")
    expect(page.get_by_role("radio", name=re.compile("^Website outage"))).to_be_checked()
    expect(page.locator("#prefill-notes")).to_contain_text("The impact “9” in the link was not used")
    open_declare(page, live_server, "?plan=no-such-plan")
    expect(page.locator("#prefill-notes")).to_contain_text("The response plan “no-such-plan” is not available to you")
    screenshot(page, "07-prefill-flagged")


def test_the_plan_search_and_the_duplicate_guard(page, live_server, plans, other_support_user, support_user):

    declaration_create(declared_by=other_support_user, response_plan=plans["security-event"], title="Phishing")
    mine, _ = declaration_create(declared_by=support_user, response_plan=plans["security-event"])
    open_declare(page, live_server)
    page.fill("#plan-search-input", "security")
    expect(page.locator(".plan-option")).to_have_count(1)
    page.get_by_role("radio", name=re.compile("^Security event")).check()
    guard = page.locator(".duplicate-guard")
    expect(guard).to_contain_text("2 declarations of this plan in the last 60 minutes")
    # Only what this person may open is shown, as a link; someone else's declaration is only counted.
    expect(guard.get_by_role("link")).to_have_count(1)
    expect(guard.get_by_role("link")).to_have_attribute("href", f"/declarations/{mine.pk}/")
    expect(guard).to_contain_text("1 of them by other people")
    expect(guard).not_to_contain_text("Phishing")
    page.fill("#plan-search-input", "zzz-nothing")
    # The chosen plan stays on the list, whatever the search.
    expect(page.locator(".plan-option")).to_have_count(1)
    expect(page.get_by_role("radio", name=re.compile("^Security event"))).to_be_checked()
    screenshot(page, "08-duplicate-guard")


def test_the_whole_flow_works_without_javascript(page_without_js, live_server, plans, tmp_path, sandbox):
    page = page_without_js
    log = tmp_path / "app.log"
    log.write_text("ERROR payment gateway timeout\n")
    page.goto(f"{live_server.url}/declare/")
    page.fill("#plan-search-input", "pipeline")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator(".plan-option")).to_have_count(1)
    page.get_by_role("radio", name=re.compile("^Data pipeline delay")).check()
    page.fill("#id_title", "Reports are 6 hours stale")
    page.locator("#id_items-0-value").fill("https://grafana.example.com/d/etl")
    page.get_by_role("button", name="+ Add a link or ARN").click()
    # The page came back with what was entered, and one more row.
    expect(page.locator("#id_items-0-value")).to_have_value("https://grafana.example.com/d/etl")
    expect(page.locator("#id_title")).to_have_value("Reports are 6 hours stale")
    page.locator("#id_items-1-kind").select_option("file")
    page.locator("#id_items-1-file").set_input_files(str(log))
    page.get_by_role("button", name="+ Add a link or ARN").click()
    expect(page.locator("[data-item-row]")).to_have_count(3)
    expect(page.locator("#files-dropped")).to_contain_text("choose your files again")
    page.locator("#id_items-1-file").set_input_files(str(log))
    page.locator("#id_items-2-kind").select_option("resource")
    page.locator("#id_items-2-value").fill(INSTANCE_ARN)
    page.locator("#preview-details summary").click()
    page.get_by_role("button", name="Update the preview").click()
    expect(page.locator("#preview pre")).to_contain_text("https://grafana.example.com/d/etl")
    page.locator("#id_items-1-file").set_input_files(str(log))
    screenshot(page, "09-no-js-filled")
    # AWS answers slowly, so that the page lands while the declaration is still on its way (the worker is quick
    # enough to have started it before the page renders otherwise).
    sandbox.inject(operation="StartIncident", latency_ms=1500)
    page.locator("button.submit-declare").dblclick()
    page.wait_for_url(re.compile(r"/declarations/\d+/$"))
    expect(page.locator("#status")).to_contain_text("Refresh to see the latest status")
    declaration = Declaration.objects.get()
    assert [item.kind for item in declaration.related_items.all()] == ["link", "file", "resource"]
    for _ in range(100):
        page.reload()
        if page.locator(STATUS).text_content() == "Started":
            break
        page.wait_for_timeout(200)
    expect(page.locator(STATUS)).to_have_text("Started")
    screenshot(page, "10-no-js-started")
    assert len(sandbox.calls()) == 1


CLIENT_CASES = {
    "link": [
        "https://status.example.com/x",
        "http://localhost:8080/a?b=c#d",
        "https://",
        "status.example.com",
        "javascript:alert(1)",
        "HTTPS://EXAMPLE.COM",
        "https://exa mple.com",
        "https://[::1]:8443/",
        "https://[::zz]/",
        "https://user:pw@example.com/",
        "https://例え.jp/パス",
        "https://-bad.example.com",
        "https://" + "a" * 60 + "." + "b" * 60 + ".com/" + "p" * 900,
        "https://" + ".".join(["abcdefghij"] * 24) + ".com",
        "mailto:ops@example.com",
        "http:/example.com",
        "https://status.example.com/a\x07b",
        "https://status.example.com/\x00",
        "https://paypa\u200bl.com/login",
        "https://example.com/\u202egnp.exe",
        "\ufeffhttps://example.com/",
    ],
    "resource": [
        INSTANCE_ARN,
        "arn:aws-cn:s3:::bucket/key",
        "arn:aws:ec2:us-east-1:12345:instance/i-1",
        "notanarn",
        "arn:aws:iam::123456789012:",
        "arn:aws:lambda:eu-west-1:123456789012:function:" + "f" * 1000,
        INSTANCE_ARN + "\x1b[2J",
        "arn:aws:w:ixo::n\x00x",
        INSTANCE_ARN + "\u2066",
        INSTANCE_ARN + "\U000e0041",
    ],
}


def server_value_error(kind, value):
    check = validators.validate_link_url if kind == "link" else validators.validate_resource_arn
    try:
        check(value)
    except ValidationError as exc:
        return exc.messages[0]
    return ""


def server_file_error(name, size):
    class Upload:
        pass

    upload = Upload()
    upload.name, upload.size = name, size
    try:
        validators.validate_upload(upload)
    except ValidationError as exc:
        return exc.messages[0]
    return ""


@pytest.mark.parametrize("kind", CLIENT_CASES)
def test_checks_in_the_browser_give_the_servers_verdict(page, live_server, plans, kind):
    open_declare(page, live_server)
    for value in CLIENT_CASES[kind]:
        browser = page.evaluate("([kind, value]) => window.PortalDeclare.valueError(kind, value)", [kind, value])
        assert browser == server_value_error(kind, value), value


def test_file_and_title_checks_in_the_browser_give_the_servers_verdict(page, live_server, plans):
    open_declare(page, live_server)
    files = [
        ("a.txt", 10),
        ("empty.log", 0),
        ("run.exe", 5),
        ("report.pdf.exe", 5),
        ("big.png", 11 * 1024 * 1024),
        ("../../etc/passwd.txt", 3),
        (".bashrc", 3),
        ("Ｒｅｐｏｒｔ．ＰＤＦ", 3),
        ("x.tar.gz", 1280 * 1024 * 1024),
        ("trail.json.", 4),
        ("invoice.exe.txt", 4),
        ("notes..txt", 4),
        (".hidden.log", 4),
    ]
    for name, size in files:
        browser = page.evaluate("([name, size]) => window.PortalDeclare.fileError(name, size)", [name, size])
        assert browser == server_file_error(name, size), name
    for size in [0, 1, 1023, 1024, 1280, 1331, 1536, 10 * 1024 * 1024, 5 * 1024**3]:
        assert page.evaluate("(size) => window.PortalDeclare.humanSize(size)", size) == validators.human_size(size)
    for title in [
        "fine",
        "two\nlines",
        "x" * 201,
        "tab\tok",
        "bell\x07",
        "rlo\u202eexe.pdf",
        "\ufeffbom",
        "tag\U000e0041",
    ]:
        browser = page.evaluate("(t) => window.PortalDeclare.titleError(t, 200)", title)
        server = ""
        try:
            validators.reject_control_characters(title.strip())
            if len(title.strip()) > 200:
                server = validators.MESSAGES["title_too_long"].format(limit=200, length=len(title.strip()))
        except ValidationError as exc:
            server = exc.messages[0]
        assert browser == server, title


def test_the_pages_read_well_on_a_phone(page, live_server, plans, support_user):
    page.set_viewport_size({"width": 390, "height": 844})
    open_declare(page, live_server, "?plan=website-outage&impact=2")
    screenshot(page, "11-declare-phone")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the declare page scrolls sideways on a phone"

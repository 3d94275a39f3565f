"""Declaring quickly (issue 22, items 6 and 7): the trained path counted in interactions, Declare always in reach, the
kind of a related item read from what is typed or pasted, files attached by choosing several, dropping or pasting."""

import re
import time

from playwright.sync_api import expect

from incidents.models import Declaration
from tests.browser.conftest import assert_accessible, screenshot
from tests.browser.test_declare_browser import INSTANCE_ARN, STATUS, open_declare

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


class Person:
    """Acts on the page as a person does, counting each interaction the issue counts: clicks, key presses that
    choose something, typed fields, file choices, and a scroll whenever what comes next is out of sight (below
    the fold or behind the sticky bar)."""

    def __init__(self, page):
        self.page = page
        self.interactions: list[str] = []

    def _in_sight(self, locator) -> bool:
        return locator.evaluate(
            """element => {
                const box = element.getBoundingClientRect();
                const bar = document.querySelector('.declare-bar');
                const barTop = bar && !element.closest('.declare-bar') ? bar.getBoundingClientRect().top : innerHeight;
                return box.height > 0 && box.top >= 0 && box.bottom <= Math.min(innerHeight, barTop);
            }"""
        )

    def reach(self, locator, what: str) -> None:
        if not self._in_sight(locator):
            # One scroll that brings the next thing to the upper part of the screen, as a person flicks down.
            locator.evaluate("element => window.scrollBy(0, element.getBoundingClientRect().top - 120)")
            self.interactions.append(f"scroll to {what}")

    def click(self, locator, what: str) -> None:
        self.reach(locator, what)
        locator.click()
        self.interactions.append(f"click {what}")

    def type(self, locator, text: str, what: str) -> None:
        self.reach(locator, what)
        locator.fill(text)
        self.interactions.append(f"type {what}")

    def choose_files(self, locator, files, what: str) -> None:
        # The input of "Attach files" may be styled away behind its label: the label is what one reaches.
        label = self.page.locator(f"label[for='{locator.get_attribute('id')}']")
        self.reach(label if label.count() else locator, what)
        locator.set_input_files(files)
        self.interactions.append(f"choose {what}")


def test_the_trained_path_takes_at_most_7_interactions_with_declare_in_view(page, live_server, plans, tmp_path, capsys):
    """Plan, title, impact, one link, one file, declare — at 1280×800."""
    screenshot_file = tmp_path / "error-page.png"
    screenshot_file.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    page.set_viewport_size(DESKTOP)
    open_declare(page, live_server)
    declare = page.locator("button.submit-declare")
    # Declare is reachable before anything is chosen, without scrolling.
    assert page.evaluate("window.scrollY") == 0
    expect(declare).to_be_in_viewport(ratio=1)

    person = Person(page)
    person.click(page.get_by_role("radio", name=re.compile("^Website outage")), "the plan")
    person.type(page.locator("#id_title"), "Checkout returns 500 for all customers", "the title")
    person.click(page.get_by_role("radio", name=re.compile("^2 High")), "the impact")
    person.type(
        page.locator("[data-item-row] input[data-validate=value]").first, "https://status.example.com/42", "link"
    )
    person.choose_files(page.locator("#id_attachments"), [str(screenshot_file)], "a file")
    expect(page.locator("[data-item-row] [data-file-label]").last).to_have_text(re.compile("^error-page.png"))
    # The bar says what will be declared, next to the button.
    expect(page.locator("#declare-summary")).to_contain_text("Website outage")
    expect(page.locator("#declare-summary")).to_contain_text("2 – High")
    expect(page.locator("#declare-summary")).to_contain_text("Checkout returns 500 for all customers")
    expect(declare).to_be_in_viewport(ratio=1)
    screenshot(page, "quick-01-trained-path-filled", full_page=False)
    assert_accessible(page, "declare page filled in, with the bar beside Declare")

    person.reach(declare, "declare")
    started_at = time.monotonic()
    declare.click()
    person.interactions.append("click declare")
    page.wait_for_url(re.compile(r"/declarations/\d+/$"))
    expect(page.locator(STATUS)).to_have_text("Started", timeout=20_000)
    to_started_ms = (time.monotonic() - started_at) * 1000

    with capsys.disabled():
        print(f"\n[issue 22] trained path: {len(person.interactions)} interactions: {'; '.join(person.interactions)}")
        print(f"[issue 22] Declare click → “Started” on screen: {to_started_ms:.0f} ms")
    assert len(person.interactions) <= 7, person.interactions
    assert not any(step.startswith("scroll to declare") for step in person.interactions)

    declaration = Declaration.objects.get()
    assert (declaration.title, declaration.impact) == ("Checkout returns 500 for all customers", 2)
    assert [item.kind for item in declaration.related_items.all()] == ["link", "file"]


def test_the_kind_of_a_related_item_is_read_from_what_is_typed(page, live_server, plans):
    open_declare(page, live_server, "?plan=website-outage")
    rows = page.locator("[data-item-row]")
    value = rows.first.locator("input[data-validate=value]")
    # No kind to choose first; the placeholder offers what the field accepts.
    expect(rows.first.locator("select")).to_be_hidden()
    expect(value).to_have_attribute("placeholder", re.compile("https://.*arn:aws:"))
    value.fill(INSTANCE_ARN)
    expect(rows.first.locator("[data-detected-kind]")).to_have_text("AWS resource")
    value.press("Enter")
    second = rows.nth(1).locator("input[data-validate=value]")
    second.fill("status.example.com/incidents/42")
    expect(rows.nth(1).locator("[data-detected-kind]")).to_have_text("Link")
    second.blur()
    # A link is checked as a link, with the link's message.
    expect(page.locator("#id_items-1-value-error")).to_contain_text("Enter a complete web address")
    second.fill("https://status.example.com/incidents/42")
    expect(page.locator("#id_items-1-value-error")).to_be_hidden()
    page.locator("button.submit-declare").click()
    page.wait_for_url(re.compile(r"/declarations/\d+/$"))
    declaration = Declaration.objects.get()
    assert [(item.kind, item.value) for item in declaration.related_items.all()] == [
        ("resource", INSTANCE_ARN),
        ("link", "https://status.example.com/incidents/42"),
    ]


def _file_payload(name: str, content: str, mime: str) -> str:
    return f"new File([{content!r}], {name!r}, {{type: {mime!r}}})"


def test_several_files_are_attached_at_once_by_choosing_dropping_or_pasting(page, live_server, plans, tmp_path):
    first, second = tmp_path / "app.log", tmp_path / "db.log"
    first.write_text("ERROR gateway timeout\n")
    second.write_text("WARN slow query\n")
    open_declare(page, live_server, "?plan=website-outage")
    attach = page.locator("#id_attachments")
    expect(attach).to_have_attribute("multiple", "")
    attach.set_input_files([str(first), str(second)])
    labels = page.locator("[data-item-row] [data-file-label]:visible")
    expect(labels).to_have_count(2)
    expect(labels.nth(0)).to_have_text("app.log · 22 bytes")
    expect(labels.nth(1)).to_have_text("db.log · 16 bytes")

    # Dropped onto the page: a file row each, and the browser does not navigate away to the file.
    page.evaluate(
        """() => {
            const data = new DataTransfer();
            data.items.add(new File(["GET /checkout 500\\n"], "access.log", {type: "text/plain"}));
            const zone = document.querySelector('#attach-zone');
            for (const type of ["dragenter", "dragover", "drop"]) {
                zone.dispatchEvent(new DragEvent(type, {dataTransfer: data, bubbles: true, cancelable: true}));
            }
        }"""
    )
    expect(labels).to_have_count(3)
    expect(labels.nth(2)).to_have_text("access.log · 18 bytes")

    # A screenshot pasted from the clipboard (Ctrl+V of an image) becomes a file, named for when it was taken.
    page.evaluate(
        """() => {
            const data = new DataTransfer();
            data.items.add(new File([new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10, 0, 0])], "image.png",
                                    {type: "image/png"}));
            document.activeElement.dispatchEvent(
                new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true}));
        }"""
    )
    expect(labels).to_have_count(4)
    expect(labels.nth(3)).to_have_text(re.compile(r"^screenshot-\d{8}-\d{6}\.png · 10 bytes$"))
    # Text copied from an office program carries a picture of itself: pasted into a field, it is text, not a file.
    page.evaluate(
        """() => {
            const data = new DataTransfer();
            data.setData("text/plain", "Checkout down");
            data.items.add(new File([new Uint8Array([137, 80, 78, 71])], "image.png", {type: "image/png"}));
            document.querySelector("#id_title").dispatchEvent(
                new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true}));
        }"""
    )
    expect(labels).to_have_count(4)
    expect(page.locator("#item-counts")).to_have_text("4 of 100 items · 4 of 10 files")
    assert_accessible(page, "declare page with attached files")

    # A mistake elsewhere brings the form back with every file still attached.
    page.evaluate("document.querySelector('#id_title').removeAttribute('maxlength')")
    page.fill("#id_title", "x" * 201)
    page.locator("button.submit-declare").click()
    expect(page.locator("#error-summary")).to_be_focused()
    expect(labels).to_have_count(4)
    page.fill("#id_title", "Checkout down")
    page.locator("button.submit-declare").click()
    page.wait_for_url(re.compile(r"/declarations/\d+/$"))
    declaration = Declaration.objects.get()
    names = [item.file_name for item in declaration.related_items.all()]
    assert names[:3] == ["app.log", "db.log", "access.log"]
    assert re.fullmatch(r"screenshot-\d{8}-\d{6}\.png", names[3])


def test_several_files_are_attached_at_once_without_javascript(page_without_js, live_server, plans, tmp_path):
    page = page_without_js
    first, second = tmp_path / "app.log", tmp_path / "db.log"
    first.write_text("ERROR gateway timeout\n")
    second.write_text("WARN slow query\n")
    page.goto(f"{live_server.url}/declare/?plan=website-outage")
    page.locator("#id_items-0-value").fill(INSTANCE_ARN)
    page.locator("#id_attachments").set_input_files([str(first), str(second)])
    page.locator("button.submit-declare").click()
    page.wait_for_url(re.compile(r"/declarations/\d+/$"))
    declaration = Declaration.objects.get()
    assert [(item.kind, item.file_name or item.value) for item in declaration.related_items.all()] == [
        ("resource", INSTANCE_ARN),
        ("file", "app.log"),
        ("file", "db.log"),
    ]


def test_a_file_row_fits_its_card_on_a_phone(page, live_server, plans, tmp_path):
    page.set_viewport_size(PHONE)
    long_name = tmp_path / ("checkout-gateway-timeouts-" + "x" * 60 + ".log")
    long_name.write_text("ERROR\n")
    open_declare(page, live_server, "?plan=website-outage")
    page.locator("#id_attachments").set_input_files(str(long_name))
    row = page.locator("[data-item-row]").filter(has=page.locator("[data-file-label]:visible")).first
    expect(row).to_be_visible()
    overflow = row.evaluate(
        """row => {
            const card = row.getBoundingClientRect();
            return [...row.querySelectorAll('*')]
                .filter(element => element.getClientRects().length)
                .filter(element => element.getBoundingClientRect().right > card.right + 0.5)
                .map(element => element.tagName + '.' + element.className);
        }"""
    )
    assert overflow == []
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # On a phone the bar with Declare sits at the bottom of the screen.
    bar = page.locator(".declare-bar").bounding_box()
    assert bar and abs(bar["y"] + bar["height"] - PHONE["height"]) < 1
    screenshot(page, "quick-02-phone-file-row", full_page=False)
    assert_accessible(page, "declare page on a phone, with a file attached")


def test_at_200_percent_zoom_the_bar_keeps_to_one_line(page, live_server, plans):
    """A 1280×900 screen at 200 % zoom is 640×450 CSS pixels: the bar must not take the form's place."""
    page.set_viewport_size({"width": 640, "height": 450})
    open_declare(page, live_server, "?plan=website-outage")
    bar = page.locator(".declare-bar").bounding_box()
    assert bar and bar["height"] <= 70, bar
    expect(page.locator("button.submit-declare")).to_be_in_viewport(ratio=1)

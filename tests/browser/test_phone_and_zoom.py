"""The portal on a phone (390 × 844) and at 200 % zoom (a 1280 px window is 640 CSS px wide): the history as cards
without sideways scrolling, tap targets of at least 44 × 44 px, legible chart text, and no word broken inside.

Screenshots go to test-artifacts/screenshots/ (`phone-*.png`, `zoom-*.png`).
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents import roles
from incidents.models import Declaration
from tests.browser.conftest import screenshot
from tests.conftest import make_user
from tests.helpers import make_declaration

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "has_touch": True, "is_mobile": True}
ZOOM_200 = {"viewport": {"width": 640, "height": 450}, "device_scale_factor": 2}
TAP_TARGET = 44

# Everything a finger presses; text links inside a sentence are exempt (WCAG 2.5.5's "inline" exception).
TAP_TARGETS_JS = """
() => [...document.querySelectorAll(
    'a[href], button, summary, select, input:not([type=hidden]):not([type=radio]):not([type=checkbox])')]
  .filter((el) => {
    const box = el.getBoundingClientRect();
    if (box.width <= 1 || box.height <= 1) return false;  // not shown, or visually hidden
    if (el.closest('.skip-link, .visually-hidden')) return false;
    const inline = el.matches('a') && el.closest('p.lead, p.hint, .notice p, .messages, .empty, .field-error');
    return !inline;
  })
  .map((el) => {
    const box = el.getBoundingClientRect();
    return {text: (el.innerText || el.value || el.name || el.tagName).trim().slice(0, 40),
            width: Math.round(box.width), height: Math.round(box.height)};
  })
  .filter((target) => target.width < TAP_TARGET || target.height < TAP_TARGET)
""".replace("TAP_TARGET", str(TAP_TARGET))

# Words in labels, pills, badges, buttons and headers that the browser split over two lines ("SHOW/N", "Edi/t").
BROKEN_WORDS_JS = """
() => {
  const selector = 'label, legend, th, button, summary, a.button, .sort-link, .site-header a, .data-table td a, '
    + '.state-pill, .state-badge, .impact-badge, .drill-tag, .tag, .flag, .aws-status, .page-actions a, '
    + '.data-table td';
  const broken = [];
  for (const element of document.querySelectorAll(selector)) {
    if (element.getBoundingClientRect().width <= 1 || element.closest('.visually-hidden')) continue;
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      // A hyphen is a place to break a line: "data-pipeline-delay" is three words here.
      for (const match of node.data.matchAll(/[^\\s\\-–]+/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const lines = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
        if (lines.size > 1) broken.push(match[0]);
      }
    }
  }
  return broken;
}
"""

NO_SIDEWAYS_SCROLL_JS = "() => document.documentElement.scrollWidth <= window.innerWidth"

# What sticks out of the window on the right, outside anything that scrolls by itself (a table's wrapper).
WIDER_THAN_THE_WINDOW_JS = """
() => [...document.body.querySelectorAll('*')]
  .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
  .filter((el) => !el.parentElement.closest('.table-wrap, .json, .preview-json, pre'))
  .map((el) => el.tagName + '.' + el.className + ' ' + Math.round(el.getBoundingClientRect().right))
"""


@pytest.fixture
def history(plans, support_user, other_support_user):
    now = timezone.now()
    states = [Declaration.State.STARTED, Declaration.State.FAILED, Declaration.State.QUEUED, Declaration.State.STARTING]
    for number in range(8):
        make_declaration(
            declared_by=(support_user, other_support_user)[number % 2],
            plan=list(plans.values())[number % len(plans)],
            title=f"Checkout errors for customers paying by card, wave {number}",
            impact=number % 5 + 1,
            state=states[number % len(states)],
            created_at=now - timedelta(days=number, hours=number),
            aws_status=("OPEN", "RESOLVED", "")[number % 3] if states[number % len(states)] == "started" else "",
            is_drill=number == 4,
        )


def visit(page, live_server, path):
    response = page.goto(live_server.url + path)
    assert response.status == 200, path
    page.wait_for_load_state("networkidle")


def test_the_history_on_a_phone_is_cards_without_sideways_scrolling(open_as, live_server, manager_user, history):
    page = open_as(manager_user, **PHONE)
    visit(page, live_server, "/declarations/?drills=include")
    screenshot(page, "phone-history")
    assert page.evaluate(NO_SIDEWAYS_SCROLL_JS), "the history scrolls sideways on a phone"
    rows = page.locator(".history-table tbody tr")
    assert rows.count() == 8
    for index in range(rows.count()):
        row = rows.nth(index)
        title = row.locator("td.cell-title a").bounding_box()
        # The title takes the card's width (it was squeezed to a letter or two per line).
        assert title["width"] > 200, title
        state = row.locator(".state-pill").bounding_box()
        assert state["x"] >= 0 and state["x"] + state["width"] <= 390, "the state is off-screen"
    assert page.locator(".history-table tbody tr .drill-tag").count() == 1
    assert page.evaluate(BROKEN_WORDS_JS) == []
    # The sort headers are still there to press, as big as a finger.
    assert page.locator(".sort-link").count() == 3
    assert page.evaluate(TAP_TARGETS_JS) == []


@pytest.mark.parametrize("role", [roles.ADMIN, roles.MANAGER])
def test_tap_targets_on_a_phone_are_at_least_44_px(open_as, live_server, django_user_model, plans, history, role):
    user = make_user(django_user_model, f"phone.{role}", role)
    page = open_as(user, **PHONE)
    paths = ["/declarations/", "/declarations/summary/", "/tokens/", "/accounts/password/"]
    if role == roles.ADMIN:
        paths += ["/plans/", "/users/"]
    for path in paths:
        visit(page, live_server, path)
        screenshot(page, f"phone-{role}-{path.strip('/').replace('/', '-')}")
        assert page.evaluate(TAP_TARGETS_JS) == [], path


def test_remove_item_on_the_declare_page_is_a_finger_wide(open_as, live_server, support_user, plans):
    page = open_as(support_user, **PHONE)
    visit(page, live_server, "/declare/")
    if not page.locator("[data-remove-row]").first.is_visible():
        page.locator("#add-row").click()
    box = page.locator("[data-remove-row]").first.bounding_box()
    assert box["height"] >= TAP_TARGET and box["width"] >= TAP_TARGET, box


def test_chart_text_on_a_phone_is_legible(open_as, live_server, manager_user, history):
    page = open_as(manager_user, **PHONE)
    visit(page, live_server, "/declarations/summary/")
    sizes = page.evaluate(
        """() => [...document.querySelectorAll('svg.chart text')]
            .filter((t) => t.getBoundingClientRect().height > 0)
            .map((t) => t.getBoundingClientRect().height)"""
    )
    assert sizes, "the charts have text"
    # The rendered height of a line of text: the wide chart shrunk to a phone drew it about 5 px high.
    assert min(sizes) >= 11, sizes
    assert page.evaluate(NO_SIDEWAYS_SCROLL_JS)
    screenshot(page, "phone-summary")


@pytest.mark.parametrize("size", ["zoom", "desktop"])
@pytest.mark.parametrize("role", [roles.ADMIN, roles.MANAGER])
def test_no_word_breaks_inside_labels(open_as, live_server, django_user_model, plans, history, role, size):
    """At 200 % zoom "SHOW/N", "Edi/t" and "STA/RTE/D" were split over two lines in the plans' and the history's
    tables (and, once the pills kept whole, the plans' names: "Dat/a pip/elin/e"); at 1100 px "olga.suppor/t".
    A table too wide for the window scrolls by itself; the page never does."""
    plan = plans["website-outage"]
    plan.is_visible = True
    plan.save()
    user = make_user(django_user_model, f"zoom.{role}", role)
    page = open_as(user, **(ZOOM_200 if size == "zoom" else {}))
    paths = ["/declarations/?drills=include", "/declarations/summary/", "/tokens/"]
    if role == roles.ADMIN:
        paths += ["/plans/", "/users/", f"/plans/{plan.pk}/"]
    for path in paths:
        visit(page, live_server, path)
        screenshot(page, f"{size}-{role}-{path.strip('/').split('?')[0].replace('/', '-')}")
        assert page.evaluate(BROKEN_WORDS_JS) == [], path
        assert page.evaluate(WIDER_THAN_THE_WINDOW_JS) == [], path
        assert page.evaluate(NO_SIDEWAYS_SCROLL_JS), (path, page.evaluate("document.documentElement.scrollWidth"))

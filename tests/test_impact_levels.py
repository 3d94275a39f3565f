"""Each impact level carries a short example from the company's own systems: seeded by the migration, set by admins
(audited), shown under the level on the declare page and in the API reference."""

import re

import pytest

from incidents.models import IMPACT_EXAMPLES, AuditEvent, ImpactLevel
from incidents.selectors.impacts import impact_levels
from incidents.services.declarations import declaration_create
from incidents.services.impacts import impact_examples_update
from tests.helpers import pretend_started

pytestmark = pytest.mark.django_db

PAGE = "/plans/impact-levels/"


def examples_on_declare(client) -> dict[int, str]:
    """The example under each impact choice of the declare page."""
    page = client.get("/declare/").content.decode()
    found = {}
    for level, description in re.findall(
        r'<span class="impact-description" id="impact-(\d)-description">(.*?)</label>', page, re.S
    ):
        example = re.search(r'<span class="impact-example">For example: (.*?)</span>', description)
        found[int(level)] = example[1] if example else ""
    return found


def form(**examples: str) -> dict[str, str]:
    return {f"example_{level}": examples.get(f"level_{level}", IMPACT_EXAMPLES[level]) for level in range(1, 6)}


def test_the_migration_seeds_an_example_for_every_level():
    assert dict(ImpactLevel.objects.values_list("level", "example")) == IMPACT_EXAMPLES
    assert IMPACT_EXAMPLES[1] == "Checkout down for everyone"


def test_the_declare_page_shows_each_levels_example_under_it(support_client, plans):
    assert examples_on_declare(support_client) == IMPACT_EXAMPLES


def test_an_admin_sets_the_examples_and_the_change_is_audited(portal_admin_client, support_client, plans):
    response = portal_admin_client.post(PAGE, form(level_1="Nobody can place an order", level_5=""))

    assert response.status_code == 302
    assert "Saved: 2 examples changed." in portal_admin_client.get(PAGE).content.decode()
    shown = examples_on_declare(support_client)
    assert shown[1] == "Nobody can place an order"
    assert shown[5] == ""  # emptied: no example line at all
    assert shown[3] == IMPACT_EXAMPLES[3]
    event = AuditEvent.objects.get(action="impact_level.examples_changed")
    assert (event.actor_label, event.ip_address) == ("ada.admin", "127.0.0.1")
    assert event.details == {
        "1 – Critical": {"from": "Checkout down for everyone", "to": "Nobody can place an order"},
        "5 – No impact": {"from": IMPACT_EXAMPLES[5], "to": ""},
    }
    # The page shows its own history.
    assert "impact_level.examples_changed" in portal_admin_client.get(PAGE).content.decode()


def test_saving_unchanged_examples_writes_no_event(portal_admin_client):
    response = portal_admin_client.post(PAGE, form(), follow=True)
    assert "No example changed." in response.content.decode()
    assert not AuditEvent.objects.filter(action="impact_level.examples_changed").exists()


@pytest.mark.parametrize(
    ("example", "message"),
    [("x" * 121, "at most 120 characters (it has 121)"), ("Checkout\x1bdown", "control character")],
    ids=["too-long", "control-character"],
)
def test_a_bad_example_is_named_at_its_field_and_nothing_is_saved(portal_admin_client, example, message):
    response = portal_admin_client.post(PAGE, form(level_2=example, level_1="Changed too"))
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors["example_2"])
    assert 'aria-invalid="true"' in response.content.decode()
    assert dict(ImpactLevel.objects.values_list("level", "example")) == IMPACT_EXAMPLES


def test_the_levels_are_read_in_one_query(django_assert_num_queries):
    with django_assert_num_queries(1):
        levels = impact_levels()
    assert [(level.value, level.label) for level in levels] == [
        (1, "Critical"),
        (2, "High"),
        (3, "Medium"),
        (4, "Low"),
        (5, "No impact"),
    ]
    assert levels[0].description.startswith("Full application failure")


def test_a_level_without_its_row_keeps_its_first_example():
    ImpactLevel.objects.filter(level=2).delete()
    assert impact_levels()[1].example == IMPACT_EXAMPLES[2]


def test_the_api_reference_lists_the_levels_with_their_examples(client, portal_admin_user):
    ImpactLevel.objects.filter(level=1).update(example="Nobody can place an order")
    page = client.get("/api/docs/").content.decode()
    assert 'id="impact-levels"' in page
    assert "Nobody can place an order" in page
    assert IMPACT_EXAMPLES[4] in page


def test_the_incidents_change_form_shows_the_admins_examples_too(support_client, support_user, plans):
    """The same plain-language help on the declaration page's "New impact" as on the declare page."""
    impact_examples_update(examples={2: "EU card payments fail for everyone"}, actor=None)
    declaration, _ = declaration_create(declared_by=support_user, response_plan=plans["website-outage"], title="Down")
    pretend_started(declaration)

    page = support_client.get(declaration.get_absolute_url()).content.decode()

    start = page.index('id="update-impact-2-description"')
    assert "For example: EU card payments fail for everyone" in page[start : page.index("</label>", start)]

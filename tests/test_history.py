"""The history at /declarations/: filters in the URL, keyset pages, search, a constant number of queries."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from incidents.models import Declaration
from incidents.selectors.history import HistoryFilters, declarations_filtered
from incidents.services.plans import response_plan_update
from tests.helpers import make_declaration

DAY = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)


def numbers(response) -> list[int]:
    """The declaration numbers listed on a history page, in order."""
    return [int(n) for n in re.findall(r'<span class="muted">#(\d+)</span>', response.content.decode())]


@pytest.fixture
def history(plans, support_user, other_support_user):
    """A small, varied history: two plans, several impacts, states, declarers and days."""
    web, pay = plans["website-outage"], plans["payments-degraded"]
    rows = {
        "web_critical_sam": make_declaration(
            declared_by=support_user, plan=web, title="Checkout page blank", impact=1, created_at=DAY
        ),
        "web_plan_impact_olga": make_declaration(
            declared_by=other_support_user, plan=web, created_at=DAY - timedelta(days=3)
        ),
        "pay_failed_sam": make_declaration(
            declared_by=support_user,
            plan=pay,
            title="Card payments timing out",
            impact=2,
            state="failed",
            created_at=DAY - timedelta(days=10),
        ),
        "pay_started_olga": make_declaration(
            declared_by=other_support_user,
            plan=pay,
            title="Refunds stuck",
            impact=4,
            state="started",
            created_at=DAY - timedelta(days=40),
        ),
    }
    return rows


def ids(*declarations) -> list[int]:
    return [declaration.pk for declaration in declarations]


@pytest.mark.django_db
def test_managers_see_every_declaration_newest_first(manager_client, history):
    response = manager_client.get("/declarations/")
    assert response.status_code == 200
    h = history
    assert numbers(response) == ids(
        h["web_critical_sam"], h["web_plan_impact_olga"], h["pay_failed_sam"], h["pay_started_olga"]
    )


@pytest.mark.django_db
def test_support_staff_see_only_their_own_and_cannot_filter_by_declarer(support_client, history):
    response = support_client.get("/declarations/", {"declared_by": "olga.support"})
    assert numbers(response) == ids(history["web_critical_sam"], history["pay_failed_sam"])
    assert 'name="declared_by"' not in response.content.decode()
    assert "My declarations" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"state": "failed"}, ["pay_failed_sam"]),
        ({"state": "started"}, ["pay_started_olga"]),
        ({"plan": "payments-degraded"}, ["pay_failed_sam", "pay_started_olga"]),
        # The plan's own impact (website-outage: 1) counts when the declarer left impact empty.
        ({"impact": "1"}, ["web_critical_sam", "web_plan_impact_olga"]),
        ({"impact": "4"}, ["pay_started_olga"]),
        ({"declared_by": "olga.support"}, ["web_plan_impact_olga", "pay_started_olga"]),
        ({"date_from": "2026-10-05", "date_to": "2026-10-12"}, ["web_plan_impact_olga", "pay_failed_sam"]),
        ({"date_from": "2026-10-15"}, ["web_critical_sam"]),
        ({"date_to": "2026-09-05"}, ["pay_started_olga"]),
        ({"q": "payments"}, ["pay_failed_sam"]),
        ({"q": "CHECKOUT"}, ["web_critical_sam"]),
        # The plan's title is searched when the declarer left the title empty.
        ({"q": "website"}, ["web_plan_impact_olga"]),
        ({"plan": "website-outage", "impact": "1", "declared_by": "sam.support"}, ["web_critical_sam"]),
        ({"plan": "payments-degraded", "state": "failed", "date_from": "2026-10-01", "q": "card"}, ["pay_failed_sam"]),
        ({"plan": "payments-degraded", "impact": "1"}, []),
    ],
)
def test_each_filter_and_combinations(manager_client, plans, history, query, expected):
    if "plan" in query:
        query = {**query, "plan": plans[query["plan"]].pk}
    response = manager_client.get("/declarations/", query)
    assert response.status_code == 200
    assert numbers(response) == ids(*(history[name] for name in expected))


@pytest.mark.django_db
def test_plans_website_outage_has_critical_impact_by_default(plans):
    # The impact filter cases above rely on the sandbox's demo plan template.
    assert plans["website-outage"].template_impact == 1


@pytest.mark.django_db
def test_filters_live_in_the_url_and_the_form_keeps_them(manager_client, plans, history):
    plan = plans["payments-degraded"]
    response = manager_client.get(f"/declarations/?plan={plan.pk}&state=failed&q=card")
    html = response.content.decode()
    assert f'<option value="{plan.pk}" selected>' in html
    assert '<option value="failed" selected>' in html
    assert 'value="card"' in html
    # The export link carries the same filters.
    assert f"/declarations/export.csv?plan={plan.pk}&amp;state=failed&amp;q=card" in html


@pytest.mark.django_db
def test_the_plan_filter_names_every_plan_as_people_know_it(manager_client, plans, history):
    """Hidden plans and plans gone from AWS still have declarations in the history, so they stay in the filter;
    each under its curated name when it has one, else AWS's display name, else its name."""
    web, pay = plans["website-outage"], plans["payments-degraded"]
    web.display_name, web.is_visible = "Storefront down", False
    web.save()
    pay.display_name, pay.aws_display_name, pay.deleted_in_aws = "", "", True
    pay.save()
    response = manager_client.get("/declarations/", {"plan": pay.pk})
    select = re.search(r'<select name="plan".*?</select>', response.content.decode(), re.S).group()
    options = re.findall(r'<option value="(\d*)"( selected)?>([^<]*)</option>', select)
    plan_options = {int(value): (label, bool(selected)) for value, selected, label in options if value}
    assert set(plan_options) == {plan.pk for plan in plans.values()}
    assert plan_options[web.pk] == ("Storefront down", False)
    assert plan_options[pay.pk] == ("payments-degraded", True)
    assert numbers(response) and all(row.response_plan_id == pay.pk for row in response.context["page"].rows)


def plan_filter(response) -> dict[int, str]:
    """The history's plan filter as {plan id: label}."""
    select = re.search(r'<select name="plan".*?</select>', response.content.decode(), re.S).group()
    return {int(value): label for value, label in re.findall(r'<option value="(\d+)"[^>]*>([^<]*)</option>', select)}


@pytest.mark.django_db
def test_support_staff_find_in_the_plan_filter_only_plans_they_use_or_declared_with(
    support_client, manager_client, plans, history
):
    """Every plan's name used to be listed to everyone, hidden and restricted ones too."""
    from django.contrib.auth.models import Group

    web, pay = plans["website-outage"], plans["payments-degraded"]
    web.display_name, web.is_visible = "Storefront down", False  # hidden now, but sam declared with it
    web.save()
    secret = plans["security-event"]
    secret.display_name = "Board-level breach"
    secret.save()
    secret.allowed_groups.set([Group.objects.get(name="managers")])
    tooling = plans["internal-tooling"]
    tooling.display_name, tooling.is_visible = "Project Nightingale", False
    tooling.save()

    # The manager's list first: the cached <select> must not be served to someone who may see less.
    assert set(plan_filter(manager_client.get("/declarations/"))) == {plan.pk for plan in plans.values()}
    response = support_client.get("/declarations/")

    listed = plan_filter(response)
    assert listed[web.pk] == "Storefront down"
    assert listed[pay.pk] == pay.label
    assert listed[plans["data-pipeline-delay"].pk] == plans["data-pipeline-delay"].label
    assert secret.pk not in listed and tooling.pk not in listed
    page = response.content.decode()
    assert "Board-level breach" not in page and "Project Nightingale" not in page

    # Nor does asking for such a plan by number tell anything about it.
    asked = support_client.get("/declarations/", {"plan": secret.pk})
    assert "That response plan does not exist" in asked.content.decode()
    assert "Board-level breach" not in asked.content.decode()


@pytest.mark.django_db
def test_a_support_persons_plan_filter_follows_their_roles(support_client, support_user, plans):
    from django.contrib.auth.models import Group

    secret = plans["security-event"]
    managers = Group.objects.get(name="managers")
    secret.allowed_groups.set([managers])
    assert secret.pk not in plan_filter(support_client.get("/declarations/"))
    support_user.groups.add(managers)  # promoted: the plan (and everything else) is theirs to see now
    assert secret.pk in plan_filter(support_client.get("/declarations/"))


@pytest.mark.django_db
def test_a_change_to_a_plan_shows_in_the_plan_filter_at_once(manager_client, plans):
    """The plan filter is kept once rendered (declaration_list.html): a renamed plan must show on the next page."""
    plan = plans["website-outage"]
    assert f'<option value="{plan.pk}">Website outage</option>' in manager_client.get("/declarations/").content.decode()
    response_plan_update(plan=plan, actor=None, display_name="Storefront down")
    html = manager_client.get("/declarations/").content.decode()
    assert f'<option value="{plan.pk}">Storefront down</option>' in html
    html = manager_client.get("/declarations/", {"plan": plan.pk}).content.decode()
    assert f'<option value="{plan.pk}" selected>Storefront down</option>' in html


@pytest.mark.django_db
def test_titles_and_plan_names_show_as_text_not_markup(manager_client, plans, support_user):
    """Django's autoescaping covers the rows and the plan filter: a title or a plan's name is text, never markup."""
    plan = plans["website-outage"]
    plan.display_name = 'Web <b>"down"</b> & co'
    plan.save()
    make_declaration(declared_by=support_user, plan=plan, title="<script>alert('x')</script> checkout")
    html = manager_client.get("/declarations/").content.decode()
    assert "<script>alert" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; checkout</a>" in html
    assert 'data-label="Response plan">Web &lt;b&gt;&quot;down&quot;&lt;/b&gt; &amp; co</td>' in html
    assert f'<option value="{plan.pk}">Web &lt;b&gt;&quot;down&quot;&lt;/b&gt; &amp; co</option>' in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"q": "ab"}, "q", "at least 3 characters"),
        ({"date_from": "2026-10-10", "date_to": "2026-10-01"}, "date_to", "end date is before the start date"),
        ({"date_from": "10/40/2026"}, "date_from", "Enter a valid date"),
        ({"impact": "9"}, "impact", "Select a valid choice"),
        ({"plan": "999999"}, "plan", "That response plan does not exist"),
    ],
)
def test_bad_filters_are_named_at_their_field_and_list_nothing(manager_client, history, query, field, message):
    response = manager_client.get("/declarations/", query)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert field in response.context["form"].errors
    assert numbers(response) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("created", ["pay_started_olga", "pay_failed_sam", "web_plan_impact_olga", "web_critical_sam"]),
        ("impact", ["web_critical_sam", "web_plan_impact_olga", "pay_failed_sam", "pay_started_olga"]),
        ("-impact", ["pay_started_olga", "pay_failed_sam", "web_plan_impact_olga", "web_critical_sam"]),
        ("state", ["pay_failed_sam", "web_critical_sam", "web_plan_impact_olga", "pay_started_olga"]),
    ],
)
def test_sorting(manager_client, history, sort, expected):
    response = manager_client.get("/declarations/", {"sort": sort})
    assert numbers(response) == ids(*(history[name] for name in expected))


def _walk(client, query, *, backwards_from_end=False) -> tuple[list[int], list[list[int]]]:
    """Follow the Next links to the end; returns every number seen and the pages."""
    pages = []
    response = client.get("/declarations/", query)
    while True:
        pages.append(numbers(response))
        match = re.search(r'href="\?([^"]*)" rel="next"', response.content.decode())
        if not match:
            break
        response = client.get("/declarations/?" + match.group(1).replace("&amp;", "&"))
    return [n for page in pages for n in page], pages


@pytest.mark.django_db
@pytest.mark.parametrize("sort", ["-created", "created", "impact", "-impact", "state"])
def test_keyset_pages_have_no_gaps_or_duplicates_even_with_equal_timestamps(
    manager_client, plans, support_user, settings, sort
):
    settings.PORTAL_HISTORY_PAGE_SIZE = 4
    same_moment = timezone.now() - timedelta(hours=1)
    made = [
        make_declaration(
            declared_by=support_user,
            plan=plans["website-outage"],
            impact=1 + index % 3,
            state=["queued", "failed", "started"][index % 3],
            # Many rows share one timestamp: only the id can order them.
            created_at=same_moment if index % 2 else same_moment - timedelta(minutes=index),
        )
        for index in range(15)
    ]
    seen, pages = _walk(manager_client, {"sort": sort})
    assert sorted(seen) == sorted(d.pk for d in made)
    assert len(seen) == len(set(seen))
    assert [len(page) for page in pages] == [4, 4, 4, 3]
    expected = list(declarations_filtered(user=support_user, filters=HistoryFilters(sort=sort)))
    assert seen == [d.pk for d in expected]


@pytest.mark.django_db
def test_previous_goes_back_to_the_same_page(manager_client, plans, support_user, settings):
    settings.PORTAL_HISTORY_PAGE_SIZE = 3
    for index in range(8):
        make_declaration(
            declared_by=support_user, plan=plans["website-outage"], created_at=DAY - timedelta(hours=index)
        )
    first = manager_client.get("/declarations/")
    next_url = re.search(r'href="\?([^"]*)" rel="next"', first.content.decode()).group(1).replace("&amp;", "&")
    second = manager_client.get("/declarations/?" + next_url)
    third_url = re.search(r'href="\?([^"]*)" rel="next"', second.content.decode()).group(1).replace("&amp;", "&")
    third = manager_client.get("/declarations/?" + third_url)
    assert len(numbers(third)) == 2
    back_url = re.search(r'href="\?([^"]*)" rel="prev"', third.content.decode()).group(1).replace("&amp;", "&")
    assert numbers(manager_client.get("/declarations/?" + back_url)) == numbers(second)
    assert 'rel="prev"' not in first.content.decode()


@pytest.mark.django_db
def test_new_declarations_do_not_shift_the_next_page(manager_client, plans, support_user, settings):
    settings.PORTAL_HISTORY_PAGE_SIZE = 2
    old = [
        make_declaration(declared_by=support_user, plan=plans["website-outage"], created_at=DAY - timedelta(hours=i))
        for i in range(4)
    ]
    first = manager_client.get("/declarations/")
    next_url = re.search(r'href="\?([^"]*)" rel="next"', first.content.decode()).group(1).replace("&amp;", "&")
    make_declaration(declared_by=support_user, plan=plans["website-outage"], created_at=DAY + timedelta(hours=1))
    assert numbers(manager_client.get("/declarations/?" + next_url)) == [old[2].pk, old[3].pk]


@pytest.mark.django_db
def test_a_damaged_cursor_shows_the_first_page(manager_client, history):
    response = manager_client.get("/declarations/", {"cursor": "not-a-cursor"})
    assert numbers(response)[0] == history["web_critical_sam"].pk


@pytest.mark.django_db
def test_a_page_costs_a_constant_number_of_queries(
    manager_client, plans, support_user, other_support_user, django_assert_max_num_queries, settings
):
    settings.PORTAL_HISTORY_PAGE_SIZE = 50
    for index in range(60):
        make_declaration(
            declared_by=support_user if index % 2 else other_support_user,
            plan=plans["website-outage"] if index % 3 else plans["payments-degraded"],
            title=f"Declaration {index}",
        )
    plan = plans["website-outage"]
    with django_assert_max_num_queries(8):
        response = manager_client.get("/declarations/", {"plan": plan.pk, "q": "Declaration", "impact": "1"})
    assert len(numbers(response)) == 40
    with django_assert_max_num_queries(8):
        response = manager_client.get("/declarations/")
    assert len(numbers(response)) == 50


@pytest.mark.django_db
def test_title_search_can_use_the_trigram_index_instead_of_a_table_scan(plans, manager_user):
    from django.db import connection

    queryset = declarations_filtered(user=manager_user, filters=HistoryFilters(search="outage"))
    with connection.cursor() as cursor:
        # With a handful of rows PostgreSQL would rather scan (or walk the date index); forbid both to see
        # whether the search condition itself is served by an index.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        sql, params = queryset.query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Bitmap Index Scan on declaration_title_trgm" in plan, plan


@pytest.mark.django_db
def test_effective_values_are_stored_for_filtering(plans, support_user):
    declaration = make_declaration(declared_by=support_user, plan=plans["payments-degraded"])
    stored = Declaration.objects.get(pk=declaration.pk)
    assert stored.effective_title == plans["payments-degraded"].template_title
    assert stored.effective_impact == plans["payments-degraded"].template_impact

"""The summary page: declarations over time by impact and per plan, as server-side SVG with a table alternative."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from incidents import charts
from tests.helpers import make_declaration


@pytest.mark.django_db
def test_summary_draws_both_charts_with_accessible_names_and_tables(manager_client, plans, support_user):
    today = timezone.now()
    make_declaration(declared_by=support_user, plan=plans["website-outage"], impact=1, created_at=today)
    make_declaration(declared_by=support_user, plan=plans["website-outage"], impact=3, created_at=today)
    make_declaration(
        declared_by=support_user, plan=plans["payments-degraded"], impact=2, created_at=today - timedelta(days=2)
    )
    response = manager_client.get("/declarations/summary/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "3 declarations from" in html
    # Each chart twice: drawn for wide screens and for phones (the stylesheet shows one), with ids of their own.
    assert html.count('<svg class="chart chart-wide"') == 2 and html.count('<svg class="chart chart-narrow"') == 2
    assert html.count('role="img" aria-labelledby=') == 4
    assert '<title id="time-title-wide">' in html and '<desc id="plan-desc-narrow">' in html
    # One coloured segment per (day, impact) and per (plan, impact) with a count.
    assert len(re.findall(r'<rect class="impact-fill-\d"', html)) == 2 * (3 + 3)
    assert "Website outage: 1 × 1 – Critical" in html
    # The text alternative holds the same numbers.
    cells = '<td class="number">1</td><td class="number">0</td><td class="number">1</td>'
    assert '<th scope="row">Website outage</th>' + cells in html
    assert "<script" not in html.split("</header>")[1]


@pytest.mark.django_db
def test_summary_period_is_chosen_in_the_url_and_long_ranges_group_by_week(manager_client, plans, support_user):
    response = manager_client.get("/declarations/summary/", {"date_from": "2026-01-01", "date_to": "2026-06-30"})
    assert response.status_code == 200
    assert response.context["summary"].bucket == "week"
    assert "Declarations per week" in response.content.decode()
    assert "No declarations in this period." in response.content.decode()


@pytest.mark.django_db
def test_summary_refuses_a_reversed_period_at_the_field(manager_client):
    response = manager_client.get("/declarations/summary/", {"date_from": "2026-06-30", "date_to": "2026-01-01"})
    assert "The end date is before the start date." in response.content.decode()


def test_axis_tops_are_round_numbers():
    assert [charts.nice_ceiling(n) for n in (0, 1, 3, 7, 12, 48, 230)] == [1, 1, 5, 10, 20, 50, 500]


@pytest.mark.django_db
def test_summary_refuses_more_than_two_years(manager_client):
    response = manager_client.get("/declarations/summary/", {"date_from": "2001-01-01"})
    assert "Choose at most two years at a time." in response.content.decode()


@pytest.mark.django_db
def test_summary_shows_its_default_period_in_the_form(manager_client):
    html = manager_client.get("/declarations/summary/").content.decode()
    today = timezone.localdate()
    assert f'value="{today:%Y-%m-%d}"' in html
    assert f'value="{today - timedelta(days=29):%Y-%m-%d}"' in html

"""The summary page: declarations over time by impact and per plan, as server-side SVG with a table alternative."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from incidents import charts
from incidents.views.history import human_duration
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


def _declared(support_user, plan, *, impact, created_at, impact_started=None, started=None, resolved=None, drill=False):
    return make_declaration(
        declared_by=support_user,
        plan=plan,
        impact=impact,
        created_at=created_at,
        state="started" if started else "queued",
        impact_started_at=impact_started,
        started_at=started,
        resolved_at=resolved,
        is_drill=drill,
    )


@pytest.mark.django_db
def test_summary_shows_median_times_per_plan_and_impact(manager_client, plans, support_user):
    now = timezone.now() - timedelta(hours=12)
    plan = plans["website-outage"]
    minute = timedelta(minutes=1)
    # Impact → declared: 10, 20 and 0 (no impact start given) minutes: median 10 min.
    # Declared → started: 1 and 3 minutes (the third never started): median 2 min.
    # Started → resolved: only one resolved, after 2 h 30 min.
    _declared(support_user, plan, impact=1, created_at=now, impact_started=now - 10 * minute, started=now + minute)
    _declared(
        support_user,
        plan,
        impact=1,
        created_at=now,
        impact_started=now - 20 * minute,
        started=now + 3 * minute,
        resolved=now + 3 * minute + timedelta(hours=2, minutes=30),
    )
    _declared(support_user, plan, impact=1, created_at=now)
    _declared(support_user, plan, impact=3, created_at=now, impact_started=now - 45 * timedelta(seconds=1))

    response = manager_client.get("/declarations/summary/")
    by_impact = {row.impact: row for row in response.context["summary"].durations}
    critical = by_impact[1]
    assert (critical.plan, critical.count) == ("Website outage", 3)
    assert critical.impact_to_declared == timedelta(minutes=10)
    assert critical.declared_to_started == timedelta(minutes=2)
    assert critical.started_to_resolved == timedelta(hours=2, minutes=30)
    assert (by_impact[3].impact_to_declared, by_impact[3].declared_to_started) == (timedelta(seconds=45), None)
    html = response.content.decode()
    assert (
        '<tr><th scope="row">Website outage</th><td>1</td><td class="number">3</td><td class="number">10 min</td>'
        '<td class="number">2 min</td><td class="number">2 h 30 min</td></tr>'
    ) in html
    assert '<td class="number">45 s</td><td class="number">—</td>' in html


@pytest.mark.django_db
def test_drills_stay_out_of_the_summarys_figures_unless_asked_for(manager_client, plans, support_user):
    now = timezone.now() - timedelta(hours=1)
    real = plans["website-outage"]
    _declared(support_user, real, impact=2, created_at=now, impact_started=now - timedelta(minutes=4))
    _declared(support_user, real, impact=2, created_at=now, impact_started=now - timedelta(hours=9), drill=True)
    _declared(support_user, plans["payments-degraded"], impact=4, created_at=now, drill=True)

    summary = manager_client.get("/declarations/summary/").context["summary"]
    assert summary.total == 1
    assert [(label, total) for label, _impacts, total in summary.by_plan] == [("Website outage", 1)]
    assert [(row.plan, row.count, row.impact_to_declared) for row in summary.durations] == [
        ("Website outage", 1, timedelta(minutes=4))
    ]
    assert sum(sum(counts.values()) for counts in summary.by_period.values()) == 1
    assert "drills are left out" in manager_client.get("/declarations/summary/").content.decode()

    with_drills = manager_client.get("/declarations/summary/", {"drills": "on"})
    summary = with_drills.context["summary"]
    assert summary.total == 3
    assert {row.plan: row.count for row in summary.durations} == {"Website outage": 2, "Payments degraded": 1}
    assert "drills included" in with_drills.content.decode()
    # Its "See these declarations" leads to a history that includes them too (the history leaves drills out).
    see_these = with_drills.content.decode().split("See these declarations")[0].rsplit('href="', 1)[1]
    assert "drills=include" in see_these
    assert (
        "<strong>3 declarations</strong>"
        in manager_client.get(see_these.split('"')[0].replace("&amp;", "&")).content.decode()
    )


def test_durations_read_as_people_read_them():
    assert [
        human_duration(span)
        for span in (
            None,
            timedelta(seconds=44.6),
            timedelta(minutes=12, seconds=59),
            timedelta(hours=3, minutes=5),
            timedelta(days=2, hours=4, minutes=59),
        )
    ] == ["—", "45 s", "12 min", "3 h 05 min", "2 d 4 h"]

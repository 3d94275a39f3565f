"""The history's AWS status and drills (issue 23), its result count and the time zone of its times (issue 22)."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from incidents.selectors import history as history_selectors
from incidents.selectors.history import HistoryFilters, declarations_filtered
from tests.helpers import make_declaration

DAY = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)


def numbers(response) -> list[int]:
    return [int(n) for n in re.findall(r'<span class="muted">#(\d+)</span>', response.content.decode())]


@pytest.fixture
def rows(plans, support_user):
    web = plans["website-outage"]
    return {
        "open": make_declaration(
            declared_by=support_user, plan=web, title="Open one", state="started", aws_status="OPEN", created_at=DAY
        ),
        "resolved": make_declaration(
            declared_by=support_user,
            plan=web,
            title="Resolved one",
            state="started",
            aws_status="RESOLVED",
            resolved_at=DAY,
            created_at=DAY - timedelta(hours=1),
        ),
        "queued": make_declaration(
            declared_by=support_user, plan=web, title="Queued one", created_at=DAY - timedelta(hours=2)
        ),
        "drill": make_declaration(
            declared_by=support_user,
            plan=web,
            title="Rehearsal of the checkout outage",
            state="started",
            aws_status="OPEN",
            is_drill=True,
            created_at=DAY - timedelta(hours=3),
        ),
    }


def ids(rows, *names) -> list[int]:
    return [rows[name].pk for name in names]


@pytest.mark.django_db
def test_the_history_shows_each_rows_aws_status(manager_client, rows):
    html = manager_client.get("/declarations/").content.decode()
    assert '<th scope="col">AWS status</th>' in html
    cells = re.findall(r'data-label="AWS status">(.*?)</td>', html)
    assert len(cells) == 3
    assert "Open" in cells[0] and "aws-status-open" in cells[0]
    assert "Resolved" in cells[1] and "aws-status-resolved" in cells[1]
    assert "not read yet" in cells[2]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"aws_status": "OPEN"}, ["open"]),
        ({"aws_status": "RESOLVED"}, ["resolved"]),
        ({"aws_status": "OPEN", "drills": "include"}, ["open", "drill"]),
        ({}, ["open", "resolved", "queued"]),
        ({"drills": "exclude"}, ["open", "resolved", "queued"]),
        ({"drills": "include"}, ["open", "resolved", "queued", "drill"]),
        ({"drills": "only"}, ["drill"]),
    ],
)
def test_filters_on_aws_status_and_drills(manager_client, rows, query, expected):
    response = manager_client.get("/declarations/", query)
    assert response.status_code == 200
    assert numbers(response) == ids(rows, *expected)


@pytest.mark.django_db
def test_the_filters_offer_aws_status_and_drills(manager_client, rows):
    html = manager_client.get("/declarations/", {"drills": "only"}).content.decode()
    assert re.search(r'<select name="aws_status"[^>]*>.*<option value="OPEN">Open</option>', html, re.S)
    assert '<option value="only" selected>Only drills</option>' in html
    assert 'value="exclude"' in html and 'value="include"' in html


@pytest.mark.django_db
def test_an_unknown_drills_or_status_choice_is_named_at_its_field(manager_client, rows):
    response = manager_client.get("/declarations/", {"drills": "all", "aws_status": "closed"})
    assert {"drills", "aws_status"} <= set(response.context["form"].errors)
    assert numbers(response) == []


@pytest.mark.django_db
def test_drills_are_labelled_where_they_appear(manager_client, support_client, rows):
    for client in (manager_client, support_client):
        html = client.get("/declarations/", {"drills": "include"}).content.decode()
        drill_row = re.search(rf"<tr[^>]*>(?:(?!</tr>).)*#{rows['drill'].pk}</span>(?:(?!</tr>).)*</tr>", html, re.S)
        assert drill_row and '<span class="drill-tag">Drill</span>' in drill_row.group()
        assert html.count('class="drill-tag"') == 1


@pytest.mark.django_db
def test_support_staff_leave_out_drills_by_default_too(support_client, rows):
    assert rows["drill"].pk not in numbers(support_client.get("/declarations/"))
    assert numbers(support_client.get("/declarations/", {"drills": "only"})) == ids(rows, "drill")


@pytest.mark.django_db
def test_the_history_says_how_many_declarations_match_and_the_time_zone(manager_client, rows, settings):
    html = manager_client.get("/declarations/").content.decode()
    assert re.search(r"<strong>3 declarations</strong>\s*· times in UTC", html)
    assert 'Declared <span class="muted">(UTC)</span>' in html
    html = manager_client.get("/declarations/", {"aws_status": "RESOLVED"}).content.decode()
    assert re.search(r"<strong>1 declaration</strong> match these filters", html)


@pytest.mark.django_db
def test_the_count_covers_every_page_not_just_this_one(manager_client, rows, settings):
    settings.PORTAL_HISTORY_PAGE_SIZE = 2
    first = manager_client.get("/declarations/")
    assert len(numbers(first)) == 2
    assert "<strong>3 declarations</strong>" in first.content.decode()
    next_url = re.search(r'href="\?([^"]*)" rel="next"', first.content.decode()).group(1).replace("&amp;", "&")
    second = manager_client.get("/declarations/?" + next_url)
    assert len(numbers(second)) == 1
    assert "<strong>3 declarations</strong>" in second.content.decode()


@pytest.mark.django_db
def test_the_count_stops_at_its_limit(manager_client, rows, settings, monkeypatch):
    """Counting millions of rows on every page would cost a scan: beyond the limit the history says "more than"."""
    monkeypatch.setattr(history_selectors, "COUNT_LIMIT", 2)
    settings.PORTAL_HISTORY_PAGE_SIZE = 1
    html = manager_client.get("/declarations/").content.decode()
    assert "<strong>More than 2 declarations</strong>" in html


def explain(queryset) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = queryset.query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.django_db
def test_only_drills_walks_the_drills_index_not_the_table(manager_user, rows):
    plan = explain(declarations_filtered(user=manager_user, filters=HistoryFilters(drills="only"))[:50])
    assert "declaration_drill_created" in plan, plan


@pytest.mark.django_db
def test_the_aws_status_filter_uses_its_index(manager_user, rows):
    plan = explain(declarations_filtered(user=manager_user, filters=HistoryFilters(aws_status="OPEN"))[:50])
    assert "declaration_aws_status_created" in plan, plan

"""CSV export of the filtered history: complete, streamed, and safe to open in a spreadsheet."""

import csv
import io

import pytest

from incidents import views
from tests.helpers import make_declaration


def read_csv(response) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


@pytest.mark.django_db
def test_export_holds_every_matching_row_with_its_fields(manager_client, plans, support_user, other_support_user):
    web, pay = plans["website-outage"], plans["payments-degraded"]
    mine = make_declaration(
        declared_by=support_user,
        plan=web,
        title="Site is down",
        impact=2,
        state="started",
        incident_record_arn="arn:aws:ssm-incidents::111122223333:incident-record/website-outage/1",
    )
    make_declaration(declared_by=other_support_user, plan=pay, title="Cards failing")
    response = manager_client.get("/declarations/export.csv", {"plan": web.pk})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="declarations-')
    rows = read_csv(response)
    assert len(rows) == 1
    row = rows[0]
    assert row["Number"] == str(mine.pk)
    assert row["Title"] == "Site is down"
    assert row["Impact"] == "2"
    assert row["State"] == "started"
    assert row["Response plan"] == "website-outage"
    assert row["Declared by"] == "sam.support"
    assert row["Incident record ARN"].endswith("incident-record/website-outage/1")
    assert row["Declared at"] == mine.created_at.isoformat()


@pytest.mark.django_db
def test_export_streams_in_chunks_and_misses_no_row(manager_client, plans, support_user, settings):
    # Tiny fetches and batches: the rows cross many chunk boundaries.
    settings.PORTAL_EXPORT_CHUNK_SIZE = 3
    made = [
        make_declaration(declared_by=support_user, plan=plans["website-outage"], title=f"Row {i}") for i in range(23)
    ]
    response = manager_client.get("/declarations/export.csv")
    chunks = list(response.streaming_content)
    assert chunks[0].decode().startswith("Number,Declared at,State")
    body = b"".join(chunks).decode()
    numbers = [int(row["Number"]) for row in csv.DictReader(io.StringIO(body))]
    assert numbers == [d.pk for d in reversed(made)]


def test_csv_lines_are_batched_not_accumulated():
    rows = ((i, f"title {i}") for i in range(1200))
    chunks = list(views._csv_lines(rows, batch=500))
    # Header, then three batches: at most `batch` rows are ever held at once.
    assert len(chunks) == 4
    assert chunks[1].count("\n") == 500


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+SUM(A1:A2)", "'+SUM(A1:A2)"),
        ("-2+3", "'-2+3"),
        ("@cmd", "'@cmd"),
        ("\tTAB", "'\tTAB"),
        ("Plain title", "Plain title"),
        (None, ""),
        (3, 3),
    ],
)
def test_cells_are_never_formulas(value, expected):
    assert views.csv_safe(value) == expected


@pytest.mark.django_db
def test_a_formula_in_a_title_is_exported_as_text(manager_client, plans, support_user):
    make_declaration(declared_by=support_user, plan=plans["website-outage"], title='=cmd|" /C calc"!A0')
    row = read_csv(manager_client.get("/declarations/export.csv"))[0]
    assert row["Title"] == '\'=cmd|" /C calc"!A0'
    assert row["Title set by declarer"].startswith("'=")


@pytest.mark.django_db
def test_export_refuses_bad_filters_clearly(manager_client):
    response = manager_client.get("/declarations/export.csv", {"date_from": "yesterday"})
    assert response.status_code == 400
    assert "Enter a valid date" in response.content.decode()

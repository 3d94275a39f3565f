"""CSV export of the filtered history: complete, streamed, and safe to open in a spreadsheet."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from incidents.models import Declaration
from incidents.selectors.history import csv_chunks
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
    assert row["Impact"] == "2 – High"
    assert row["State"] == "started"
    assert row["Response plan"] == "Website outage"
    assert row["Response plan name in AWS"] == "website-outage"
    assert row["Declared by"] == "sam.support"
    assert row["Incident record ARN"].endswith("incident-record/website-outage/1")
    assert datetime.fromisoformat(row["Declared at"]) == mine.created_at.replace(microsecond=0)


@pytest.mark.django_db
def test_export_streams_in_chunks_and_misses_no_row(manager_client, plans, support_user, settings):
    # Tiny fetches and batches where the csv module writes (not PostgreSQL): rows cross many chunk boundaries.
    settings.PORTAL_EXPORT_CHUNK_SIZE = 3
    made = [
        make_declaration(declared_by=support_user, plan=plans["website-outage"], title=f"Row {i}") for i in range(23)
    ]
    response = manager_client.get("/declarations/export.csv")
    chunks = list(response.streaming_content)
    assert chunks[0].decode().startswith("Number,Declared at,State")
    body = b"".join(chunks).decode()
    assert body.count("\n") == len(made) + 1
    assert "\r" not in body  # one line ending throughout, the header's included
    numbers = [int(row["Number"]) for row in csv.DictReader(io.StringIO(body))]
    assert numbers == [d.pk for d in reversed(made)]


def test_csv_chunks_are_batched_not_accumulated():
    rows = ((i, f"title {i}") for i in range(1200))
    chunks = list(csv_chunks(rows, batch=500))
    # Three batches: at most `batch` rows are ever held at once (the export's path on databases other than PostgreSQL).
    assert [chunk.count("\n") for chunk in chunks] == [500, 500, 200]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+SUM(A1:A2)", "'+SUM(A1:A2)"),
        ("-2+3", "'-2+3"),
        ("@cmd", "'@cmd"),
        ("\tTAB", "'\tTAB"),
        ("\rCR", "'\rCR"),
        ('Plain reason, with a comma and "quotes"', 'Plain reason, with a comma and "quotes"'),
        ("", ""),
    ],
)
def test_cells_are_never_formulas(manager_client, plans, support_user, value, expected):
    """AWS's failure messages are text from outside the portal: the database writes them as inert cells."""
    make_declaration(declared_by=support_user, plan=plans["website-outage"], state="failed", failure_reason=value)
    body = b"".join(manager_client.get("/declarations/export.csv").streaming_content).decode()
    row = next(csv.DictReader(io.StringIO(body, newline="")))
    assert row["Failure reason"] == expected


@pytest.mark.django_db
def test_timestamps_are_iso_8601_in_utc_and_empty_when_unset(manager_client, plans, support_user):
    started = make_declaration(
        declared_by=support_user, plan=plans["website-outage"], state="started", started_at=timezone.now()
    )
    make_declaration(declared_by=support_user, plan=plans["website-outage"])
    queued, started_row = read_csv(manager_client.get("/declarations/export.csv"))
    assert datetime.fromisoformat(started_row["Started at"]) == started.started_at.replace(microsecond=0)
    assert started_row["Started at"].endswith("+00:00")
    assert queued["Started at"] == ""


@pytest.mark.django_db(transaction=True)
def test_an_export_abandoned_halfway_leaves_the_connection_usable(manager_client, plans, support_user):
    for i in range(50):
        # ~200 KB in all, so that the CSV is still being written when the browser goes away.
        make_declaration(
            declared_by=support_user, plan=plans["website-outage"], title=f"Row {i}", failure_reason="x" * 4000
        )
    response = manager_client.get("/declarations/export.csv")
    chunks = iter(response.streaming_content)
    assert next(chunks).startswith(b"Number,")
    assert len(next(chunks)) < 150_000
    response.close()  # the browser went away: the generator is closed mid-COPY
    assert Declaration.objects.count() == 50


@pytest.mark.django_db
def test_a_formula_in_a_title_is_exported_as_text(manager_client, plans, support_user):
    make_declaration(declared_by=support_user, plan=plans["website-outage"], title='=cmd|" /C calc"!A0')
    row = read_csv(manager_client.get("/declarations/export.csv"))[0]
    assert row["Title"] == '\'=cmd|" /C calc"!A0'
    assert row["Title set by declarer"] == "yes"


@pytest.mark.django_db
def test_export_refuses_bad_filters_clearly(manager_client):
    response = manager_client.get("/declarations/export.csv", {"date_from": "yesterday"})
    assert response.status_code == 400
    assert "Enter a valid date" in response.content.decode()


@pytest.mark.django_db
def test_times_are_to_the_second_with_their_zone(manager_client, plans, support_user):
    """Microseconds made every time unreadable in a spreadsheet ("2026-10-15T12:00:00.123456+00:00")."""
    at = datetime(2026, 10, 15, 12, 0, 5, 123456, tzinfo=UTC)
    make_declaration(
        declared_by=support_user,
        plan=plans["website-outage"],
        state="started",
        created_at=at,
        started_at=at + timedelta(seconds=1),
        aws_status="RESOLVED",
        resolved_at=at + timedelta(hours=2),
    )
    row = read_csv(manager_client.get("/declarations/export.csv"))[0]
    assert row["Declared at"] == "2026-10-15T12:00:05+00:00"
    assert row["Started at"] == "2026-10-15T12:00:06+00:00"
    assert row["Resolved at"] == "2026-10-15T14:00:05+00:00"


@pytest.mark.django_db
def test_the_plan_is_named_as_people_know_it_beside_its_aws_name(manager_client, plans, support_user):
    web, pay = plans["website-outage"], plans["payments-degraded"]
    web.display_name = "Storefront down"
    web.save()
    pay.display_name, pay.aws_display_name = "", ""
    pay.save()
    make_declaration(declared_by=support_user, plan=web, created_at=timezone.now())
    make_declaration(declared_by=support_user, plan=pay, created_at=timezone.now() - timedelta(minutes=1))
    first, second = read_csv(manager_client.get("/declarations/export.csv"))
    assert (first["Response plan"], first["Response plan name in AWS"]) == ("Storefront down", "website-outage")
    assert (second["Response plan"], second["Response plan name in AWS"]) == ("payments-degraded", "payments-degraded")


@pytest.mark.django_db
def test_set_by_declarer_says_yes_or_no_and_the_impact_is_named(manager_client, plans, support_user):
    web = plans["website-outage"]  # its own impact: 1 – Critical
    make_declaration(declared_by=support_user, plan=web, title="Checkout down", impact=3, created_at=timezone.now())
    make_declaration(declared_by=support_user, plan=web, created_at=timezone.now() - timedelta(minutes=1))
    chosen, left_to_plan = read_csv(manager_client.get("/declarations/export.csv"))
    assert (chosen["Title set by declarer"], chosen["Impact set by declarer"]) == ("yes", "yes")
    assert chosen["Impact"] == "3 – Medium"
    assert (left_to_plan["Title set by declarer"], left_to_plan["Impact set by declarer"]) == ("no", "no")
    assert left_to_plan["Impact"] == "1 – Critical"
    assert left_to_plan["Title"] == web.template_title


@pytest.mark.django_db
def test_each_row_links_to_its_page(manager_client, plans, support_user):
    declaration = make_declaration(declared_by=support_user, plan=plans["website-outage"])
    row = read_csv(manager_client.get("/declarations/export.csv"))[0]
    assert row["Page"] == f"http://testserver/declarations/{declaration.pk}/"
    assert manager_client.get(row["Page"].removeprefix("http://testserver")).status_code == 200


@pytest.mark.django_db
def test_aws_status_and_drills_in_the_export(manager_client, plans, support_user):
    web = plans["website-outage"]
    now = timezone.now()
    make_declaration(declared_by=support_user, plan=web, title="Real", aws_status="OPEN", created_at=now)
    make_declaration(
        declared_by=support_user,
        plan=web,
        title="Rehearsal",
        aws_status="RESOLVED",
        is_drill=True,
        created_at=now - timedelta(minutes=1),
    )
    make_declaration(declared_by=support_user, plan=web, title="Not started", created_at=now - timedelta(minutes=2))

    # Drills are left out unless the filter asks for them, as on the page.
    assert [row["Title"] for row in read_csv(manager_client.get("/declarations/export.csv"))] == ["Real", "Not started"]
    rows = read_csv(manager_client.get("/declarations/export.csv", {"drills": "include"}))
    assert [(row["Title"], row["Drill"], row["AWS status"]) for row in rows] == [
        ("Real", "no", "open"),
        ("Rehearsal", "yes", "resolved"),
        ("Not started", "no", ""),
    ]
    rows = read_csv(manager_client.get("/declarations/export.csv", {"drills": "only"}))
    assert [row["Title"] for row in rows] == ["Rehearsal"]
    rows = read_csv(manager_client.get("/declarations/export.csv", {"aws_status": "OPEN"}))
    assert [row["Title"] for row in rows] == ["Real"]

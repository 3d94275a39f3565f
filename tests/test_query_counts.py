"""What a declaration costs the database does not grow with what it carries: the worker's start and the
declaration's page ask the same number of questions for two related items as for forty."""

from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents.models import Declaration
from incidents.services.attachments import RelatedItemInput
from incidents.services.declarations import declaration_create
from incidents.services.starting import declaration_start


def declare(user, plan, items: int) -> Declaration:
    links = [
        RelatedItemInput(kind="link", value=f"https://status.example.com/incidents/{number}", title=f"Link {number}")
        for number in range(items)
    ]
    # Not handed to the session's worker: the test starts it itself, as the worker would.
    with mock.patch("incidents.services.declarations.declaration_dispatch"):
        declaration, _ = declaration_create(declared_by=user, response_plan=plan, related_items=links)
    return declaration


def queries_to_start(declaration: Declaration) -> int:
    with CaptureQueriesContext(connection) as context:
        declaration_start(declaration_id=declaration.pk, final_attempt=False)
    declaration.refresh_from_db()
    assert declaration.state == Declaration.State.STARTED
    return len(context.captured_queries)


@pytest.mark.django_db(transaction=True)
def test_starting_a_declaration_asks_the_database_the_same_few_questions_whatever_it_carries(support_user, plans):
    few = queries_to_start(declare(support_user, plans["website-outage"], items=2))
    many = queries_to_start(declare(support_user, plans["website-outage"], items=40))
    assert few == many
    # Lock and read the declaration with its plan and declarer, read its items, mark it starting and audit that,
    # then record the outcome and audit it (with the transactions' BEGIN/COMMIT and savepoints around them).
    assert few <= 12


@pytest.mark.django_db
def test_a_declarations_page_costs_the_same_whatever_it_carries(support_client, support_user, plans):
    few = declare(support_user, plans["website-outage"], items=2)
    many = declare(support_user, plans["website-outage"], items=40)
    for declaration in (few, many):
        declaration_start(declaration_id=declaration.pk, final_attempt=False)

    counts = []
    for declaration in (few, many):
        with CaptureQueriesContext(connection) as context:
            response = support_client.get(f"/declarations/{declaration.pk}/")
        assert response.status_code == 200
        assert "Link 1" in response.content.decode()
        counts.append(len(context.captured_queries))
    assert counts[0] == counts[1]
    # 8, and 3 to read the incident's AWS snapshot and, as no read is recent, to ask the worker for one.
    assert counts[0] <= 11
    with CaptureQueriesContext(connection) as context:
        support_client.get(f"/declarations/{few.pk}/")
    assert len(context.captured_queries) <= 9  # a read was asked for a moment ago: only the snapshot is read

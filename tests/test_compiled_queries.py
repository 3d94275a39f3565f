"""The queries every request runs, built once per process (portal.database.compiled, compiled_insert,
compiled_update), answer as the querysets and saves they were built from would — on PostgreSQL (the tests'
database) and on SQLite (`make run`'s)."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents import roles, selectors, services
from incidents.models import Declaration, RelatedItem, ResponsePlan
from portal import database
from tests.helpers import manage_py

# Signs in, and declares with a plan open to the person's group, as `make run` would serve it; appends to the
# audit trail; reads the declaration as the worker does and writes it starting, then started.
ON_SQLITE = """
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.test import Client

from incidents import roles, selectors, services
from incidents.models import AuditEvent, Declaration, ResponsePlan
from portal import database

ARN = "arn:aws:ssm-incidents::111122223333:response-plan/"
plan = ResponsePlan.objects.create(arn=ARN + "p", name="p", template_impact=3, is_visible=True)
closed = ResponsePlan.objects.create(arn=ARN + "q", name="q", template_impact=3, is_visible=True)
closed.allowed_groups.set([Group.objects.get(name=roles.MANAGER)])
user = User.objects.create_user("sam", password="a-long-test-password")
user.groups.add(Group.objects.get(name=roles.SUPPORT))
client = Client(SERVER_NAME="127.0.0.1")  # an allowed host of make run
client.force_login(user)
response = client.get("/declare/")
assert response.status_code == 200 and response.wsgi_request.user.username == "sam", response.status_code
person = response.wsgi_request.user
assert roles.can_declare(person) and not roles.is_manager(person)
assert selectors.response_plan_available_get(user=person, pk=plan.pk) == plan
assert selectors.response_plan_available_get(user=person, pk=closed.pk) is None
with transaction.atomic():
    first = services.audit_record(action="test.first", actor=user)
    second = services.audit_record(action="test.second", response_plan=plan)
assert second.previous_hash == first.hash == AuditEvent.chain_hash(first.previous_hash, first.content_hash)
assert list(AuditEvent.objects.values_list("pk", "hash")) == [(first.pk, first.hash), (second.pk, second.hash)]
services.declaration_dispatch = lambda declaration_id: True  # no worker here
declaration, _ = services.declaration_create(
    declared_by=user,
    response_plan=plan,
    title="Down",
    related_items=[services.RelatedItemInput(kind="link", value="https://example.com/", title="Status")],
)
stored = Declaration.objects.get()
assert (stored.pk, stored.effective_title, stored.effective_impact) == (declaration.pk, "Down", 3)
with transaction.atomic():
    held = selectors.declaration_for_start(declaration.pk)
    assert (held.title, held.response_plan.arn, held.declared_by.username) == ("Down", plan.arn, "sam")
    assert selectors.declaration_related_items(held) == [("link", "https://example.com/", "Status", "")]
held.state, held.aws_request = Declaration.State.STARTING, {"title": "Down"}
assert database.update(held, ["state", "aws_request", "updated_at"], unless=("state", Declaration.FINAL_STATES))
held.state = Declaration.State.STARTED
assert database.update(held, ["state"], unless=("state", Declaration.FINAL_STATES))
assert not database.update(held, ["state"], unless=("state", Declaration.FINAL_STATES))
assert Declaration.objects.values_list("state", "aws_request").get() == ("started", {"title": "Down"})
print("ok")
"""


@pytest.mark.django_db
def test_make_runs_sqlite_answers_the_compiled_queries(tmp_path):
    sqlite = {"settings": "portal.settings.local", "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}"}
    migrated = manage_py("migrate", "--noinput", "-v0", timeout=120, **sqlite)
    assert migrated.returncode == 0, migrated.stderr
    result = manage_py("shell", "-c", ON_SQLITE, **sqlite)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "ok"


@pytest.mark.django_db
def test_a_compiled_query_takes_the_values_in_place_of_its_placeholders(plans):
    plan = plans["website-outage"]
    query = database.compiled(ResponsePlan.objects.filter(pk=-1, name="-name-"), [-1, "-name-"])
    found = list(query.raw([plan.pk, plan.name]))
    assert found == [plan]
    assert list(query.raw([plan.pk, "another name"])) == []


def test_a_placeholder_the_query_does_not_take_is_refused():
    with pytest.raises(ImproperlyConfigured, match=r"does not take placeholders \[1\]"):
        database.compiled(ResponsePlan.objects.filter(pk=-1), [-1, -2])


@pytest.mark.django_db
def test_a_person_with_more_groups_than_before_gets_a_query_of_their_own(plans, support_user):
    """The plan lookup is compiled per number of groups: a second group must not reuse the first one's SQL."""
    security = plans["security-event"]
    security.allowed_groups.set([Group.objects.get(name=roles.MANAGER)])
    assert selectors.response_plan_available_get(user=support_user, pk=security.pk) is None
    support_user.groups.add(Group.objects.get(name=roles.MANAGER))
    del support_user._portal_groups  # as the next request reads the person
    assert selectors.response_plan_available_get(user=support_user, pk=security.pk) == security


@pytest.mark.django_db
def test_rows_inserted_together_come_back_in_their_order_with_their_ids(plans, support_user, monkeypatch):
    declaration, _ = services.declaration_create(declared_by=support_user, response_plan=plans["website-outage"])
    items = [
        RelatedItem(declaration=declaration, kind="link", value=f"https://example.com/{n}", position=n)
        for n in range(5)
    ]
    # As on a database that takes few parameters per statement: 2 rows at a time.
    monkeypatch.setattr(connection.ops, "bulk_batch_size", lambda fields, objs: 2)
    with CaptureQueriesContext(connection) as queries:
        database.insert(items)
    assert len(queries) == 3
    stored = RelatedItem.objects.filter(declaration=declaration).order_by("position")
    assert [(item.pk, item.value) for item in items] == [(item.pk, item.value) for item in stored]
    assert all(not item._state.adding for item in items)


@pytest.mark.django_db
def test_a_declaration_left_to_its_plan_is_stored_with_the_plans_title_and_impact(plans, support_user):
    """declaration_create inserts without save(), so it must fill in what AWS will be asked for itself."""
    plan = plans["payments-degraded"]
    declaration, _ = services.declaration_create(declared_by=support_user, response_plan=plan)
    stored = Declaration.objects.get(pk=declaration.pk)
    assert (stored.effective_title, stored.effective_impact) == (plan.template_title, plan.template_impact)
    assert (stored.title, stored.impact) == ("", None)


@pytest.mark.django_db
def test_an_update_writes_the_fields_named_and_nothing_else(plans, support_user):
    """database.update stands in for save(update_fields=…): the fields given, `auto_now` refreshed, JSON stored as
    JSON, a NULL as NULL; whatever else the object holds stays as stored."""
    declaration, _ = services.declaration_create(
        declared_by=support_user, response_plan=plans["website-outage"], title="Checkout is down"
    )
    stored_before = Declaration.objects.get(pk=declaration.pk)
    declaration.state = Declaration.State.STARTING
    declaration.attempts = 1
    declaration.aws_request = {"title": "Checkout is down", "impact": 2}
    declaration.dispatched_at = None
    declaration.title = "Not written: not among the fields"

    written = database.update(declaration, ["state", "attempts", "aws_request", "dispatched_at", "updated_at"])

    stored = Declaration.objects.get(pk=declaration.pk)
    assert written
    assert (stored.state, stored.attempts, stored.aws_request) == (
        "starting",
        1,
        {"title": "Checkout is down", "impact": 2},
    )
    assert stored.dispatched_at is None
    assert stored.title == "Checkout is down"
    assert stored.updated_at > stored_before.updated_at
    assert stored.updated_at == declaration.updated_at


@pytest.mark.django_db
def test_an_update_unless_the_row_holds_one_of_some_values_leaves_such_a_row_alone(plans, support_user):
    declaration, _ = services.declaration_create(declared_by=support_user, response_plan=plans["website-outage"])
    Declaration.objects.filter(pk=declaration.pk).update(state=Declaration.State.FAILED, failure_reason="Denied")
    declaration.state = Declaration.State.STARTED
    declaration.failure_reason = ""

    written = database.update(declaration, ["state", "failure_reason"], unless=("state", Declaration.FINAL_STATES))

    assert not written
    assert Declaration.objects.values_list("state", "failure_reason").get(pk=declaration.pk) == ("failed", "Denied")

"""The role matrix: every page and action, for every role (and for anonymous visitors)."""

import re

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from incidents import roles, urls
from incidents.models import AuditEvent, Declaration
from incidents.services.api_tokens import api_token_create
from incidents.services.attachments import RelatedItemInput
from incidents.services.declarations import declaration_create
from tests.conftest import make_user
from tests.helpers import declare_post, pretend_started, upload

ANON, NOROLE, SUPPORT, MANAGER, ADMIN = "anonymous", "no role", "support", "manager", "admin"
EVERYONE = (ANON, NOROLE, SUPPORT, MANAGER, ADMIN)
LOGIN = "login"  # redirected to the login page

OK, REDIRECT, FORBIDDEN, HIDDEN = 200, 302, 403, 404


def expect(**by_role) -> dict[str, object]:
    """The expected outcome per role; anonymous visitors always go to the login page."""
    table = {ANON: LOGIN}
    for role, outcome in by_role.items():
        table[{"norole": NOROLE}.get(role, role)] = outcome
    assert set(table) == set(EVERYONE), f"incomplete row: {table}"
    return table


# (method, path template, expected per role). {own}: a failed declaration of the support user with a file;
# {other}: a failed declaration of another support user; {file}: the file of {own}; {plan}, {user}: any.
MATRIX = [
    ("get", "/", expect(norole=REDIRECT, support=REDIRECT, manager=REDIRECT, admin=REDIRECT)),
    ("get", "/declare/", expect(norole=FORBIDDEN, support=OK, manager=OK, admin=OK)),
    ("get", "/declarations/", expect(norole=FORBIDDEN, support=OK, manager=OK, admin=OK)),
    ("get", "/declarations/{own}/", expect(norole=FORBIDDEN, support=OK, manager=OK, admin=OK)),
    ("get", "/declarations/{other}/", expect(norole=FORBIDDEN, support=HIDDEN, manager=OK, admin=OK)),
    (
        "post",
        "/declarations/{own}/retry/",
        expect(norole=FORBIDDEN, support=REDIRECT, manager=REDIRECT, admin=REDIRECT),
    ),
    (
        "post",
        "/declarations/{other}/retry/",
        expect(norole=FORBIDDEN, support=HIDDEN, manager=REDIRECT, admin=REDIRECT),
    ),
    (
        "get",
        "/declarations/{own}/files/{file}/",
        expect(norole=FORBIDDEN, support=REDIRECT, manager=REDIRECT, admin=REDIRECT),
    ),
    ("get", "/declarations/export.csv", expect(norole=FORBIDDEN, support=FORBIDDEN, manager=OK, admin=OK)),
    ("get", "/declarations/summary/", expect(norole=FORBIDDEN, support=FORBIDDEN, manager=OK, admin=OK)),
    ("get", "/plans/", expect(norole=FORBIDDEN, support=FORBIDDEN, manager=FORBIDDEN, admin=OK)),
    ("post", "/plans/sync/", expect(norole=FORBIDDEN, support=FORBIDDEN, manager=FORBIDDEN, admin=REDIRECT)),
    ("get", "/plans/{plan}/", expect(norole=FORBIDDEN, support=FORBIDDEN, manager=FORBIDDEN, admin=OK)),
    ("post", "/plans/{plan}/", expect(norole=FORBIDDEN, support=FORBIDDEN, manager=FORBIDDEN, admin=REDIRECT)),
    ("post", "/plans/{plan}/move/", expect(norole=FORBIDDEN, support=FORBIDDEN, manager=FORBIDDEN, admin=REDIRECT)),
    (
        "post",
        "/plans/{plan}/visibility/",
        expect(norole=FORBIDDEN, support=FORBIDDEN, manager=FORBIDDEN, admin=REDIRECT),
    ),
    ("get", "/plans/impact-levels/", expect(norole=FORBIDDEN, support=FORBIDDEN, manager=FORBIDDEN, admin=OK)),
    (
        "post",
        "/plans/impact-levels/",
        expect(norole=FORBIDDEN, support=FORBIDDEN, manager=FORBIDDEN, admin=REDIRECT),
    ),
    ("get", "/users/", expect(norole=FORBIDDEN, support=FORBIDDEN, manager=FORBIDDEN, admin=OK)),
    ("get", "/users/new/", expect(norole=FORBIDDEN, support=FORBIDDEN, manager=FORBIDDEN, admin=OK)),
    ("post", "/users/new/", expect(norole=FORBIDDEN, support=FORBIDDEN, manager=FORBIDDEN, admin=REDIRECT)),
    ("get", "/users/{user}/", expect(norole=FORBIDDEN, support=FORBIDDEN, manager=FORBIDDEN, admin=OK)),
    ("post", "/users/{user}/", expect(norole=FORBIDDEN, support=FORBIDDEN, manager=FORBIDDEN, admin=REDIRECT)),
    ("get", "/accounts/password/", expect(norole=OK, support=OK, manager=OK, admin=OK)),
    ("get", "/tokens/", expect(norole=FORBIDDEN, support=OK, manager=OK, admin=OK)),
    ("post", "/tokens/", expect(norole=FORBIDDEN, support=OK, manager=OK, admin=OK)),
    ("get", "/tokens/all/", expect(norole=FORBIDDEN, support=FORBIDDEN, manager=FORBIDDEN, admin=OK)),
    # {token}: the support user's; nobody else but an admin sees it.
    ("post", "/tokens/{token}/revoke/", expect(norole=HIDDEN, support=REDIRECT, manager=HIDDEN, admin=REDIRECT)),
    # Acting on a started incident ({own_started}: the support user's; {other_started}: another support user's).
    ("get", "/declarations/{own_started}/actions/", expect(norole=FORBIDDEN, support=OK, manager=OK, admin=OK)),
    ("get", "/declarations/{other_started}/actions/", expect(norole=FORBIDDEN, support=HIDDEN, manager=OK, admin=OK)),
    *[
        (
            "post",
            f"/declarations/{{{whose}_started}}/{action}/",
            expect(norole=FORBIDDEN, support=REDIRECT if whose == "own" else HIDDEN, manager=REDIRECT, admin=REDIRECT),
        )
        for action in ("notes", "related-items", "change", "resolve", "join")
        for whose in ("own", "other")
    ],
]

POST_DATA = {
    "/plans/{plan}/": {"is_visible": "on", "display_name": "Site down", "when_to_use": "", "order": "1"},
    "/plans/{plan}/move/": {"direction": "down"},
    "/plans/{plan}/visibility/": {"is_visible": "0"},
    "/plans/impact-levels/": {f"example_{level}": f"Example {level}" for level in range(1, 6)},
    "/users/new/": {"username": "new.person", "password": "a-long-enough-passphrase-42", "roles": [roles.SUPPORT]},
    "/users/{user}/": {"roles": [roles.SUPPORT, roles.MANAGER], "is_active": "on"},
    "/tokens/": {"name": "alerting runbook", "expires_in_days": "30"},
}
for _whose in ("own", "other"):
    _key = {"idempotency_key": "f" * 32}
    POST_DATA |= {
        f"/declarations/{{{_whose}_started}}/notes/": {**_key, "text": "Rolled back"},
        f"/declarations/{{{_whose}_started}}/related-items/": {**_key, "links": "https://status.example.com/1"},
        f"/declarations/{{{_whose}_started}}/change/": {**_key, "impact": "2"},
        f"/declarations/{{{_whose}_started}}/resolve/": {**_key, "note": "All green"},
        f"/declarations/{{{_whose}_started}}/join/": {**declare_post(key="f" * 32), "join_note": "Me too"},
    }


@pytest.fixture
def world(db, plans, django_user_model, support_user, other_support_user):
    """Declarations and a plan/user to act on, plus one logged-in-able account per role."""
    plan = plans["website-outage"]
    own, _ = declaration_create(
        declared_by=support_user,
        response_plan=plan,
        title="Mine",
        related_items=[RelatedItemInput(kind="file", upload=upload())],
    )
    other, _ = declaration_create(declared_by=other_support_user, response_plan=plan, title="Theirs")
    Declaration.objects.filter(pk__in=[own.pk, other.pk]).update(state=Declaration.State.FAILED)
    own_started = pretend_started(declaration_create(declared_by=support_user, response_plan=plan, title="Open")[0])
    other_started = pretend_started(
        declaration_create(declared_by=other_support_user, response_plan=plan, title="Theirs, open")[0],
        arn="arn:aws:ssm-incidents::111122223333:incident-record/website-outage/other",
    )
    accounts = {
        NOROLE: make_user(django_user_model, "nora.norole", role=None),
        SUPPORT: support_user,
        MANAGER: make_user(django_user_model, "maya.manager", roles.MANAGER),
        ADMIN: make_user(django_user_model, "ada.admin", roles.ADMIN),
    }
    ids = {
        "own": own.pk,
        "other": other.pk,
        "file": own.related_items.get().pk,
        "plan": plan.pk,
        "user": other_support_user.pk,
        "token": api_token_create(owner=support_user, name="runbook")[0].pk,
        "own_started": own_started.pk,
        "other_started": other_started.pk,
    }
    return accounts, ids


def _cases():
    for method, path, outcomes in MATRIX:
        for role in EVERYONE:
            yield pytest.param(method, path, role, outcomes[role], id=f"{role}-{method}-{path}")


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "role", "expected"), list(_cases()))
def test_role_matrix(client, world, method, path, role, expected):
    accounts, ids = world
    if role != ANON:
        client.force_login(accounts[role])
    url = path.format(**ids)
    events_before = AuditEvent.objects.count()
    response = getattr(client, method)(url, POST_DATA.get(path, {}))
    if expected == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login") + "?next=")
    else:
        assert response.status_code == expected, response.content[:300]
    if method == "post" and expected in (LOGIN, FORBIDDEN, HIDDEN):
        # A refused action leaves no trace of having happened.
        assert AuditEvent.objects.count() == events_before


# Routes of incidents/urls.py that are not pages for a role: the JSON API (tests/api/test_auth_and_roles.py), its
# reference, and the health and metrics endpoints (tests/test_health.py, tests/test_metrics.py).
NOT_IN_THE_MATRIX = ("api/", "healthz", "metrics")


def test_every_page_and_action_is_in_the_matrix():
    """A new URL gets its row here: who may open it is decided, not left to chance."""
    in_matrix = {re.sub(r"\{[a-z_]+\}", "<id>", path) for _method, path, _outcomes in MATRIX}
    routes = {
        "/" + re.sub(r"<int:[a-z_]+>", "<id>", str(pattern.pattern))
        for pattern in urls.urlpatterns
        if not str(pattern.pattern).lstrip("^").startswith(NOT_IN_THE_MATRIX)
    }
    assert routes - in_matrix == set()


@pytest.mark.django_db
@pytest.mark.parametrize("path", sorted({path for method, path, _outcomes in MATRIX if method == "post"}))
def test_every_action_refuses_a_request_without_its_csrf_token(world, path):
    accounts, ids = world
    client = Client(enforce_csrf_checks=True)
    client.force_login(accounts[ADMIN])
    events_before = AuditEvent.objects.count()

    response = client.post(path.format(**ids), POST_DATA.get(path, {}))

    assert response.status_code == 403
    assert AuditEvent.objects.count() == events_before


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "allowed"), [(SUPPORT, False), (MANAGER, False), (ADMIN, True)])
def test_the_django_admin_is_for_admins_only_even_for_staff_accounts(client, django_user_model, role, allowed):
    group = {SUPPORT: roles.SUPPORT, MANAGER: roles.MANAGER, ADMIN: roles.ADMIN}[role]
    user = make_user(django_user_model, f"staff.{role}", group)
    user.is_staff = True
    user.save()
    client.force_login(user)
    response = client.get("/admin/incidents/auditevent/")
    if allowed:
        assert response.status_code == 200
    else:
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_audit_events_are_read_only_in_the_django_admin(client, django_user_model, plans, support_user):
    declaration_create(declared_by=support_user, response_plan=plans["website-outage"])
    event = AuditEvent.objects.filter(action="declaration.queued").get()
    admin = make_user(django_user_model, "staff.admin", roles.ADMIN)
    admin.is_staff = True
    admin.save()
    client.force_login(admin)
    page = client.get(f"/admin/incidents/auditevent/{event.pk}/change/")
    assert page.status_code == 200
    assert b"declaration.queued" in page.content
    assert b'name="_save"' not in page.content
    assert client.get("/admin/incidents/auditevent/add/").status_code == 403
    assert client.post(f"/admin/incidents/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"/admin/incidents/auditevent/{event.pk}/change/", {"action": "forged"}).status_code == 403
    event.refresh_from_db()
    assert event.action == "declaration.queued"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "links"),
    [
        (roles.SUPPORT, ["Declare", "My declarations", "API tokens"]),
        (roles.MANAGER, ["Declare", "Declarations", "Summary", "API tokens"]),
        (roles.ADMIN, ["Declare", "Declarations", "Summary", "Response plans", "Users", "API tokens"]),
    ],
)
def test_navigation_offers_each_role_its_pages(client, django_user_model, role, links):
    import re

    client.force_login(make_user(django_user_model, "someone", role))
    html = client.get("/declare/").content.decode()
    nav = html[html.index('<nav aria-label="Main">') : html.index("</nav>")]
    assert re.findall(r">([^<>]+)</a>", nav) == links


@pytest.mark.django_db
def test_an_admin_can_create_an_account_with_roles_and_it_is_audited(portal_admin_client):
    response = portal_admin_client.post(
        "/users/new/",
        {"username": "new.person", "password": "a-long-enough-passphrase-42", "roles": [roles.MANAGER]},
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="user.created")
    assert event.details == {"user": "new.person", "roles": [roles.MANAGER]}
    assert event.actor_label == "ada.admin"
    assert list(Group.objects.filter(user__username="new.person").values_list("name", flat=True)) == [roles.MANAGER]


@pytest.mark.django_db
def test_a_weak_password_is_refused_at_the_field(portal_admin_client, django_user_model):
    response = portal_admin_client.post(
        "/users/new/", {"username": "x.person", "password": "123", "roles": [roles.SUPPORT]}
    )
    assert response.status_code == 200
    assert "too short" in response.content.decode()
    assert not django_user_model.objects.filter(username="x.person").exists()


@pytest.mark.django_db
def test_an_admin_changes_roles_and_disables_accounts_with_an_audit_event(portal_admin_client, support_user):
    response = portal_admin_client.post(f"/users/{support_user.pk}/", {"roles": [roles.MANAGER]})
    assert response.status_code == 302
    changed = type(support_user).objects.get(pk=support_user.pk)
    assert not changed.is_active
    assert list(changed.groups.values_list("name", flat=True)) == [roles.MANAGER]
    event = AuditEvent.objects.get(action="user.updated")
    assert event.details["roles"] == {"from": [roles.SUPPORT], "to": [roles.MANAGER]}
    assert event.details["is_active"] == {"from": True, "to": False}


@pytest.mark.django_db
def test_an_admin_cannot_lock_themselves_out(portal_admin_client, portal_admin_user):
    response = portal_admin_client.post(
        f"/users/{portal_admin_user.pk}/", {"roles": [roles.SUPPORT], "is_active": "on"}
    )
    assert response.status_code == 200
    assert "cannot remove your own admin role" in response.content.decode()
    assert roles.is_admin(type(portal_admin_user).objects.get(pk=portal_admin_user.pk))


@pytest.mark.django_db
def test_a_role_change_applies_to_the_persons_very_next_request(client, portal_admin_client, support_user, plans):
    """The person's groups are read with the person on each request, never kept from an earlier one."""
    client.force_login(support_user)
    assert client.get("/declarations/summary/").status_code == 403
    portal_admin_client.post(f"/users/{support_user.pk}/", {"roles": [roles.MANAGER], "is_active": "on"})
    assert client.get("/declarations/summary/").status_code == 200
    portal_admin_client.post(f"/users/{support_user.pk}/", {"roles": [], "is_active": "on"})
    assert client.get("/declare/").status_code == 403
    portal_admin_client.post(f"/users/{support_user.pk}/", {"roles": [roles.SUPPORT]})  # disabled
    response = client.get("/declare/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_the_session_reads_every_group_of_the_person_and_none_of_anyone_else(client, django_user_model):
    both = make_user(django_user_model, "both", roles.MANAGER)
    both.groups.add(Group.objects.get(name=roles.ADMIN))
    make_user(django_user_model, "bystander", roles.SUPPORT)  # a membership that is not theirs
    client.force_login(both)
    assert client.get("/users/").status_code == 200  # admins only
    assert client.get("/declarations/summary/").status_code == 200  # managers

    nobody = make_user(django_user_model, "nobody", role=None)
    client.force_login(nobody)
    response = client.get("/declare/")
    assert response.status_code == 403  # signed in, but no role: not sent to the login page
    assert response.wsgi_request.user.username == "nobody"

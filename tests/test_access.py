"""Who may see and do what."""

import pytest
from django.urls import reverse

from incidents.models import Declaration
from incidents.services.declarations import declaration_create


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/declare/", "/declarations/1/"])
def test_anonymous_visitors_are_sent_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


@pytest.mark.django_db
def test_anonymous_post_declares_nothing(client, plans):
    response = client.post("/declare/", {"response_plan": plans["website-outage"].pk})
    assert response.status_code == 302
    assert Declaration.objects.count() == 0


@pytest.mark.django_db
def test_login_page_renders_and_logs_in(client, support_user):
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"username": "sam.support", "password": "a-long-test-password"})
    assert response.status_code == 302
    assert response["Location"] == reverse("incidents:declare")


@pytest.mark.django_db
def test_an_account_without_a_role_cannot_declare(client, django_user_model):
    nobody = django_user_model.objects.create_user(username="nobody", password="a-long-test-password")
    client.force_login(nobody)
    assert client.get("/declare/").status_code == 403


def _declaration(user, plan) -> Declaration:
    declaration, _ = declaration_create(declared_by=user, response_plan=plan, title="Mine")
    return declaration


@pytest.mark.django_db
def test_support_staff_cannot_see_anothers_declaration(client, plans, support_user, other_support_user):
    declaration = _declaration(other_support_user, plans["website-outage"])
    client.force_login(support_user)
    assert client.get(f"/declarations/{declaration.pk}/").status_code == 404
    assert client.post(f"/declarations/{declaration.pk}/retry/").status_code == 404


@pytest.mark.django_db
def test_managers_see_every_declaration(client, plans, support_user, manager_user):
    declaration = _declaration(support_user, plans["website-outage"])
    client.force_login(manager_user)
    response = client.get(f"/declarations/{declaration.pk}/")
    assert response.status_code == 200
    assert "sam.support" in response.content.decode()


@pytest.mark.django_db
def test_retry_is_refused_unless_the_declaration_failed(client, plans, support_user):
    declaration = _declaration(support_user, plans["website-outage"])
    client.force_login(support_user)
    response = client.post(f"/declarations/{declaration.pk}/retry/", follow=True)
    assert "Only a failed declaration can be retried." in response.content.decode()
    declaration.refresh_from_db()
    assert declaration.state == Declaration.State.QUEUED


@pytest.mark.django_db
def test_the_declare_form_requires_a_csrf_token(plans, support_user):
    from django.test import Client

    from tests.helpers import declare_post

    client = Client(enforce_csrf_checks=True)
    client.force_login(support_user)
    response = client.post("/declare/", declare_post(plans["website-outage"]))
    assert response.status_code == 403
    assert Declaration.objects.count() == 0

"""Sessions live in the database (read by portal/sessions.py): a session ends on the server, not only in a browser."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone


def signed_in_client(user) -> tuple[Client, str]:
    client = Client()
    client.force_login(user)
    return client, client.cookies["sessionid"].value


@pytest.mark.django_db
def test_a_live_session_is_read_with_its_person(support_user):
    client, _ = signed_in_client(support_user)
    response = client.get("/declare/")
    assert response.status_code == 200
    assert response.wsgi_request.user == support_user


@pytest.mark.django_db
def test_an_expired_session_sends_the_person_to_sign_in_again(support_user):
    client, key = signed_in_client(support_user)
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/declare/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_a_cookie_kept_from_before_signing_out_opens_nothing(support_user):
    client, key = signed_in_client(support_user)
    assert client.post("/accounts/logout/").status_code == 302
    assert not Session.objects.filter(session_key=key).exists()
    replay = Client()
    replay.cookies["sessionid"] = key  # copied before signing out
    response = replay.get("/declare/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")

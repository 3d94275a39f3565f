"""clientToken / Idempotency-Key: a repeated call finds the declaration it already made."""

import threading

import pytest
from django.db import connection
from django.test import Client

from incidents.models import Declaration
from tests.api.conftest import ApiClient, api_for, assert_error, link


def request(plans, **fields) -> dict:
    return {"responsePlanArn": plans["website-outage"].arn, "title": "Checkout down", **fields}


@pytest.mark.django_db
def test_the_same_token_and_payload_return_the_first_declaration(api, plans):
    first = api.start(request(plans, clientToken="alarm-42"))
    again = api.start(request(plans, clientToken="alarm-42"))

    assert first.status_code == 202
    assert first["Idempotent-Replayed"] == "false"
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    assert again.json()["data"]["created_at"] == first.json()["data"]["created_at"]
    assert Declaration.objects.count() == 1


@pytest.mark.django_db
def test_the_same_token_with_a_different_payload_is_a_conflict(api, plans):
    assert api.start(request(plans, clientToken="alarm-42")).status_code == 202
    response = api.start(request(plans, clientToken="alarm-42", title="Something else"))

    error = assert_error(response, 409, "CONFLICT")
    assert "already used with a different request" in error["message"]
    assert Declaration.objects.get().title == "Checkout down"


@pytest.mark.django_db
def test_the_header_and_the_body_token_are_the_same_key(api, plans):
    first = api.start(request(plans), **{"Idempotency-Key": "run-7"})
    again = api.start(request(plans, clientToken="run-7"))
    both = api.start(request(plans, clientToken="run-7"), **{"Idempotency-Key": "run-7"})

    assert (first.status_code, again.status_code, both.status_code) == (202, 200, 200)
    assert {r.json()["data"]["id"] for r in (first, again, both)} == {first.json()["data"]["id"]}


@pytest.mark.django_db
def test_a_header_and_a_body_token_that_differ_are_refused(api, plans):
    response = api.start(request(plans, clientToken="run-7"), **{"Idempotency-Key": "run-8"})
    assert "differ" in assert_error(response, 400, "VALIDATION_ERROR")["details"]["clientToken"]
    assert Declaration.objects.count() == 0


@pytest.mark.django_db
def test_tokens_are_scoped_to_each_caller(api, plans, other_support_user):
    mine = api.start(request(plans, clientToken="nightly"))
    theirs = api_for(other_support_user).start(request(plans, clientToken="nightly", title="Their own"))

    assert (mine.status_code, theirs.status_code) == (202, 202)
    assert Declaration.objects.count() == 2


@pytest.mark.django_db
def test_without_a_token_every_call_declares(api, plans):
    assert api.start(request(plans)).status_code == 202
    assert api.start(request(plans)).status_code == 202
    assert Declaration.objects.count() == 2


@pytest.mark.django_db
def test_the_payload_compares_by_meaning_not_by_spelling(api, plans):
    items = [link("https://status.example.com")]
    first = api.start(request(plans, clientToken="k", relatedItems=items))
    # Other field order, padded title, explicit nulls: the same request.
    again = api.start(
        {"clientToken": "k", "impact": None, "relatedItems": items, **request(plans, title="  Checkout down ")}
    )
    assert again.status_code == 200
    assert again.json()["data"]["id"] == first.json()["data"]["id"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_requests_make_one_declaration(plans, support_user, support_token):
    barrier = threading.Barrier(5)
    responses = []

    def call():
        try:
            barrier.wait()
            responses.append(ApiClient(Client(), support_token).start(request(plans, clientToken="storm")))
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 202]
    assert len({r.json()["data"]["id"] for r in responses}) == 1
    assert Declaration.objects.count() == 1

"""Declaring under stress, without a browser: Enter never declares, a second declaration is a choice, the success
page leads to the incident, failures say what to do."""

import re

import pytest
from django.urls import reverse

from incidents.models import Declaration
from tests.helpers import declare_post

DECLARE = reverse("incidents:declare")
pytestmark = pytest.mark.django_db


def first_submit_button(page: str) -> str:
    form = page[page.index('id="declare-form"') :]
    return re.search(r"<button[^>]*type=\"submit\"[^>]*>", form)[0]


def test_the_forms_first_submit_button_does_not_declare(support_client, plans):
    """Without JavaScript, Enter in a field submits through the form's first submit button."""
    page = support_client.get(DECLARE).content.decode()
    assert 'value="declare"' not in first_submit_button(page)


def test_enter_without_javascript_declares_nothing_and_adds_a_row_when_all_are_used(support_client, plans):
    data = declare_post(plans["website-outage"], items=[{"value": "https://status.example.com/1"}])
    data["action"] = "enter"
    page = support_client.post(DECLARE, data).content.decode()
    assert Declaration.objects.count() == 0
    assert "Nothing was declared: Enter only moves on." in page
    assert 'value="https://status.example.com/1"' in page
    assert 'name="items-TOTAL_FORMS" value="2"' in page

    data = declare_post(plans["website-outage"], extra_rows=1)
    data["action"] = "enter"
    page = support_client.post(DECLARE, data).content.decode()
    # An empty row is still there to fill: none is added.
    assert 'name="items-TOTAL_FORMS" value="1"' in page
    assert Declaration.objects.count() == 0

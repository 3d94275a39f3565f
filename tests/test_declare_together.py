"""The declare page's parts together, without JavaScript: a drill, with the impact's start, a typed link and files
from "Attach files", in one plain POST; and, when one field is wrong, everything else comes back as typed."""

from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from incidents.models import Declaration, RelatedItem
from incidents.services.plans import response_plan_update
from tests.helpers import declare_post, upload, wait_for_action

DECLARE = reverse("incidents:declare")
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def drill_plan(plans):
    return response_plan_update(plan=plans["internal-tooling"], actor=None, is_drill=True)


def drill_form(plan, *, title: str, started) -> dict:
    data = declare_post(plan, title=title, items=[{"value": "https://grafana.example.com/d/failover"}])
    data.update(
        drill="1",
        impact_started_at=started.astimezone(BERLIN).strftime("%Y-%m-%dT%H:%M"),
        time_zone="Europe/Berlin",
        attachments=[upload("app.log", b"failover at 14:02\n"), upload("db.log", b"replica promoted\n")],
    )
    return data


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_a_drill_with_its_impact_start_a_link_and_attached_files_in_one_plain_post(support_client, drill_plan, sandbox):
    started = (timezone.now() - timedelta(minutes=40)).replace(second=0, microsecond=0)

    response = support_client.post(DECLARE, drill_form(drill_plan, title="Failover rehearsal", started=started))

    assert response.status_code == 302, response.content.decode()[:2000]
    declaration = wait_for_action(Declaration.objects.get(), "started", "failed")
    assert declaration.state == "started", declaration.failure_reason
    assert declaration.is_drill and declaration.impact_started_at == started
    assert [(item.kind, item.title or item.value) for item in declaration.related_items.order_by("position")] == [
        (RelatedItem.Kind.LINK, "https://grafana.example.com/d/failover"),
        (RelatedItem.Kind.FILE, "app.log"),
        (RelatedItem.Kind.FILE, "db.log"),
    ]
    (call,) = sandbox.calls("StartIncident")
    request = call["params"]
    assert request["title"] == "[DRILL] Failover rehearsal"
    assert request["triggerDetails"]["timestamp"] == pytest.approx(started.astimezone(UTC).timestamp())
    assert [item["identifier"]["type"] for item in request["relatedItems"]] == ["OTHER", "ATTACHMENT", "ATTACHMENT"]


@pytest.mark.django_db
def test_a_refused_drill_comes_back_with_its_drill_choice_impact_start_and_link(support_client, drill_plan):
    started = (timezone.now() - timedelta(minutes=40)).replace(second=0, microsecond=0)
    too_long = "x" * 200  # no room for "[DRILL] " in front

    response = support_client.post(DECLARE, drill_form(drill_plan, title=too_long, started=started))

    assert response.status_code == 200
    assert not Declaration.objects.exists()
    page = response.content.decode()
    assert "A drill's title can be at most" in page
    assert response.context["drill"] is True
    assert response.context["plan"] == drill_plan
    assert started.astimezone(BERLIN).strftime("%Y-%m-%dT%H:%M") in page
    assert "https://grafana.example.com/d/failover" in page
    # A browser cannot keep chosen files across a page load: the page says so.
    assert response.context["files_dropped"] is True

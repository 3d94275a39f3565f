"""/metrics: what an operator's Prometheus scrapes, and who may scrape it."""

import ipaddress
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from incidents.aws import client as aws
from incidents.aws.ratelimit import RateLimitBusy, _redis, rate_limit_wait
from incidents.models import Declaration
from incidents.services.starting import declaration_start
from incidents.services.sweeper import declarations_sweep
from tests.api.conftest import ApiClient, make_token
from tests.conftest import worker_database_url
from tests.helpers import ROOT, free_port, make_declaration
from tests.test_warmup import get, production_env

METRICS = "/metrics"


def scrape(client: Client | None = None, **extra) -> dict[tuple[str, frozenset], float]:
    """Every sample of one scrape, by name and labels."""
    response = (client or Client()).get(METRICS, **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# --- Who may scrape --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_answer_operators_on_loopback_or_with_the_operator_token_and_nobody_else(settings, portal_admin_client):
    settings.PORTAL_OPERATOR_TOKEN = "operator-secret-token"
    elsewhere = {"REMOTE_ADDR": "203.0.113.7"}

    assert Client().get(METRICS).status_code == 200, "loopback is an operator's network by default"
    assert Client().get(METRICS, **elsewhere).status_code == 403, "no login redirect, no metrics"
    assert portal_admin_client.get(METRICS, **elsewhere).status_code == 403, "a person's role is not an operator's"
    wrong = {"HTTP_AUTHORIZATION": "Bearer not-the-token", **elsewhere}
    assert Client().get(METRICS, **wrong).status_code == 403
    scrape(HTTP_AUTHORIZATION="Bearer operator-secret-token", **elsewhere)

    settings.PORTAL_OPERATOR_NETWORKS = [ipaddress.ip_network("203.0.113.0/24")]
    scrape(**elsewhere)
    assert Client().get(METRICS).status_code == 403, "loopback is no longer listed"


# --- A declaration, all the way through the worker ------------------------------------------------------


def wait_until_final(api: ApiClient, status_url: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = api.get(status_url).json()["data"]
        if data["state"] in ("started", "failed"):
            return data
        time.sleep(0.1)
    raise AssertionError(f"{status_url} stayed {data['state']}")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_a_declaration_through_the_worker_and_the_sandbox_shows_in_the_metrics(support_user, plans, sandbox):
    api = ApiClient(Client(), make_token(support_user))
    before = scrape()

    accepted = api.start({"responsePlanArn": plans["website-outage"].arn, "title": "Checkout down"})
    assert accepted.status_code == 202
    assert wait_until_final(api, accepted.json()["data"]["status_url"])["state"] == "started"
    after = scrape()

    start_incident = {"service": "ssm-incidents", "operation": "StartIncident"}
    # Counted by the worker process, read by this one through the shared metrics directory.
    assert value(after, "portal_aws_calls_total", **start_incident, outcome="success") == (
        value(before, "portal_aws_calls_total", **start_incident, outcome="success") + 1
    )
    assert value(after, "portal_aws_call_duration_seconds_count", **start_incident) == (
        value(before, "portal_aws_call_duration_seconds_count", **start_incident) + 1
    )
    assert value(after, "portal_declaration_to_started_seconds_count", source="api") == (
        value(before, "portal_declaration_to_started_seconds_count", source="api") + 1
    )
    assert value(after, "portal_rate_limit_wait_seconds_count", limit="start-incident") >= (
        value(before, "portal_rate_limit_wait_seconds_count", limit="start-incident") + 1
    )
    for name, labels in [
        ("portal_declarations_created_total", {"source": "api"}),
        ("portal_declarations_finished_total", {"state": "started", "source": "api"}),
    ]:
        assert value(after, name, **labels) == value(before, name, **labels) + 1, name
    # Read from the database at scrape time: nothing is left in flight.
    assert value(after, "portal_declarations_in_flight", state="queued", source="api") == 0
    assert value(after, "portal_declarations_in_flight", state="starting", source="api") == 0
    assert value(after, "portal_declaration_queue_depth") == 0
    # The API's requests, by operation and status (the 202, then the polls).
    assert value(after, "portal_api_requests_total", operation="start-incident", status="202") == (
        value(before, "portal_api_requests_total", operation="start-incident", status="202") + 1
    )
    assert value(after, "portal_api_requests_total", operation="declaration", status="200") >= 1


@pytest.mark.django_db
def test_a_failed_aws_call_is_counted_by_its_error_code(sandbox):
    sandbox.inject(operation="ListResponsePlans", error_next=1)
    before = scrape()
    with pytest.raises(aws.AwsError):
        aws.ping(timeout=2)
    after = scrape()
    labels = {"service": "ssm-incidents", "operation": "ListResponsePlans"}
    assert value(after, "portal_aws_calls_total", **labels, outcome="InternalServerException") == (
        value(before, "portal_aws_calls_total", **labels, outcome="InternalServerException") + 1
    )


@pytest.mark.django_db
def test_an_unknown_api_path_and_a_refused_token_count_by_status():
    before = scrape()
    ApiClient(Client(), "not-a-token").get("/api/declarations/1")
    Client().get("/api/no-such-thing")
    after = scrape()
    assert value(after, "portal_api_requests_total", operation="declaration", status="401") == (
        value(before, "portal_api_requests_total", operation="declaration", status="401") + 1
    )
    assert value(after, "portal_api_requests_total", operation="unknown", status="404") == (
        value(before, "portal_api_requests_total", operation="unknown", status="404") + 1
    )


# --- The queue, the sweeper, the rate limit, sign-ins ---------------------------------------------------


@pytest.mark.django_db
def test_queue_depth_and_the_oldest_queued_declarations_age(support_user, plans):
    now = timezone.now()
    make_declaration(declared_by=support_user, plan=plans["website-outage"], created_at=now - timedelta(minutes=10))
    make_declaration(declared_by=support_user, plan=plans["website-outage"], created_at=now - timedelta(minutes=1))
    make_declaration(declared_by=support_user, plan=plans["website-outage"], state="started", source="api")

    samples = scrape()

    assert value(samples, "portal_declaration_queue_depth") == 2
    assert value(samples, "portal_declaration_oldest_queued_age_seconds") >= 600
    assert value(samples, "portal_declarations_in_flight", state="queued", source="web") == 2
    # Every state in flight and source is there, zero included, so that an alert on it never sees a gap.
    assert ("portal_declarations_in_flight", frozenset({"state": "starting", "source": "api"}.items())) in samples
    assert not [key for key in samples if key[0] == "portal_declarations_in_flight" and ("state", "started") in key[1]]


@pytest.mark.django_db
def test_a_declaration_that_fails_is_counted_once_by_its_outcome(
    support_user, plans, sandbox, django_capture_on_commit_callbacks
):
    declaration = make_declaration(declared_by=support_user, plan=plans["website-outage"])
    sandbox.inject(operation="StartIncident", deny_next=1)
    failed = {"state": "failed", "source": "web"}
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        assert declaration_start(declaration_id=declaration.pk, final_attempt=True).state == "failed"
        declaration_start(declaration_id=declaration.pk, final_attempt=True)  # a second delivery: nothing to do
    after = scrape()
    assert value(after, "portal_declarations_finished_total", **failed) == (
        value(before, "portal_declarations_finished_total", **failed) + 1
    )
    labels = {"service": "ssm-incidents", "operation": "StartIncident", "outcome": "AccessDeniedException"}
    assert value(after, "portal_aws_calls_total", **labels) == value(before, "portal_aws_calls_total", **labels) + 1


@pytest.mark.django_db
def test_sweeper_redispatches_are_counted(support_user, plans, settings, django_capture_on_commit_callbacks):
    long_ago = timezone.now() - timedelta(seconds=settings.PORTAL_SWEEP_QUEUED_AFTER + 5)
    make_declaration(declared_by=support_user, plan=plans["website-outage"], created_at=long_ago)
    before = scrape()
    with django_capture_on_commit_callbacks(execute=False):  # nothing is handed to a worker
        assert len(declarations_sweep().queued) == 1
    after = scrape()
    assert value(after, "portal_sweeper_redispatches_total", kind="queued") == (
        value(before, "portal_sweeper_redispatches_total", kind="queued") + 1
    )
    assert Declaration.objects.get().dispatched_at is not None


@pytest.mark.django_db
def test_rate_limit_waits_and_refusals_are_counted():
    _redis().delete("portal:ratelimit:test-metrics")
    before = scrape()
    rate_limit_wait(name="test-metrics", per_second=1, burst=1, max_wait=0)
    with pytest.raises(RateLimitBusy):
        rate_limit_wait(name="test-metrics", per_second=1, burst=1, max_wait=0.5)
    after = scrape()
    assert value(after, "portal_rate_limit_wait_seconds_count", limit="test-metrics") == (
        value(before, "portal_rate_limit_wait_seconds_count", limit="test-metrics") + 1
    )
    assert value(after, "portal_rate_limit_refusals_total", limit="test-metrics") == (
        value(before, "portal_rate_limit_refusals_total", limit="test-metrics") + 1
    )


@pytest.mark.django_db
def test_sign_ins_and_refusals_are_counted(client, support_user):
    login = reverse("login")
    before = scrape()
    client.post(login, {"username": support_user.username, "password": "not-the-password"})
    client.post(login, {"username": support_user.username, "password": "a-long-test-password"})
    after = scrape()
    assert value(after, "portal_sign_ins_total", outcome="refused") == (
        value(before, "portal_sign_ins_total", outcome="refused") + 1
    )
    assert value(after, "portal_sign_ins_total", outcome="succeeded") == (
        value(before, "portal_sign_ins_total", outcome="succeeded") + 1
    )


# --- Several gunicorn workers, one answer ---------------------------------------------------------------


def refused_status(url: str) -> int:
    try:
        urllib.request.urlopen(url, timeout=10)  # noqa: S310 - our own local server
    except urllib.error.HTTPError as error:
        return error.code
    return 200


@pytest.mark.django_db(transaction=True)
def test_every_gunicorn_worker_answers_with_the_counts_of_all_of_them(tmp_path):
    port = free_port()
    env = production_env(
        settings.CELERY_BROKER_URL,
        DATABASE_URL=worker_database_url(),
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="3",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    (tmp_path / "metrics").mkdir()
    log = tmp_path / "gunicorn.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn"], cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    try:
        get(f"http://127.0.0.1:{port}/healthz/ready")  # waits until it answers
        # Requests at once, so that the workers share them.
        with ThreadPoolExecutor(max_workers=6) as pool:
            statuses = list(pool.map(refused_status, [f"http://127.0.0.1:{port}/api/declarations/1"] * 30))
        assert statuses == [401] * 30
        for _ in range(6):  # whichever worker answers the scrape
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:  # noqa: S310
                body = response.read().decode()
            assert 'portal_api_requests_total{operation="declaration",status="401"} 30.0' in body, log.read_text()
    finally:
        server.terminate()
        server.wait(timeout=20)

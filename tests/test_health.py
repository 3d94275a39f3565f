"""Health: a bare liveness answer anyone may ask for (load balancers), and the detailed readiness report that only
operators see (an operator token or an operator network), with AWS asked at most once per cache period."""

import ipaddress
import os
import subprocess
import sys
import time

import pytest
import redis
from django.conf import settings
from django.core.cache import caches

from incidents import health, tasks
from tests.conftest import worker_database_url
from tests.helpers import ROOT

LIVENESS = "/healthz"
READINESS = "/healthz/ready"
OUTSIDE = "203.0.113.7"  # a public address, as anyone on the internet
OPERATOR_TOKEN = "operator-token-" + "k" * 32


def wait_for_heartbeat(timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while redis.Redis.from_url(settings.CELERY_BROKER_URL).get(health.HEARTBEAT_KEY) is None:
        assert time.monotonic() < deadline, "no worker wrote a heartbeat"
        time.sleep(0.1)


def forget_heartbeat() -> None:
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(health.HEARTBEAT_KEY)


# --- Liveness: for anyone, about nothing ----------------------------------------------------------------------


@pytest.mark.django_db
def test_liveness_answers_a_bare_ok_to_anyone_whatever_is_down(client, settings, django_assert_num_queries):
    forget_heartbeat()
    settings.CELERY_BROKER_URL = "redis://:hunter2@127.0.0.1:1/0"  # Redis unreachable
    with django_assert_num_queries(0):
        response = client.get(LIVENESS, REMOTE_ADDR=OUTSIDE)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content == b"ok\n"
    assert response["Cache-Control"].startswith("max-age=0")
    assert client.head(LIVENESS, REMOTE_ADDR=OUTSIDE).status_code == 200


@pytest.mark.django_db
def test_liveness_never_calls_aws(client, sandbox):
    for _ in range(3):
        client.get(LIVENESS, REMOTE_ADDR=OUTSIDE)
    assert sandbox.calls("ListResponsePlans") == []


# --- Readiness: operators only ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_readiness_reports_every_part_ok_to_an_operator_on_this_machine(client):
    forget_heartbeat()
    tasks.record_worker_heartbeat.delay()  # what beat does every PORTAL_HEARTBEAT_INTERVAL seconds
    wait_for_heartbeat()

    response = client.get(READINESS)  # the test client's address is 127.0.0.1: an operator network by default
    assert response.status_code == 200
    report = response.json()
    assert report["status"] == "ok"
    assert set(report["checks"]) == {"database", "redis", "worker", "aws"}
    assert all(check["ok"] for check in report["checks"].values())
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_readiness_is_503_and_names_the_part_that_is_down(client, sandbox_server, settings):
    forget_heartbeat()
    response = client.get(READINESS)
    assert response.status_code == 503
    report = response.json()
    assert report["status"] == "unavailable"
    assert report["checks"]["worker"]["ok"] is False
    assert report["checks"]["worker"]["reason"] == "no worker heartbeat recorded"
    assert report["checks"]["database"]["ok"] and report["checks"]["aws"]["ok"]

    # A broker with a password that does not answer: reported down, its address and password never shown.
    settings.CELERY_BROKER_URL = "redis://:hunter2-broker-password@127.0.0.1:1/0"
    settings.PORTAL_HEALTH_TIMEOUT = 0.5
    response = client.get(READINESS)
    body = response.content.decode()
    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["ok"] is False
    assert "hunter2" not in body and "127.0.0.1:1" not in body


@pytest.mark.django_db
def test_readiness_reports_aws_unreachable(client, sandbox):
    sandbox.inject(operation="ListResponsePlans", error_next=1)
    report = client.get(READINESS).json()
    assert report["checks"]["aws"]["ok"] is False
    assert report["checks"]["aws"]["reason"] == "InternalServerException"


@pytest.mark.django_db
def test_readiness_is_refused_to_the_public_without_a_word_about_the_parts(client, sandbox):
    forget_heartbeat()
    response = client.get(READINESS, REMOTE_ADDR=OUTSIDE)
    assert response.status_code == 403
    body = response.content.decode()
    assert "PORTAL_OPERATOR_TOKEN" in body  # how to get in
    for part in ("database", "redis", "worker", "aws", "heartbeat"):
        assert part not in body.lower()
    assert sandbox.calls("ListResponsePlans") == []  # nor does an anonymous request make the portal call AWS


@pytest.mark.django_db
def test_an_operator_token_opens_readiness_from_anywhere(client, settings):
    settings.PORTAL_OPERATOR_TOKEN = OPERATOR_TOKEN
    response = client.get(READINESS, REMOTE_ADDR=OUTSIDE, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    assert set(response.json()["checks"]) == {"database", "redis", "worker", "aws"}

    for wrong in (f"Bearer {OPERATOR_TOKEN[:-1]}", f"Basic {OPERATOR_TOKEN}", OPERATOR_TOKEN, "Bearer "):
        assert client.get(READINESS, REMOTE_ADDR=OUTSIDE, headers={"Authorization": wrong}).status_code == 403


@pytest.mark.django_db
def test_without_an_operator_token_set_no_bearer_opens_readiness(client, settings):
    settings.PORTAL_OPERATOR_TOKEN = ""
    assert client.get(READINESS, REMOTE_ADDR=OUTSIDE, headers={"Authorization": "Bearer "}).status_code == 403


@pytest.mark.django_db
def test_operator_networks_are_a_setting(client, settings):
    settings.PORTAL_OPERATOR_NETWORKS = [ipaddress.ip_network("10.20.0.0/16")]
    assert client.get(READINESS, REMOTE_ADDR="10.20.3.4").status_code in (200, 503)
    assert client.get(READINESS, REMOTE_ADDR="10.21.3.4").status_code == 403
    assert client.get(READINESS, REMOTE_ADDR="127.0.0.1").status_code == 403


@pytest.mark.django_db
def test_behind_a_proxy_the_settings_do_not_name_nobody_gets_in_by_address(client):
    """nginx on this machine, PORTAL_PROXY_HOPS left at 0: every request arrives from 127.0.0.1, so the loopback
    address must not open the report to whoever the proxy relays."""
    response = client.get(READINESS, REMOTE_ADDR="127.0.0.1", headers={"X-Forwarded-For": OUTSIDE})
    assert response.status_code == 403


@pytest.mark.django_db
def test_through_the_configured_proxy_the_client_address_decides(client, settings):
    settings.PORTAL_PROXY_HOPS = 1
    # A client on the internet that writes a loopback address into the header itself: the proxy appends the real one.
    forged = client.get(READINESS, REMOTE_ADDR="127.0.0.1", headers={"X-Forwarded-For": f"127.0.0.1, {OUTSIDE}"})
    assert forged.status_code == 403
    # A monitor on the proxy's machine, relayed by the proxy.
    local = client.get(READINESS, REMOTE_ADDR="127.0.0.1", headers={"X-Forwarded-For": "127.0.0.1"})
    assert local.status_code in (200, 503)
    assert "checks" in local.json()


@pytest.mark.django_db
def test_the_aws_answer_is_remembered_for_a_while(client, sandbox, settings):
    settings.PORTAL_HEALTH_AWS_CACHE_SECONDS = 60
    first = client.get(READINESS).json()["checks"]["aws"]
    second = client.get(READINESS).json()["checks"]["aws"]
    assert len(sandbox.calls("ListResponsePlans")) == 1
    assert first["ok"] and second["ok"]
    assert "checked_seconds_ago" in second

    # A failure is remembered too: a monitor polling a struggling AWS does not add to its load.
    caches["local"].clear()
    sandbox.inject(operation="ListResponsePlans", error_next=1)
    assert client.get(READINESS).json()["checks"]["aws"]["ok"] is False
    assert client.get(READINESS).json()["checks"]["aws"]["ok"] is False
    assert len(sandbox.calls("ListResponsePlans")) == 2


@pytest.mark.django_db
def test_with_no_cache_period_every_report_asks_aws(client, sandbox, settings):
    settings.PORTAL_HEALTH_AWS_CACHE_SECONDS = 0
    for _ in range(3):
        client.get(READINESS)
    assert len(sandbox.calls("ListResponsePlans")) == 3


def test_a_worker_reports_itself_as_soon_as_it_is_ready_not_after_beats_first_heartbeat(client, tmp_path):
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(health.HEARTBEAT_KEY)
    assert client.get(READINESS).status_code == 503
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings.test", "DATABASE_URL": worker_database_url()}
    log = tmp_path / "worker.log"
    # No beat, and a queue of its own (it takes none of the other tests' tasks): only being ready can write it.
    command = [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", "heartbeat-test", "--pool", "solo"]
    worker = subprocess.Popen(
        [*command, "--without-gossip", "--without-mingle"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_heartbeat(timeout=60)
    finally:
        worker.terminate()
        worker.wait(timeout=20)

    report = client.get(READINESS).json()
    assert report["checks"]["worker"]["ok"] is True, (report, log.read_text())


def test_the_heartbeat_lives_in_a_file_where_there_is_no_redis(settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.PORTAL_HEARTBEAT_FILE = str(tmp_path / "heartbeat")
    assert health.CHECKS["worker"]()["reason"] == "no worker heartbeat recorded"
    assert health.CHECKS["redis"]() == {"ok": True, "in_use": False}

    tasks.record_worker_heartbeat()  # as the worker runs it: the filesystem:// URL is never read as Redis's

    assert health.CHECKS["worker"]()["ok"] is True

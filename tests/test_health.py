"""/healthz: what a load balancer or an on-call engineer sees about the portal's moving parts."""

import os
import subprocess
import sys
import time

import pytest
import redis
from django.conf import settings

from incidents import health, tasks
from tests.conftest import worker_database_url
from tests.helpers import ROOT

HEALTHZ = "/healthz"


def wait_for_heartbeat(timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while redis.Redis.from_url(settings.CELERY_BROKER_URL).get(health.HEARTBEAT_KEY) is None:
        assert time.monotonic() < deadline, "no worker wrote a heartbeat"
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_healthz_reports_every_part_ok_without_login(client):
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(health.HEARTBEAT_KEY)
    tasks.record_worker_heartbeat.delay()  # what beat does every PORTAL_HEARTBEAT_INTERVAL seconds
    wait_for_heartbeat()

    response = client.get(HEALTHZ)
    assert response.status_code == 200
    report = response.json()
    assert report["status"] == "ok"
    assert set(report["checks"]) == {"database", "redis", "worker", "aws"}
    assert all(check["ok"] for check in report["checks"].values())
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_healthz_is_503_and_names_the_part_that_is_down(client, sandbox_server, settings):
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(health.HEARTBEAT_KEY)
    response = client.get(HEALTHZ)
    assert response.status_code == 503
    report = response.json()
    assert report["status"] == "unavailable"
    assert report["checks"]["worker"]["ok"] is False
    assert report["checks"]["worker"]["reason"] == "no worker heartbeat recorded"
    assert report["checks"]["database"]["ok"] and report["checks"]["aws"]["ok"]

    # A broker with a password that does not answer: reported down, its address and password never shown.
    settings.CELERY_BROKER_URL = "redis://:hunter2-broker-password@127.0.0.1:1/0"
    settings.PORTAL_HEALTH_TIMEOUT = 0.5
    response = client.get(HEALTHZ)
    body = response.content.decode()
    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["ok"] is False
    assert "hunter2" not in body and "127.0.0.1:1" not in body


@pytest.mark.django_db
def test_healthz_reports_aws_unreachable(client, sandbox):
    sandbox.inject(operation="ListResponsePlans", error_next=1)
    report = client.get(HEALTHZ).json()
    assert report["checks"]["aws"]["ok"] is False
    assert report["checks"]["aws"]["reason"] == "InternalServerException"


@pytest.mark.django_db
def test_a_worker_reports_itself_as_soon_as_it_is_ready_not_after_beats_first_heartbeat(client, tmp_path):
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(health.HEARTBEAT_KEY)
    assert client.get(HEALTHZ).status_code == 503
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

    report = client.get(HEALTHZ).json()
    assert report["checks"]["worker"]["ok"] is True, (report, log.read_text())


def test_the_heartbeat_lives_in_a_file_where_there_is_no_redis(settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.PORTAL_HEARTBEAT_FILE = str(tmp_path / "heartbeat")
    assert health.CHECKS["worker"]()["reason"] == "no worker heartbeat recorded"
    assert health.CHECKS["redis"]() == {"ok": True, "in_use": False}

    tasks.record_worker_heartbeat()  # as the worker runs it: the filesystem:// URL is never read as Redis's

    assert health.CHECKS["worker"]()["ok"] is True

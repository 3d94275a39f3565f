"""A new process sets itself up before its first declaration, not during it (portal/warmup.py)."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis
from celery.signals import worker_process_init
from django.conf import settings

from incidents import aws
from tests.conftest import ROOT
from tests.helpers import free_port

# A Redis database of its own: the session's worker consumes from the tests' database.
BROKER_DB = 11


def broker_url(port: int = 6379) -> str:
    host = redis.Redis.from_url(settings.CELERY_BROKER_URL).connection_pool.connection_kwargs["host"]
    return f"redis://{host}:{port}/{BROKER_DB}"


@pytest.fixture
def gunicorn(tmp_path):
    """Start gunicorn as production runs it (gunicorn.conf.py, production settings), one worker."""
    started = []

    def start(broker: str) -> tuple[str, Path]:
        port = free_port()
        log_path = tmp_path / "gunicorn.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings.production",
            "SECRET_KEY": "warm-up-test-" + "x" * 50,
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "0",
            "CELERY_BROKER_URL": broker,
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": "1",
            "LOG_LEVEL": "WARNING",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn"], cwd=ROOT, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT
        )
        started.append(process)
        return f"http://127.0.0.1:{port}", log_path

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=20)


def get(url: str, timeout: float = 60) -> tuple[int, dict]:
    """The status and JSON body of the first answer, waiting for the server to come up."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own local server
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_a_web_worker_is_connected_to_the_broker_before_its_first_request(gunicorn):
    broker = redis.Redis.from_url(broker_url())
    broker.flushdb()
    _, log = gunicorn(broker_url())
    # No request has been made: the worker declared the declarations queue on its own, at start.
    deadline = time.monotonic() + 60
    while not broker.exists("_kombu.binding.declarations"):
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    assert "not reachable" not in log.read_text()
    broker.flushdb()


def test_a_web_worker_starts_and_serves_while_the_broker_is_down(gunicorn):
    url, log = gunicorn(broker_url(port=free_port()))  # nothing listens there
    # The health endpoint answers (and tells a load balancer that Redis is down) instead of the worker dying.
    status, report = get(url + "/healthz")
    assert status == 503
    assert report["checks"]["redis"]["ok"] is False
    assert "Celery's broker was not reachable at start" in log.read_text()


def test_a_celery_worker_process_builds_its_aws_clients_when_it_starts():
    aws.reset_clients()
    worker_process_init.send(sender=None)
    assert set(aws._clients) == {"ssm-incidents", "s3"}


def test_a_broken_aws_configuration_does_not_stop_a_worker_process_from_starting(settings, caplog):
    settings.AWS_REGION = "not a region"
    aws.reset_clients()
    worker_process_init.send(sender=None)
    assert "AWS clients could not be built at start" in caplog.text
    aws.reset_clients()

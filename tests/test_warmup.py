"""A new process sets itself up before its first declaration, not during it (incidents/warmup.py)."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection

from incidents import warmup
from incidents.aws import client as aws_client
from incidents.aws.client import reset_clients
from incidents.aws.ratelimit import _RESERVE, _redis, reset_connections
from tests.conftest import ROOT, worker_database_url
from tests.helpers import free_port, manage_py

# A Redis database of its own: the session's worker consumes from the tests' database.
BROKER_DB = 11


def broker_url(port: int = 6379) -> str:
    host = redis.Redis.from_url(settings.CELERY_BROKER_URL).connection_pool.connection_kwargs["host"]
    return f"redis://{host}:{port}/{BROKER_DB}"


def production_env(broker: str, **extra: str) -> dict[str, str]:
    """The environment of a process started as production starts it (production settings), on this broker."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.production",
        "SECRET_KEY": "warm-up-test-" + "x" * 50,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "CELERY_BROKER_URL": broker,
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def start_process(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT)


@pytest.fixture(autouse=True)
def _test_process_heap_left_unfrozen(monkeypatch):
    """The warm-ups run here in the test process, whose heap is not a new process's: freezing it would only keep the
    tests' garbage. The test of the freeze runs the warm-up in a process of its own."""
    monkeypatch.setattr(warmup, "freeze_heap", lambda: None)


@pytest.fixture
def processes():
    """Processes a test starts, stopped (as a deploy stops them) when it ends."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def gunicorn(tmp_path, processes):
    """Start gunicorn as production runs it (gunicorn.conf.py, production settings), one worker."""

    def start(broker: str, **extra_env: str) -> tuple[str, Path]:
        port = free_port()
        log_path = tmp_path / "gunicorn.log"
        env = production_env(broker, GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="1", **extra_env)
        processes.append(start_process([sys.executable, "-m", "gunicorn"], env, log_path))
        return f"http://127.0.0.1:{port}", log_path

    return start


def database_with_name() -> tuple[str, str]:
    """The test database's URL, with a connection name of its own to find the process's connections by."""
    name = f"warm-up-{uuid.uuid4().hex[:12]}"
    return worker_database_url() + f"&application_name={name}", name


def connections_named(name: str) -> int:
    db = settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname="postgres") as conn:
        query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        return conn.execute(query, [name]).fetchone()[0]


def wait_for_connections(name: str, count: int, log: Path) -> None:
    """Until `count` connections by that name are open, and still are a second later (nothing closed them)."""
    deadline = time.monotonic() + 60
    while connections_named(name) != count:
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    time.sleep(1)
    assert connections_named(name) == count, log.read_text()


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
    # The readiness report answers (and tells an operator on this machine that Redis is down) instead of the worker
    # dying.
    status, report = get(url + "/healthz/ready")
    assert status == 503
    assert report["checks"]["redis"]["ok"] is False
    assert "Celery's broker was not reachable at start" in log.read_text()


def test_a_web_worker_opens_its_database_connection_before_its_first_request(gunicorn, django_db_setup):
    database_url, name = database_with_name()
    _, log = gunicorn(broker_url(), DATABASE_URL=database_url)
    # No request has been made: the worker's connection is open, and kept.
    wait_for_connections(name, 1, log)


def test_with_a_connection_per_request_a_web_worker_keeps_none_open_after_its_warm_up(gunicorn, django_db_setup):
    """DATABASE_CONN_MAX_AGE=0 (behind PgBouncer): the warm-up's statements need a connection, which it closes."""
    broker = redis.Redis.from_url(broker_url())
    broker.flushdb()
    database_url, name = database_with_name()
    _, log = gunicorn(broker_url(), DATABASE_URL=database_url, DATABASE_CONN_MAX_AGE="0")
    # The queue is declared after the statements: once it is, the warm-up is past them.
    deadline = time.monotonic() + 60
    while not broker.exists("_kombu.binding.declarations"):
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    assert connections_named(name) == 0, log.read_text()
    broker.flushdb()


def test_each_celery_worker_child_holds_its_database_connection_before_its_first_task(
    processes, tmp_path, django_db_setup
):
    """Celery's Django fixup closes whatever connection a forked child inherited; the warm-up runs after it."""
    database_url, name = database_with_name()
    log = tmp_path / "worker.log"
    env = production_env(broker_url(), DATABASE_URL=database_url, LOG_LEVEL="INFO")
    command = [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", "prefork", "--concurrency", "2"]
    processes.append(start_process([*command, "-Q", "default", "--without-gossip", "--without-mingle"], env, log))
    wait_for_connections(name, 2, log)


def test_a_celery_worker_process_builds_its_aws_clients_and_rate_limiter_when_it_starts():
    reset_clients()
    reset_connections()
    limiter = redis.Redis.from_url(settings.PORTAL_RATE_LIMIT_REDIS_URL)
    limiter.script_flush()
    warmup.worker_process()
    assert set(aws_client._clients) == {"ssm-incidents", "ssm-incidents:reader", "s3"}
    assert _redis.cache_info().currsize == 1
    assert limiter.script_exists(limiter.register_script(_RESERVE).sha) == [True]


def test_an_unreachable_rate_limiter_does_not_stop_a_worker_process_from_starting(settings, caplog):
    settings.PORTAL_RATE_LIMIT_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    reset_connections()
    try:
        warmup.worker_process()
    finally:
        reset_connections()
    assert "The StartIncident rate limiter's Redis was not reachable at start" in caplog.text


def test_a_broken_aws_configuration_does_not_stop_a_worker_process_from_starting(settings, caplog):
    settings.AWS_REGION = "not a region"
    reset_clients()
    warmup.worker_process()
    assert "AWS clients could not be built at start" in caplog.text
    reset_clients()


def test_an_unreachable_database_does_not_stop_a_process_from_starting(django_db_blocker, monkeypatch, caplog):
    monkeypatch.setitem(connection.settings_dict, "PORT", free_port())  # nothing listens there
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", None)
    connection.close()
    with django_db_blocker.unblock():
        warmup.worker_process()
    connection.close()
    assert "The database was not reachable at start" in caplog.text
    assert "refused" in caplog.text  # PostgreSQL's own answer, not pytest-django's block on database access


def test_a_warmed_process_keeps_its_start_up_objects_out_of_the_garbage_collectors_walks(django_db_setup):
    """A full collection walks every object the collector tracks: after the warm-up that is what the process made
    since, not the ~150,000 objects of its start-up (each walk of those paused the process for 0.1–0.25 s)."""
    script = (
        "import gc; from incidents import warmup; warmup.web_process(); "
        "print(gc.get_freeze_count(), len(gc.get_objects()))"
    )
    result = manage_py(
        "shell",
        "-c",
        script,
        settings="portal.settings.production",
        SECRET_KEY="warm-up-test-" + "x" * 50,
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=worker_database_url(),
        CELERY_BROKER_URL=broker_url(),
        LOG_LEVEL="WARNING",
    )
    assert result.returncode == 0, result.stderr
    frozen, walked = map(int, result.stdout.split()[-2:])
    assert frozen > 50_000
    assert walked < frozen / 20

"""`make run` as a newcomer meets it: no Redis on the machine, SQLite, the sandbox, commands run by hand beside it,
and a worker or sandbox that crashes. Everything here runs `manage.py` in processes of their own, with
portal.settings.local and none of the test run's own settings (its Redis, PostgreSQL or AWS variables)."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import ROOT, free_port

# Variables of the test run that a developer's shell would not have.
NOT_A_DEVELOPERS = ("AWS_", "CELERY_", "CACHE_", "REDIS_", "DATABASE_", "PORTAL_", "PROMETHEUS_", "SECRET_KEY")
PASSWORD = "local-demo-password-1"


class LocalPortal:
    """`manage.py run_local` (what `make run` runs after migrating), on its own SQLite database and ports."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.port, self.sandbox_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        (tmp / "metrics").mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(NOT_A_DEVELOPERS)}
        self.env.update(
            DJANGO_SETTINGS_MODULE="portal.settings.local",
            DATABASE_URL=f"sqlite:///{tmp / 'portal.sqlite3'}",
            REDIS_URL="redis://127.0.0.1:1/0",  # nothing listens there: a laptop without Redis
            SANDBOX_PORT=str(self.sandbox_port),
            PORTAL_EMBEDDED_BROKER_DIR=str(tmp / "broker"),
            PORTAL_HEARTBEAT_FILE=str(tmp / "worker-heartbeat"),
            PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"),
            PORTAL_DEMO_PASSWORD=PASSWORD,
            PORTAL_API_RATE_LIMIT="6000/m",  # the tests follow their declarations closely
            PYTHONUNBUFFERED="1",
        )
        self.log_path = tmp / "run_local.log"
        self.process: subprocess.Popen | None = None

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self) -> None:
        migrated = self.manage("migrate", "--noinput")
        assert migrated.returncode == 0, migrated.stderr
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "run_local", "--addr", f"127.0.0.1:{self.port}"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log_path.open("w"),
            stderr=subprocess.STDOUT,
        )
        self.wait_for_log("Portal at", timeout=120)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # Ctrl-C
            self.process.wait(timeout=30)

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for_log(self, text: str, *, count: int = 1, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.log.count(text) < count:
            assert self.process is not None and self.process.poll() is None, self.log
            assert time.monotonic() < deadline, f"{text!r} never appeared:\n{self.log}"
            time.sleep(0.2)

    def pid_of(self, child: str) -> int:
        return int(re.findall(rf"Started the {child} \(pid (\d+)\)", self.log)[-1])

    def request(self, method: str, path: str, body: dict | None = None, token: str = "") -> tuple[int, dict | str]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own local server
                status, raw = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read().decode()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw

    def declare(self, token: str, title: str) -> dict:
        """Declare through the API as a script would, and follow it until it is started or failed."""
        plan = "arn:aws:ssm-incidents::123456789012:response-plan/website-outage"
        status, answer = self.request("POST", "/api/startIncident", {"responsePlanArn": plan, "title": title}, token)
        assert status == 202, answer
        assert isinstance(answer, dict)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            _, followed = self.request("GET", f"/api/declarations/{answer['data']['id']}", token=token)
            assert isinstance(followed, dict)
            if followed["data"]["state"] in ("started", "failed"):
                return followed["data"]
            time.sleep(0.2)
        raise AssertionError(f"the declaration stayed {followed['data']['state']}:\n{self.log}")

    def sandbox_incident_titles(self) -> list[str]:
        with urllib.request.urlopen(f"{self.sandbox_url}/_sandbox/calls?operation=StartIncident") as response:  # noqa: S310
            return [call["params"].get("title", "") for call in json.load(response)["calls"]]


@pytest.fixture(scope="module")
def local_portal(tmp_path_factory):
    portal = LocalPortal(tmp_path_factory.mktemp("local-mode"))
    try:
        portal.start()
        yield portal
    finally:
        portal.stop()


@pytest.fixture(scope="module")
def token(local_portal) -> str:
    created = local_portal.manage("create_api_token", "support", "--name", "local-mode test")
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


def test_make_run_without_redis_says_so_and_declarations_reach_the_sandbox(local_portal, token):
    assert "No Redis answered" in local_portal.log

    declared = local_portal.declare(token, "Checkout down, no Redis here")

    assert declared["state"] == "started", declared
    assert declared["incident_record_arn"].startswith("arn:aws:ssm-incidents:")
    assert "Checkout down, no Redis here" in local_portal.sandbox_incident_titles()


def test_healthz_is_ok_without_redis_once_the_worker_is_ready(local_portal):
    local_portal.wait_for_log("ready.")
    deadline = time.monotonic() + 30
    while (answer := local_portal.request("GET", "/healthz/ready"))[0] != 200:
        assert time.monotonic() < deadline, answer
        time.sleep(0.5)
    report = answer[1]
    assert isinstance(report, dict)
    assert report["checks"]["worker"]["ok"] is True
    assert (report["checks"]["redis"]["ok"], report["checks"]["redis"]["in_use"]) == (True, False)


def test_metrics_of_make_run_show_its_declarations(local_portal, token):
    local_portal.declare(token, "Counted in the metrics")
    status, body = local_portal.request("GET", "/metrics")
    assert status == 200
    assert isinstance(body, str)
    assert re.search(
        r'portal_aws_calls_total\{operation="StartIncident",outcome="success",service="ssm-incidents"\} [1-9]', body
    ), body
    assert re.search(r'portal_declarations_finished_total\{source="api",state="started"\} [1-9]', body), body


def test_commands_run_by_hand_beside_make_run_find_the_sandbox_and_the_broker(local_portal):
    synced = local_portal.manage("sync_response_plans")
    assert synced.returncode == 0, synced.stderr
    assert "5 unchanged" in synced.stdout

    swept = local_portal.manage("sweep_declarations")
    assert swept.returncode == 0, swept.stderr
    assert "Re-dispatched 0 queued" in swept.stdout

    verified = local_portal.manage("verify_audit")
    assert verified.returncode == 0, verified.stderr
    assert "Audit trail intact" in verified.stdout


def test_make_run_restarts_a_crashed_worker_or_sandbox_and_says_so(local_portal, token):
    worker = local_portal.pid_of("worker")
    os.kill(worker, signal.SIGKILL)
    local_portal.wait_for_log("The worker stopped (exit code -9); restarting it.")
    local_portal.wait_for_log("Started the worker", count=2)
    assert local_portal.pid_of("worker") != worker

    sandbox = local_portal.pid_of("sandbox")
    os.kill(sandbox, signal.SIGKILL)
    local_portal.wait_for_log("The sandbox stopped (exit code -9); restarting it.")
    local_portal.wait_for_log("Started the sandbox", count=2)

    # The portal works on: a declaration made now reaches the new sandbox through the new worker.
    declared = local_portal.declare(token, "After the restarts")
    assert declared["state"] == "started", declared
    assert local_portal.sandbox_incident_titles() == ["After the restarts"]

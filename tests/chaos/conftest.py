"""The fault-injection harness: a private Redis we may kill, real prefork workers we may SIGKILL, one beat.

Nothing here touches the machine's shared Redis: the portal (this process), the workers and beat all use a
`redis-server` started on a free port for this module, stopped afterwards.
"""

import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import kombu.pools
import pytest
import redis
from django.conf import settings

from incidents.aws.ratelimit import reset_connections
from incidents.models import Declaration
from portal.celery import app
from tests.conftest import ROOT, worker_database_url
from tests.helpers import free_port

FULL = os.environ.get("CHAOS_SCALE", "small").lower() == "full"
REPORT: list[str] = []
REPORT_PATH = ROOT / "test-artifacts" / "chaos-report.txt"


def scale(full: int, small: int) -> int:
    """A scenario's count: the issue's figure under `make chaos` (CHAOS_SCALE=full), a small one in `make test`."""
    return full if FULL else small


def pytest_terminal_summary(terminalreporter):
    if REPORT:
        terminalreporter.section(f"chaos figures ({'full' if FULL else 'small'} scale)")
        for line in REPORT:
            terminalreporter.write_line(line)


class PrivateRedis:
    """A redis-server of our own, without persistence, so that a restart loses every queued message."""

    def __init__(self, directory: Path):
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "the private redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()  # like a crash: nothing is saved
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def queued(self) -> int:
        return redis.Redis(port=self.port).llen("declarations")


def _spawn(command: list[str], *, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """A Celery process of its own session (so that a whole-group kill reaches its pool), appending to its log."""
    with log_path.open("a") as log:
        return subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


class Worker:
    """One `celery worker` (prefork pool) in its own process group, so that a host crash can be simulated."""

    def __init__(self, name: str, env: dict, concurrency: int, log_dir: Path):
        self.name, self.env, self.concurrency = name, env, concurrency
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.process = _spawn(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "-Q",
                "declarations,default",
                "-n",
                f"{self.name}@%h",
                "--pool",
                "prefork",
                "--concurrency",
                str(self.concurrency),
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            env=self.env,
            log_path=self.log_path,
        )

    def wait_ready(self, timeout: float = 40) -> None:
        deadline = time.monotonic() + timeout

        def ready() -> bool:
            with self.log_path.open() as log:
                log.seek(self._log_offset)
                return "ready." in log.read()

        while len(_children(self.process.pid)) < self.concurrency or not ready():
            assert self.process.poll() is None, f"worker {self.name} died:\n{self.log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"worker {self.name} not ready:\n{self.log_path.read_text()[-3000:]}"
            time.sleep(0.1)

    def pool_children(self) -> list[int]:
        return _children(self.process.pid) if self.process else []

    def kill_child(self) -> bool:
        """SIGKILL the pool process running a task: the main process sees a lost worker and re-queues it."""
        children = self.pool_children()
        if not children:
            return False
        os.kill(children[0], signal.SIGKILL)
        return True

    def crash(self) -> None:
        """SIGKILL the whole worker at once (main and pool), like an OOM kill or a lost host."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None


class Harness:
    def __init__(self, redis_server: PrivateRedis, env: dict, log_dir: Path):
        self.redis = redis_server
        self.env = env
        self.log_dir = log_dir
        self.workers = [Worker(f"chaos{n}", env, concurrency=2, log_dir=log_dir) for n in range(2)]
        self.beat: subprocess.Popen | None = None

    def start_workers(self, count: int = 2, concurrency: int = 2) -> None:
        for worker in self.workers[:count]:
            if worker.process is not None and worker.concurrency != concurrency:
                worker.stop()
            if worker.process is None:
                worker.concurrency = concurrency
                worker.start()
        for worker in self.workers[:count]:
            worker.wait_ready()

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()

    def start_beat(self) -> None:
        schedule = self.log_dir / "beat-schedule"
        self.beat = _spawn(
            [sys.executable, "-m", "celery", "-A", "portal", "beat", "-s", str(schedule), "--loglevel", "INFO"],
            env=self.env,
            log_path=self.log_dir / "beat.log",
        )

    def stop(self) -> None:
        self.stop_workers()
        if self.beat and self.beat.poll() is None:
            os.killpg(self.beat.pid, signal.SIGTERM)
            self.beat.wait(20)


# Short thresholds so that the sweeper rescues work within seconds, still far below the visibility timeout.
CHAOS_SETTINGS = {
    "PORTAL_SWEEP_INTERVAL": "1",
    "PORTAL_SWEEP_QUEUED_AFTER": "3",
    "PORTAL_SWEEP_STARTING_AFTER": "8",
    "PORTAL_VISIBILITY_TIMEOUT": "120",
    "PORTAL_START_MAX_RETRIES": "8",
    "PORTAL_START_RETRY_BACKOFF_MAX": "1",
    "PORTAL_ATTACH_MAX_RETRIES": "30",
    "PORTAL_START_RATE_LIMIT_PER_SECOND": str(scale(25, 20)),
    "PORTAL_START_RATE_LIMIT_BURST": "5",
    "PORTAL_START_RATE_LIMIT_MAX_WAIT": "30",
    "AWS_MAX_ATTEMPTS": "3",
}


@pytest.fixture
def rig(harness):
    """The harness with both workers running, whatever the previous scenario left behind."""
    harness.start_workers()
    return harness


@pytest.fixture(scope="module")
def harness(django_db_setup, django_db_blocker, sandbox_server):
    directory = Path(tempfile.mkdtemp(prefix="portal-chaos-"))
    log_dir = ROOT / "test-artifacts" / "chaos"
    log_dir.mkdir(parents=True, exist_ok=True)
    for old in log_dir.glob("*"):
        old.unlink()
    server = PrivateRedis(directory)
    server.start()
    env = {
        **os.environ,
        **CHAOS_SETTINGS,
        "DJANGO_SETTINGS_MODULE": "portal.settings.test",
        "DATABASE_URL": worker_database_url(),
        "CELERY_BROKER_URL": server.url,
        "PORTAL_RATE_LIMIT_REDIS_URL": server.url,
        "PYTHONUNBUFFERED": "1",
        "LOG_FORMAT": "plain",
    }
    # This process is the web side: it publishes to the private broker too.
    previous_broker = app.conf.broker_url
    _use_broker(server.url)
    previous_queued_after = settings.PORTAL_SWEEP_QUEUED_AFTER
    settings.PORTAL_SWEEP_QUEUED_AFTER = float(CHAOS_SETTINGS["PORTAL_SWEEP_QUEUED_AFTER"])
    rig = Harness(server, env, log_dir)
    try:
        rig.start_beat()
        rig.start_workers()
        yield rig
    finally:
        rig.stop()
        server.stop()
        _use_broker(previous_broker)
        settings.PORTAL_SWEEP_QUEUED_AFTER = previous_queued_after
        shutil.rmtree(directory, ignore_errors=True)
        REPORT_PATH.parent.mkdir(exist_ok=True)
        REPORT_PATH.write_text("\n".join(REPORT) + "\n")


def _use_broker(url: str) -> None:
    # Close every pooled connection and forget the pools: kombu keeps them in process-wide registries keyed by
    # broker, so a pool merely closed would be handed back, closed, when the previous broker is restored.
    kombu.pools.reset()
    # Celery prefers the CELERY_BROKER_URL environment variable to its configuration.
    os.environ["CELERY_BROKER_URL"] = url
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None
    reset_connections()


# --- Counting outcomes -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    scenario: str
    accepted: int
    created: int
    lost: int
    duplicated: int
    failed: int
    note: str = ""

    def line(self) -> str:
        return (
            f"{self.scenario:<34} accepted={self.accepted:<4} created={self.created:<4} "
            f"lost={self.lost} duplicated={self.duplicated} failed={self.failed}"
            + (f"  ({self.note})" if self.note else "")
        )


def wait_until_final(ids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Declaration.objects.filter(pk__in=ids).exclude(state__in=Declaration.FINAL_STATES).exists():
            return
        time.sleep(0.2)


def incident_titles(ssm_incidents) -> collections.Counter:
    """Every incident in the sandbox, counted by title, through ListIncidentRecords as an operator would."""
    titles: collections.Counter = collections.Counter()
    paginator = ssm_incidents.get_paginator("list_incident_records")
    for page in paginator.paginate(PaginationConfig={"PageSize": 100}):
        titles.update(summary["title"] for summary in page["incidentRecordSummaries"])
    return titles


def tally(scenario: str, ids: list[int], ssm_incidents, *, timeout: float, note: str = "") -> Outcome:
    """Each accepted declaration carries a unique title: 0 incidents with it is lost, 2 or more duplicated."""
    wait_until_final(ids, timeout)
    titles = incident_titles(ssm_incidents)
    declarations = list(Declaration.objects.filter(pk__in=ids))
    assert len(declarations) == len(ids), "an accepted declaration vanished from the database"
    counts = [titles[d.title] for d in declarations]
    failed = [d for d in declarations if d.state == Declaration.State.FAILED]
    outcome = Outcome(
        scenario=scenario,
        accepted=len(ids),
        created=sum(counts),
        lost=sum(
            1 for d, n in zip(declarations, counts, strict=True) if n == 0 and not (d.is_final and d.failure_reason)
        ),
        duplicated=sum(n - 1 for n in counts if n > 1),
        failed=len(failed),
        note=note,
    )
    REPORT.append(outcome.line())
    print(outcome.line())
    stuck = [(d.pk, d.state, d.attempts) for d in declarations if not d.is_final]
    assert outcome.lost == 0 and outcome.duplicated == 0, (outcome.line(), stuck)
    assert outcome.failed == 0, [(d.pk, d.failure_reason) for d in failed]
    assert not stuck, stuck
    started = {d.title: d.incident_record_arn for d in declarations}
    assert all(started.values()), "every declaration records its incident"
    return outcome


def annotate(outcome: Outcome, note: str) -> None:
    """Add what a scenario measured after counting (rate, files) to its printed line."""
    line = outcome.line()
    outcome.note = note
    REPORT[REPORT.index(line)] = outcome.line()
    print(outcome.line())

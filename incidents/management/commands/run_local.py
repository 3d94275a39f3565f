"""`make run`: the whole portal on one machine — sandbox, worker (with beat) and web server, each restarted when it
stops unexpectedly."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from incidents.aws import client as aws

# A child that stops this often within a minute is broken, not unlucky: stop everything and say so.
MAX_RESTARTS_PER_MINUTE = 5


@dataclass
class Child:
    """One process `make run` keeps running, started in a process group of its own so that a restart also ends
    whatever it had started (a Celery worker's pool)."""

    name: str
    command: list[str]
    ready_url: str = ""
    process: subprocess.Popen | None = None
    stops: list[float] = field(default_factory=list)


class Command(BaseCommand):
    help = (
        "Start the sandbox, a Celery worker and the web server for local use, restarting any that stops; "
        "Ctrl-C stops them all."
    )

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--sandbox-port", type=int, default=int(os.environ.get("SANDBOX_PORT", 4566)))

    def handle(self, *args, addr, sandbox_port, **options):
        if not getattr(settings, "PORTAL_LOCAL_MODE", False):
            raise CommandError("run_local is for local mode only; production runs gunicorn and celery (README).")
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        env = os.environ.copy()
        env.update(
            SANDBOX_PORT=str(sandbox_port),
            AWS_ENDPOINT_URL_SSM_INCIDENTS=sandbox_url,
            AWS_ENDPOINT_URL_S3=sandbox_url,
            AWS_ACCESS_KEY_ID=env.get("AWS_ACCESS_KEY_ID", "sandbox"),
            AWS_SECRET_ACCESS_KEY=env.get("AWS_SECRET_ACCESS_KEY", "sandbox"),
            AWS_REGION=env.get("AWS_REGION", "us-east-1"),
            AWS_DEFAULT_REGION=env.get("AWS_REGION", "us-east-1"),
            PYTHONUNBUFFERED="1",
        )
        # Decided by the local settings (is anything listening at REDIS_URL?), and handed to every child so that a
        # Redis that comes up later does not split them between two brokers.
        env["PORTAL_EMBEDDED_BROKER"] = "1" if settings.PORTAL_EMBEDDED_BROKER else "0"
        if settings.PORTAL_EMBEDDED_BROKER:
            self.stdout.write(
                self.style.WARNING(
                    f"No Redis answered at {settings.REDIS_URL}: using the embedded file broker in var/broker, with the"
                    " StartIncident rate limit in the database and the worker heartbeat in a file. Start Redis for"
                    " the real setup."
                )
            )
        if not env.get("PROMETHEUS_MULTIPROC_DIR"):
            # Every process counts its metrics into this directory and /metrics adds them up; fresh for each run.
            metrics_dir = settings.BASE_DIR / "var" / "metrics"
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        os.environ.update(env)
        settings.AWS_REGION = env["AWS_REGION"]
        aws.reset_clients()

        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        sandbox = Child(
            "sandbox",
            [*manage, "sandbox", "--port", str(sandbox_port), "--seed-demo", "--bucket", settings.PORTAL_S3_BUCKET],
            ready_url=f"{sandbox_url}/_sandbox/health",
        )
        worker = Child(
            "worker",
            [
                *[sys.executable, "-m", "celery", "-A", "portal", "worker", "--beat"],
                *["-Q", "declarations,default", "--concurrency", "2", "--loglevel", "INFO"],
                *["--schedule", str(settings.BASE_DIR / "var" / "celerybeat-schedule")],
            ],
        )
        web = Child("web server", [*manage, "runserver", addr, "--noreload"])
        children = [sandbox, worker, web]

        # Stop the children on SIGTERM too, as on Ctrl-C.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            self._start(sandbox, env)
            call_command("sync_response_plans", stdout=self.stdout)
            call_command("setup_demo", password=os.environ.get("PORTAL_DEMO_PASSWORD"), stdout=self.stdout)
            self._start(worker, env)
            self._start(web, env)
            self.stdout.write(
                self.style.SUCCESS(f"Portal at http://{addr}/ — sandbox at {sandbox_url} — Ctrl-C stops everything.")
            )
            while True:
                for child in children:
                    assert child.process is not None
                    code = child.process.poll()
                    if code is not None:
                        self._restart(child, code, env)
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.stdout.write("Stopping…")
        finally:
            for child in children:
                if child.process is not None and child.process.poll() is None:
                    child.process.terminate()  # a worker then stops its own pool
            for child in children:
                if child.process is None:
                    continue
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.process.wait(timeout=10)
                self._signal(child, signal.SIGKILL)  # whatever is left of it
                child.process.wait()

    def _start(self, child: Child, env: dict[str, str]) -> None:
        child.process = subprocess.Popen(child.command, env=env, start_new_session=True)
        if child.ready_url:
            self._wait_for(child)
        self.stdout.write(f"Started the {child.name} (pid {child.process.pid}).")

    def _restart(self, child: Child, code: int, env: dict[str, str]) -> None:
        """A child stopped by itself: a crash, the OOM killer, a `kill`. A portal without its worker or sandbox
        would keep every new declaration queued, so start it again, and say so."""
        now = time.monotonic()
        child.stops = [stopped for stopped in child.stops if now - stopped < 60] + [now]
        if len(child.stops) > MAX_RESTARTS_PER_MINUTE:
            raise CommandError(
                f"The {child.name} stopped {len(child.stops)} times within a minute (last exit code {code}); "
                "stopping everything. Its output above says why."
            )
        self.stderr.write(self.style.WARNING(f"The {child.name} stopped (exit code {code}); restarting it."))
        self._signal(child, signal.SIGKILL)  # what it left behind in its group (a worker's pool processes)
        self._start(child, env)

    def _signal(self, child: Child, signum: int) -> None:
        if child.process is None:
            return
        with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
            os.killpg(child.process.pid, signum)

    def _wait_for(self, child: Child, timeout: float = 30) -> None:
        assert child.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise CommandError(
                    f"The {child.name} exited (code {child.process.returncode}); is {child.ready_url} in use?"
                )
            try:
                with urllib.request.urlopen(child.ready_url, timeout=1):  # noqa: S310 - our own local sandbox
                    return
            except OSError:
                time.sleep(0.2)
        raise CommandError(f"The {child.name} did not answer at {child.ready_url} within {timeout:.0f} s.")

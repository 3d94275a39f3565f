"""`make run`: the whole portal on one machine — sandbox, worker (with beat) and web server."""

import os
import signal
import subprocess
import sys
import time
import urllib.request

import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from incidents.aws import client as aws


class Command(BaseCommand):
    help = "Start the sandbox, a Celery worker and the web server for local use; Ctrl-C stops them all."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--sandbox-port", type=int, default=int(os.environ.get("SANDBOX_PORT", 4566)))

    def handle(self, *args, addr, sandbox_port, **options):
        if not getattr(settings, "PORTAL_LOCAL_MODE", False):
            raise CommandError("run_local is for local mode only; production runs gunicorn and celery (README).")
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        env = os.environ.copy()
        env.update(
            AWS_ENDPOINT_URL_SSM_INCIDENTS=sandbox_url,
            AWS_ENDPOINT_URL_S3=sandbox_url,
            AWS_ACCESS_KEY_ID=env.get("AWS_ACCESS_KEY_ID", "sandbox"),
            AWS_SECRET_ACCESS_KEY=env.get("AWS_SECRET_ACCESS_KEY", "sandbox"),
            AWS_REGION=env.get("AWS_REGION", "us-east-1"),
            AWS_DEFAULT_REGION=env.get("AWS_REGION", "us-east-1"),
            PYTHONUNBUFFERED="1",
        )
        if not self._redis_answers():
            env["PORTAL_EMBEDDED_BROKER"] = "1"
            self.stdout.write(
                self.style.WARNING(
                    f"No Redis answered at {settings.CELERY_BROKER_URL}: using the embedded file broker in var/broker."
                    " Start Redis for the real setup."
                )
            )
        os.environ.update(env)
        settings.AWS_REGION = env["AWS_REGION"]
        aws.reset_clients()

        # Stop the children on SIGTERM too, as on Ctrl-C.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        processes: list[subprocess.Popen] = []
        try:
            processes.append(
                subprocess.Popen(
                    [
                        *manage,
                        "sandbox",
                        "--port",
                        str(sandbox_port),
                        "--seed-demo",
                        "--bucket",
                        settings.PORTAL_S3_BUCKET,
                    ],
                    env=env,
                )
            )
            self._wait_for(f"{sandbox_url}/_sandbox/health", processes[-1])
            call_command("sync_response_plans", stdout=self.stdout)
            call_command("setup_demo", password=os.environ.get("PORTAL_DEMO_PASSWORD"), stdout=self.stdout)
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "portal",
                        "worker",
                        "--beat",
                        "-Q",
                        "declarations,default",
                        "--concurrency",
                        "2",
                        "--loglevel",
                        "INFO",
                        "--schedule",
                        str(settings.BASE_DIR / "var" / "celerybeat-schedule"),
                    ],
                    env=env,
                )
            )
            processes.append(subprocess.Popen([*manage, "runserver", addr, "--noreload"], env=env))
            self.stdout.write(
                self.style.SUCCESS(f"Portal at http://{addr}/ — sandbox at {sandbox_url} — Ctrl-C stops everything.")
            )
            while all(process.poll() is None for process in processes):
                time.sleep(0.5)
            raise CommandError("A component stopped unexpectedly; stopping the rest.")
        except KeyboardInterrupt:
            self.stdout.write("Stopping…")
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()

    def _redis_answers(self) -> bool:
        if not settings.CELERY_BROKER_URL.startswith("redis"):
            return True
        try:
            return bool(redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False

    def _wait_for(self, url: str, process: subprocess.Popen, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise CommandError(f"The sandbox exited (code {process.returncode}); is port {url} in use?")
            try:
                with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - our own local sandbox
                    return
            except OSError:
                time.sleep(0.2)
        raise CommandError(f"The sandbox did not answer at {url} within {timeout:.0f} s.")

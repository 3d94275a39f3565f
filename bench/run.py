"""`make bench`: seed data, run the portal as production would, measure, print a table.

Everything runs on this machine: PostgreSQL (a throw-away database), Redis (its own database number), the AWS
sandbox, gunicorn with production settings and a Celery worker. Load comes from wrk (C, so the load generator takes
little CPU from the server). Each latency and throughput figure is measured in the same run as a bare Django view
served by the same server — declarations and the bare view in alternating rounds — so the ratios hold on a noisy
machine. The declare POST is also measured open loop: requests sent at a fixed arrival rate whatever the answers,
each one's latency counted from the moment it was due to be sent (so a stalled server cannot hide its stall by
slowing the load down). `--quick` for a smoke run, `--only open-loop,form` (any of declare, open-loop,
click-to-call, form, history) for a part. The bench reads the app only through `incidents.models`, Django's public
API and `manage.py` commands, so that it measures the same things before and after the code behind them changes.
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
VAR = ROOT / "var" / "bench"
PYTHON = sys.executable
DB_NAME = os.environ.get("BENCH_DB", "portal_bench")
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
# Redis database 9: the test suites use 11–15 (15 by default), `make run` uses 0.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
USERNAME, MANAGER, PASSWORD = "bench.support", "bench.manager", secrets.token_urlsafe(16)
LINK = "https://status.example.com/incidents/bench"
# Enough declarations after a restart to reach every new process: 5 gunicorn workers and 2 worker children.
FIRST_AFTER_RESTART = 10
RESOURCE_ARN = "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"
# The groups a migration creates for the portal's roles (by name, so the bench does not import the app's code).
SUPPORT_GROUP, MANAGER_GROUP = "support staff", "managers"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def combine(runs: list[dict]) -> dict:
    """Several wrk runs as one: throughput over their summed time, the median p50 and the worst p99."""
    duration_us = sum(run["duration_us"] for run in runs)
    requests = sum(run["requests"] for run in runs)
    return {
        "requests": requests,
        "duration_us": duration_us,
        "rps": requests / (duration_us / 1e6),
        "p50_us": statistics.median(run["p50_us"] for run in runs),
        "p99_us": max(run["p99_us"] for run in runs),
        "non_2xx_3xx": sum(run["non_2xx_3xx"] for run in runs),
    }


def csrf_token(page: str) -> str:
    """The CSRF token a page's form carries."""
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if match is None:
        raise RuntimeError("The page carries no CSRF token: " + page[:200])
    return match.group(1)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def load_average() -> str:
    return "/".join(f"{load:.2f}" for load in os.getloadavg())


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def declare_figures(figures: dict, ratio: float) -> str:
    """A declare-POST row's figures: throughput against the bare view, latency, and declarations not stored."""
    return (
        f"{figures['rps']:.0f} req/s ({ratio:.1%} of bare), p50 {figures['p50_us'] / 1000:.1f} ms, "
        f"p99 {figures['p99_us'] / 1000:.1f} ms, {figures['non_2xx_3xx']} errors"
    )


@dataclass
class Row:
    measure: str
    figures: str
    target: str = ""
    verdict: str = ""
    # The machine's 1/5/15-minute load averages when the measure ended: other work on the machine moves the figures.
    load: str = field(default_factory=load_average)


@dataclass
class Bench:
    quick: bool
    scales: list[int]
    open_loop_rate: float = 30
    open_loop_seconds: int = 30
    rows: list[Row] = field(default_factory=list)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: set[str] = field(default_factory=set)
    worker_started: bool = False
    began: datetime = field(default_factory=lambda: datetime.now(UTC))
    load_at_start: str = field(default_factory=load_average)

    # --- set-up -----------------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings.production",
            "SECRET_KEY": "bench-" + secrets.token_urlsafe(40),
            "PORTAL_AUDIT_KEYS": "bench:bench-only-not-secret-audit-chain-key",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "SECURE_HSTS_SECONDS": "0",
            # The bench's requests play the TLS-terminating proxy on this machine (X-Forwarded-Proto: https).
            "PORTAL_PROXY_HOPS": "1",
            # One bench user declares for 32 connections at once: far past what one person may.
            "PORTAL_DECLARE_RATE_LIMIT": "1000000/s",
            "DATABASE_URL": f"{PG}/{DB_NAME}",
            "REDIS_URL": REDIS_URL,
            "CELERY_BROKER_URL": REDIS_URL,
            "CACHE_REDIS_URL": REDIS_URL,
            "PORTAL_RATE_LIMIT_REDIS_URL": REDIS_URL,
            "AWS_ENDPOINT_URL_SSM_INCIDENTS": self.sandbox_url,
            "AWS_ENDPOINT_URL_S3": self.sandbox_url,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PORTAL_BENCH_VIEWS": "1",
            "PORTAL_BASE_URL": self.origin,
            "LOG_LEVEL": "WARNING",
            # The global StartIncident limit is a safety net sized to the account's quota; set high here so that
            # the figures measure the portal, not the configured throttle (the chaos suite tests the limit).
            "PORTAL_START_RATE_LIMIT_PER_SECOND": "500",
            "PORTAL_START_RATE_LIMIT_BURST": "100",
            "PYTHONUNBUFFERED": "1",
        }

    def start(self) -> None:
        VAR.mkdir(parents=True, exist_ok=True)
        self.sandbox_url = f"http://127.0.0.1:{free_port()}"
        self.base_url = f"http://127.0.0.1:{free_port()}"
        self.origin = self.base_url.replace("http://", "https://")
        os.environ.update(self.env())
        self.step("database")
        subprocess.run(["psql", PG + "/postgres", "-qc", f"DROP DATABASE IF EXISTS {DB_NAME}"], check=True)
        subprocess.run(["psql", PG + "/postgres", "-qc", f"CREATE DATABASE {DB_NAME}"], check=True)
        subprocess.run(["redis-cli", "-u", REDIS_URL, "flushdb"], check=True, capture_output=True)
        self.manage("migrate", "--noinput", "-v0")
        self.manage("collectstatic", "--noinput", "-v0")

        self.step("sandbox with 200 response plans")
        port = self.sandbox_url.rsplit(":", 1)[1]
        self.spawn("sandbox", [PYTHON, "-m", "sandbox", "--port", port, "--seed-demo"])
        self.wait_for(self.sandbox_url + "/_sandbox/health")
        import django

        django.setup()
        from sandbox import demo

        demo.seed_bulk_plans(self.sandbox_url, 195)
        self.manage("sync_response_plans")
        self.manage(
            "shell",
            "-c",
            SETUP_PORTAL.format(
                username=USERNAME,
                manager=MANAGER,
                password=PASSWORD,
                support_group=SUPPORT_GROUP,
                manager_group=MANAGER_GROUP,
            ),
        )

        self.step("gunicorn")
        self.start_web()
        self.login()

    def start_web(self) -> None:
        bind = self.base_url.removeprefix("http://")
        # As the README runs production (gunicorn.conf.py); BENCH_GUNICORN_ARGS tries other worker mixes.
        server_args = os.environ.get("BENCH_GUNICORN_ARGS", "").split()
        self.spawn("gunicorn", [PYTHON, "-m", "gunicorn", "--bind", bind, *server_args])
        self.wait_for(self.base_url + "/bench/bare/")

    def start_worker(self) -> None:
        if self.worker_started:
            return
        self.worker_started = True
        self.spawn(
            "worker",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "-Q",
                "declarations,default",
                "--concurrency",
                "2",
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
            ],
        )

    def step(self, what: str) -> None:
        print(f"[bench {datetime.now(UTC):%H:%M:%S}, load {load_average()}] {what}", flush=True)

    def manage(self, *args: str) -> None:
        subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, check=True)

    def spawn(self, name: str, command: list[str]) -> None:
        # A restarted process adds to its log of this run.
        log = (VAR / f"{name}.log").open("a" if name in self.logs else "w")
        self.logs.add(name)
        self.processes[name] = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def restart_portal(self) -> None:
        """Stop gunicorn and the worker as a deploy does, start them again, and wait until both answer."""
        for name in ("gunicorn", "worker"):
            self.terminate(self.processes.pop(name))
        self.worker_started = False
        self.start_web()
        self.start_worker()
        self.wait_for_worker()

    def wait_for_worker(self) -> None:
        from celery import current_app

        deadline = time.monotonic() + 60
        while not current_app.control.ping(timeout=0.5):
            if time.monotonic() > deadline:
                raise RuntimeError(f"The worker did not answer; see {VAR}/worker.log")

    def wait_for(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own local servers
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{url} did not answer within {timeout} s; see {VAR}/*.log")

    def stop(self) -> None:
        # All at once, then wait for each: they shut down side by side.
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            self.wait_or_kill(process)

    @classmethod
    def terminate(cls, process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        cls.wait_or_kill(process)

    @staticmethod
    def wait_or_kill(process: subprocess.Popen) -> None:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()

    def request(self, method: str, path: str, body: str | None = None, cookies: dict | None = None):
        """One request as it arrives from the TLS-terminating proxy production runs behind."""
        connection = http.client.HTTPConnection(self.base_url.removeprefix("http://"), timeout=30)
        headers = {"X-Forwarded-Proto": "https", "Origin": self.origin, "Referer": self.origin + path}
        if cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        content = response.read().decode()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, value = header.split(";", 1)[0].split("=", 1)
            if cookies is not None:
                cookies[name] = value
        return response.status, content

    def login_as(self, username: str) -> dict[str, str]:
        """A real login through the login form; returns the session and CSRF cookies."""
        cookies: dict[str, str] = {}
        _, page = self.request("GET", "/accounts/login/", cookies=cookies)
        token = csrf_token(page)
        data = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": username, "password": PASSWORD})
        status, _ = self.request("POST", "/accounts/login/", body=data, cookies=cookies)
        if status != 302 or "sessionid" not in cookies:
            raise RuntimeError(f"Could not log in as {username} (HTTP {status}).")
        return cookies

    def login(self) -> None:
        cookies = self.cookies = self.login_as(USERNAME)
        self.cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
        self.manager_cookies = self.login_as(MANAGER)
        self.manager_cookie = "; ".join(f"{name}={value}" for name, value in self.manager_cookies.items())
        _, page = self.request("GET", "/declare/", cookies=cookies)
        self.csrf = csrf_token(page)
        self.plan_ids = re.findall(r'name="response_plan" value="(\d+)"', page)
        if len(self.plan_ids) < 200:
            raise RuntimeError(f"Expected 200 plans on the form, found {len(self.plan_ids)}.")

    # --- load ---------------------------------------------------------------------------------------------

    def wrk(self, script: str, *, connections: int, seconds: int, env: dict[str, str], path: str = "/") -> dict:
        result = subprocess.run(
            [
                "wrk",
                "-t",
                str(min(2, connections)),
                "-c",
                str(connections),
                "-d",
                f"{seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(BENCH_DIR / script),
                self.base_url + path,
            ],
            env={**os.environ, "BENCH_DIR": str(BENCH_DIR), **env},
            capture_output=True,
            text=True,
            check=True,
        )
        line = next(line for line in result.stdout.splitlines() if line.startswith("BENCH_JSON "))
        figures = json.loads(line.removeprefix("BENCH_JSON "))
        figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
        return figures

    def declare_body(self, key: str = "{KEY}", plan: str | None = None) -> str:
        return urllib.parse.urlencode(
            {
                "csrfmiddlewaretoken": self.csrf,
                # Each POST a new incident on purpose: the same person declaring the same plan again within minutes
                # is otherwise asked first (the declare page's guard against a second incident after Back).
                "action": "declare-again",
                "idempotency_key": key,
                "response_plan": plan or self.plan_ids[0],
                "title": "Checkout returns 500 for some customers",
                "impact": "2",
                "items-TOTAL_FORMS": "3",
                "items-INITIAL_FORMS": "0",
                "items-0-kind": "link",
                "items-0-value": LINK,
                "items-0-title": "Status page",
                "items-1-kind": "resource",
                "items-1-value": RESOURCE_ARN,
                "items-1-title": "Web server",
                "items-2-kind": "link",
                "items-2-value": "",
            },
            safe="{}",
        )

    def post_declaration(self) -> None:
        body = self.declare_body(secrets.token_hex(16), secrets.choice(self.plan_ids))
        status, _ = self.request("POST", "/declare/", body=body, cookies=dict(self.cookies))
        if status != 302:
            raise RuntimeError(f"declare POST answered {status}")

    # --- measures ---------------------------------------------------------------------------------------

    def declare_load(self, seconds: int) -> dict:
        """wrk counts a 200 as success, but a declare POST that stores its declaration answers 302: count what was
        stored instead (requests cut off when the run ends may store one more each, never fewer)."""
        from incidents.models import Declaration

        before = Declaration.objects.count()
        figures = self.wrk(
            "declare.lua",
            connections=32,
            seconds=seconds,
            path="/declare/",
            env={
                "BENCH_BODY": self.declare_body(),
                "BENCH_COOKIE": self.cookie,
                "BENCH_NONCE": secrets.token_hex(4),
                "BENCH_ORIGIN": self.origin,
            },
        )
        figures["non_2xx_3xx"] += max(0, figures["requests"] - (Declaration.objects.count() - before))
        return figures

    def declare_against_bare(self, *, drain: bool) -> tuple[dict, dict, float]:
        """Short rounds of the bare view and declare POSTs in turn, so that both see the same machine: a noisy
        neighbour slows both sides of a round alike. Returns the summed figures of each and the median ratio."""
        rounds, seconds = (2, 4) if self.quick else (4, 5)
        bares, declares = [], []
        for _ in range(rounds):
            if drain:
                self.wait_until_drained()  # the bare view gets the machine the declarations had
            bares.append(self.wrk("get.lua", connections=32, seconds=seconds, env={"BENCH_PATHS": "/bench/bare/"}))
            declares.append(self.declare_load(seconds))
        ratio = statistics.median(declare["rps"] / bare["rps"] for bare, declare in zip(bares, declares, strict=True))
        return combine(bares), combine(declares), ratio

    def measure_declare(self) -> None:
        """Closed loop (32 clients, each waiting for its answer): declare POSTs against the bare view, first for the
        web tier alone (the worker starts afterwards and drains the queue), then with the worker and the sandbox
        taking their share of the same two cores. Figures, not targets: the latency people see at a given rate is
        the open-loop measure's."""
        self.step("closed loop: bare view vs declare POST, 32 clients, web tier alone")
        bare, web, web_ratio = self.declare_against_bare(drain=False)
        self.step("closed loop: declare POST with the worker and the sandbox on the same cores")
        self.start_worker()
        _, pipeline, pipeline_ratio = self.declare_against_bare(drain=True)
        self.rows.append(
            Row(
                "Bare Django view, 32 clients",
                f"{bare['rps']:.0f} req/s, p50 {bare['p50_us'] / 1000:.1f} ms, p99 {bare['p99_us'] / 1000:.1f} ms",
            )
        )
        for label, figures, ratio in (
            ("Declare POST (link + ARN), closed loop, 32 clients, web tier", web, web_ratio),
            ("Declare POST, closed loop, 32 clients, worker + sandbox on the same cores", pipeline, pipeline_ratio),
        ):
            self.rows.append(Row(label, declare_figures(figures, ratio), "figure (ratio to bare)"))
        self.wait_until_drained()

    def measure_open_loop(self) -> None:
        """Declare POSTs sent at a fixed arrival rate, whatever the answers, with the worker and the sandbox on the
        same cores. Request i is due at start + i / rate; a dispatcher hands each to a pool of senders at its due
        time, and its latency runs from that due time to the answer, so time spent waiting behind a slow answer
        (for a sender or for the server) counts. Each request opens its own connection, as the proxy in front of
        production does."""
        rate, seconds = self.open_loop_rate, 10 if self.quick else self.open_loop_seconds
        self.step(f"open loop: declare POST at {rate:g}/s for {seconds} s, worker + sandbox")
        from incidents.models import Declaration

        self.start_worker()
        self.wait_for_worker()
        for _ in range(FIRST_AFTER_RESTART):  # reach every process once before measuring
            self.post_declaration()
        self.wait_until_drained()
        time.sleep(2)
        self.clear_sandbox_calls()
        since = datetime.now(UTC)
        stored_before = Declaration.objects.count()
        count = round(rate * seconds)
        bodies = [self.declare_body(secrets.token_hex(16), secrets.choice(self.plan_ids)) for _ in range(count)]
        latencies: list[float] = []
        failures: list[str] = []  # list.append is atomic across threads

        def send(due: float, body: str) -> None:
            try:
                status, _ = self.request("POST", "/declare/", body=body, cookies=dict(self.cookies))
                if status != 302:
                    failures.append(f"HTTP {status}")
            except OSError as exc:
                failures.append(type(exc).__name__)
            latencies.append((time.perf_counter() - due) * 1000)

        late = 0.0
        with concurrent.futures.ThreadPoolExecutor(64) as pool:
            start = time.perf_counter() + 0.05
            for index, body in enumerate(bodies):
                due = start + index / rate
                if (wait := due - time.perf_counter()) > 0:
                    time.sleep(wait)
                late = max(late, time.perf_counter() - due)
                pool.submit(send, due, body)
        elapsed = time.perf_counter() - start
        stored = Declaration.objects.count() - stored_before
        errors = len(failures) + max(0, count - len(failures) - stored)  # a 302 whose declaration was not stored
        calls = self.click_to_call(since)
        ok = percentile(latencies, 99) <= 100 and errors == 0
        kinds = f" ({', '.join(sorted(set(failures)))})" if failures else ""
        self.rows.append(
            Row(
                f"Declare POST, open loop at {rate:g}/s for {seconds} s, worker + sandbox on the same cores",
                f"{count} sent ({count / elapsed:.1f}/s, dispatcher at most {late * 1000:.1f} ms late), "
                f"p50 {percentile(latencies, 50):.1f} ms, p95 {percentile(latencies, 95):.1f} ms, "
                f"p99 {percentile(latencies, 99):.1f} ms, max {max(latencies):.1f} ms, {errors} errors{kinds}; "
                f"click-to-call p50 {percentile(calls, 50):.1f} ms, p99 {percentile(calls, 99):.1f} ms",
                "p99 ≤ 100 ms, 0 errors",
                verdict(ok),
            )
        )

    def wait_until_drained(self, timeout: float = 300) -> None:
        from incidents.models import Declaration

        deadline = time.monotonic() + timeout
        while Declaration.objects.exclude(state__in=Declaration.FINAL_STATES).exists():
            if time.monotonic() > deadline:
                raise RuntimeError("Declarations were still not started after the load ended.")
            time.sleep(0.5)

    def sandbox_calls(self) -> list[dict]:
        with urllib.request.urlopen(self.sandbox_url + "/_sandbox/calls?operation=StartIncident") as response:  # noqa: S310
            return json.loads(response.read())["calls"]

    def clear_sandbox_calls(self) -> None:
        request = urllib.request.Request(self.sandbox_url + "/_sandbox/calls", method="DELETE")
        urllib.request.urlopen(request).close()  # noqa: S310

    def click_to_call(self, posted_since: datetime) -> list[float]:
        """Milliseconds from the declaration being stored to the sandbox receiving its StartIncident."""
        from incidents.models import Declaration

        self.wait_until_drained()
        created = dict(
            Declaration.objects.filter(created_at__gte=posted_since).values_list("client_token", "created_at")
        )
        first_call: dict[str, float] = {}
        for call in self.sandbox_calls():
            token = call["params"].get("clientToken")
            if token in created and token not in first_call:
                first_call[token] = call["received_at"]
        return [(first_call[token] - created[token].timestamp()) * 1000 for token in first_call]

    def measure_click_to_call(self) -> None:
        self.step("click-to-call at idle and during a burst of 500")
        self.start_worker()
        time.sleep(10)  # let autovacuum and checkpoints after the load settle: idle means idle
        samples = 30 if self.quick else 100
        self.clear_sandbox_calls()
        since = datetime.now(UTC)
        for _ in range(samples):
            self.post_declaration()
            time.sleep(0.1)  # idle: each declaration alone in the system
        idle = self.click_to_call(since)
        ok = percentile(idle, 50) <= 20 and percentile(idle, 99) <= 50 and len(idle) == samples
        self.rows.append(
            Row(
                f"Click-to-call at idle ({len(idle)} of {samples} declarations)",
                f"p50 {percentile(idle, 50):.1f} ms, p99 {percentile(idle, 99):.1f} ms",
                "p50 ≤ 20 ms, p99 ≤ 50 ms",
                verdict(ok),
            )
        )

        self.clear_sandbox_calls()
        since = datetime.now(UTC)
        burst = 150 if self.quick else 500

        def post_many(count: int) -> None:
            for _ in range(count):
                self.post_declaration()

        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            list(pool.map(post_many, [burst // 32 + (1 if i < burst % 32 else 0) for i in range(32)]))
        during = self.click_to_call(since)
        self.rows.append(
            Row(
                f"Click-to-call during a burst of {burst}",
                f"p50 {percentile(during, 50):.0f} ms, p99 {percentile(during, 99):.0f} ms ({len(during)} calls)",
            )
        )

        # The first declarations after a deploy land on new processes: each gunicorn worker and each worker child
        # sets itself up at start (incidents/warmup.py), or the first declaration it handles waits while it does.
        self.step("click-to-call for the first declarations after a restart")
        self.wait_until_drained()
        self.restart_portal()
        self.clear_sandbox_calls()
        since = datetime.now(UTC)
        for _ in range(FIRST_AFTER_RESTART):
            self.post_declaration()
            time.sleep(0.5)
        first = self.click_to_call(since)
        self.rows.append(
            Row(
                f"Click-to-call, the first {len(first)} declarations after gunicorn and the worker restart",
                f"p50 {percentile(first, 50):.1f} ms, slowest {max(first):.1f} ms",
            )
        )

    def measure_form_page(self) -> None:
        """The declare page as one person waits for it: one client, one request at a time."""
        self.step("GET /declare/ with 200 response plans, one client")
        form = self.wrk(
            "get.lua",
            connections=1,
            seconds=5 if self.quick else 15,
            env={"BENCH_PATHS": "/declare/", "BENCH_COOKIE": self.cookie},
        )
        ok = form["p95_us"] <= 50_000 and form["non_2xx_3xx"] == 0 and form["socket_errors"] == 0
        self.rows.append(
            Row(
                "Form page GET /declare/, 200 plans, 1 client",
                f"p50 {form['p50_us'] / 1000:.1f} ms, p95 {form['p95_us'] / 1000:.1f} ms, "
                f"p99 {form['p99_us'] / 1000:.1f} ms ({form['requests']} requests, {form['non_2xx_3xx']} errors)",
                "p95 ≤ 50 ms",
                verdict(ok),
            )
        )

    def measure_history(self) -> None:
        from bench.seed import seed_history

        for scale in self.scales:
            self.step(f"history: seeding to {scale:,} declarations")
            started = time.monotonic()
            seed_history(total=scale)
            self.step(f"history: seeded in {time.monotonic() - started:.0f} s; measuring")
            pages = self.history_paths()
            seconds = 5 if self.quick else 10
            env = {"BENCH_COOKIE": self.manager_cookie}
            history = self.wrk(
                "get.lua", connections=2, seconds=seconds, env={**env, "BENCH_PATHS": " ".join(pages["history"])}
            )
            detail = self.wrk(
                "get.lua", connections=2, seconds=seconds, env={**env, "BENCH_PATHS": " ".join(pages["detail"])}
            )
            queries = {kind: max(self.count_queries(path) for path in paths) for kind, paths in pages.items()}
            for kind, figures in (("history", history), ("detail", detail)):
                ok = figures["p95_us"] <= 60_000 and queries[kind] <= 8 and figures["non_2xx_3xx"] == 0
                label = (
                    "History page, 2 clients (6 filter/search/sort/page-2 views)"
                    if kind == "history"
                    else "Declaration detail page, 2 clients"
                )
                self.rows.append(
                    Row(
                        f"{label} at {scale:,}",
                        f"p50 {figures['p50_us'] / 1000:.1f} ms, p95 {figures['p95_us'] / 1000:.1f} ms, "
                        f"≤ {queries[kind]} SQL queries per page",
                        "p95 ≤ 60 ms, ≤ 8 queries",
                        verdict(ok),
                    )
                )
        self.measure_declare_at_scale(self.scales[-1])
        self.measure_export(self.scales[-1])

    def measure_declare_at_scale(self, scale: int) -> None:
        """Declare POSTs again with the history at its largest: a write path that slows as the tables grow (an index
        taking random writes, say) shows here and not on the nearly empty database of the first measure."""
        self.step(f"declare POST at {scale:,} declarations")
        tier = "worker + sandbox" if self.worker_started else "web tier"
        _, figures, ratio = self.declare_against_bare(drain=self.worker_started)
        self.rows.append(
            Row(
                f"Declare POST, closed loop, 32 clients, {tier}, at {scale:,} declarations",
                declare_figures(figures, ratio),
                "figure (ratio to bare)",
            )
        )

    def history_paths(self) -> dict[str, list[str]]:
        from incidents.models import Declaration, ResponsePlan

        plan = ResponsePlan.objects.order_by("id").first()
        if plan is None:
            raise RuntimeError("No response plans to filter the history by: the seed did not run.")
        today = datetime.now(UTC).date()
        month_ago = today.replace(day=1) if today.day > 1 else today
        first = f"/declarations/?impact=1&plan={plan.pk}&date_from={month_ago.isoformat()}&date_to={today}"
        _, page = self.request("GET", "/declarations/", cookies=dict(self.manager_cookies))
        cursor = re.search(r'href="\?cursor=([^"&]+)', page)
        history = [
            "/declarations/",
            first,
            "/declarations/?state=failed",
            "/declarations/?q=checkout",
            "/declarations/?sort=impact",
            f"/declarations/?cursor={cursor.group(1)}" if cursor else "/declarations/?sort=-created",
        ]
        ids = list(Declaration.objects.order_by("?").values_list("id", flat=True)[:50])
        return {"history": history, "detail": [f"/declarations/{pk}/" for pk in ids]}

    def count_queries(self, path: str) -> int:
        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        client = Client(HTTP_HOST="127.0.0.1", HTTP_X_FORWARDED_PROTO="https")
        client.force_login(get_user_model().objects.get(username=MANAGER))
        client.get(path)  # warm: the session and the plan list are loaded once per process anyway
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}")
        return len(queries)

    def measure_export(self, scale: int) -> None:
        """Stream the whole CSV while sampling every gunicorn worker's resident memory."""
        self.step(f"export of {scale:,} declarations")
        gunicorn = self.processes["gunicorn"]
        workers = [int(pid) for pid in Path(f"/proc/{gunicorn.pid}/task/{gunicorn.pid}/children").read_text().split()]
        peak = {pid: 0 for pid in workers}
        done = False

        def sample() -> None:
            while not done:
                for pid in workers:
                    try:
                        status = Path(f"/proc/{pid}/status").read_text()
                    except FileNotFoundError:
                        continue
                    rss = re.search(r"VmRSS:\s+(\d+)", status)
                    if rss:  # a worker exiting (a zombie) has no resident memory left to report
                        peak[pid] = max(peak[pid], int(rss.group(1)))
                time.sleep(0.02)

        sampler = concurrent.futures.ThreadPoolExecutor(1).submit(sample)
        connection = http.client.HTTPConnection(self.base_url.removeprefix("http://"), timeout=120)
        started = time.monotonic()
        connection.request(
            "GET", "/declarations/export.csv", headers={"X-Forwarded-Proto": "https", "Cookie": self.manager_cookie}
        )
        response = connection.getresponse()
        rows = sum(chunk.count(b"\n") for chunk in iter(lambda: response.read(1 << 16), b""))
        elapsed = time.monotonic() - started
        done = True
        sampler.result()
        peak_mb = max(peak.values()) / 1024
        ok = elapsed <= 30 and peak_mb <= 150 and rows >= scale
        self.rows.append(
            Row(
                f"CSV export of {scale:,} declarations",
                f"{rows - 1:,} rows in {elapsed:.1f} s, peak worker memory {peak_mb:.0f} MB",
                "≤ 30 s, ≤ 150 MB",
                verdict(ok),
            )
        )

    # --- report -----------------------------------------------------------------------------------------

    def report(self) -> str:
        lines = [
            f"Measured {self.began:%Y-%m-%d %H:%M}–{datetime.now(UTC):%H:%M} UTC on {os.cpu_count()} cores"
            f"{' (quick run)' if self.quick else ''}; load average (1/5/15 min) {self.load_at_start} at the start, "
            f"{load_average()} at the end.",
            "",
            "| measure | figures | target | verdict | load 1/5/15 min |",
            "|---|---|---|---|---|",
        ]
        lines += [f"| {row.measure} | {row.figures} | {row.target} | {row.verdict} | {row.load} |" for row in self.rows]
        return "\n".join(lines)


# After `manage.py sync_response_plans`: every plan shown, the bench's people in the roles' groups. Plain Django ORM.
SETUP_PORTAL = """
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from incidents.models import ResponsePlan
User = get_user_model()
support = Group.objects.get(name={support_group!r})
ResponsePlan.objects.update(is_visible=True)
User.objects.create_user(username={username!r}, password={password!r}).groups.add(support)
User.objects.create_user(username={manager!r}, password={password!r}).groups.add(
    Group.objects.get(name={manager_group!r})
)
for number in range(18):
    User.objects.create_user(username=f"bench.user{{number:02d}}").groups.add(support)
"""


# What `--only` chooses from, in the order they run.
MEASURES = {
    "declare": "measure_declare",
    "open-loop": "measure_open_loop",
    "click-to-call": "measure_click_to_call",
    "form": "measure_form_page",
    "history": "measure_history",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs and smaller scales, for a smoke test")
    parser.add_argument(
        "--only",
        default=",".join(MEASURES),
        help=f"comma-separated measures to run (default: all of {', '.join(MEASURES)})",
    )
    parser.add_argument("--rate", type=float, default=30, help="open loop: declarations sent per second (30)")
    parser.add_argument("--seconds", type=int, default=30, help="open loop: how long to send them (30; 10 if --quick)")
    parser.add_argument(
        "--scales",
        help="history: comma-separated numbers of declarations to measure at (default 10000,100000,1000000; "
        "10000 if --quick)",
    )
    args = parser.parse_args()
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    if unknown := set(only) - set(MEASURES):
        parser.error(f"unknown measure(s): {', '.join(sorted(unknown))}; choose from {', '.join(MEASURES)}")
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed (Debian package wrk); `make bench` installs it.")
    scales = [10_000] if args.quick else [10_000, 100_000, 1_000_000]
    if args.scales:
        scales = sorted(int(scale.replace("_", "")) for scale in args.scales.split(","))
    bench = Bench(quick=args.quick, scales=scales, open_loop_rate=args.rate, open_loop_seconds=args.seconds)
    try:
        bench.start()
        for name in MEASURES:
            if name in only:
                getattr(bench, MEASURES[name])()
    finally:
        bench.stop()
    table = bench.report()
    print("\n" + table)
    # A partial run keeps the last full table.
    results = VAR / ("results.md" if set(only) == set(MEASURES) else f"results-{'-'.join(only)}.md")
    results.write_text(table + "\n")
    print(f"\nWritten to {results}")


if __name__ == "__main__":
    main()

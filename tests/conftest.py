"""Shared fixtures: the real parts (sandbox over HTTP, Redis, a Celery worker process, PostgreSQL)."""

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from unittest import mock

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.cache import caches
from django.db import connection, transaction

from incidents import roles
from incidents.aws.client import reset_clients
from incidents.models import AuditEvent, Declaration, ResponsePlan
from incidents.services.declarations import declaration_create
from incidents.services.plans import response_plan_update, response_plans_sync
from sandbox import demo
from sandbox.server import Sandbox
from tests.helpers import ROOT

AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",  # the sandbox accepts any credentials
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class SandboxControl:
    """The sandbox's test-only control API, spoken over HTTP like any client would."""

    def __init__(self, server: Sandbox):
        self.server = server
        self.url = server.url

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - local sandbox
            raw = response.read()
        return json.loads(raw) if raw else {}

    def inject(self, **faults) -> None:
        self._call("POST", "/_sandbox/faults", faults)

    def clear_faults(self) -> None:
        self._call("DELETE", "/_sandbox/faults")

    def calls(self, operation: str | None = "StartIncident") -> list[dict]:
        """The calls the sandbox received for `operation` (None: every call), oldest first."""
        query = f"?operation={operation}" if operation else ""
        return self._call("GET", f"/_sandbox/calls{query}")["calls"]

    def clear_calls(self) -> None:
        self._call("DELETE", "/_sandbox/calls")

    def respond(self, action: str, **body) -> dict:
        """A responder's change in the AWS console (sandbox/README.md): timeline-event, update, related-item, resolve,
        runbook."""
        return self._call("POST", f"/_sandbox/responder/{action}", body)


@pytest.fixture(scope="session")
def sandbox_server():
    os.environ.update(AWS_TEST_ENV)
    server = Sandbox(host="127.0.0.1", port=0)
    server.start()
    os.environ["AWS_ENDPOINT_URL_SSM_INCIDENTS"] = server.url
    os.environ["AWS_ENDPOINT_URL_S3"] = server.url
    reset_clients()
    demo.seed(server.url, bucket=settings.PORTAL_S3_BUCKET, heads_bucket=settings.PORTAL_AUDIT_HEADS_BUCKET)
    yield server
    server.stop()


# Until the sandbox starts, AWS is a closed port on this machine: no test ever reaches the real one.
os.environ.update(AWS_TEST_ENV, AWS_ENDPOINT_URL="http://127.0.0.1:9")
# Processes a test starts with production settings need the audit chain's keys (the test settings' own).
os.environ.setdefault(
    "PORTAL_AUDIT_KEYS", ",".join(f"{key_id}:{secret}" for key_id, secret in settings.PORTAL_AUDIT_KEYS)
)


@pytest.fixture(scope="session", autouse=True)
def _test_flush_may_empty_the_audit_trail():
    """Transactional tests end by emptying every table with one TRUNCATE, which the audit table refuses (migration
    0009). The test database's superuser may set session_replication_role, under which no trigger fires: only in
    the flush's own transaction, and only in tests."""
    operations = type(connection.ops)  # every connection's: Playwright's event loop makes the flush use another
    flush = operations.execute_sql_flush

    def flush_as_replica(ops, sql_list):
        with transaction.atomic(using=ops.connection.alias), ops.connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            flush(ops, sql_list)

    with mock.patch.object(operations, "execute_sql_flush", flush_as_replica):
        yield


@pytest.fixture
def heads_bucket(sandbox, settings) -> str:
    """A write-once bucket of the test's own for the audit chain's published heads (what is published stays: no
    test can clear it for the next)."""
    bucket = f"audit-heads-{uuid.uuid4().hex[:16]}"
    demo.create_write_once_bucket(sandbox.url, bucket)
    settings.PORTAL_AUDIT_HEADS_BUCKET = bucket
    return bucket


@pytest.fixture(autouse=True)
def _aws_is_the_sandbox(request):
    """Every test that touches the database (and so may declare) talks to the sandbox, with no faults injected;
    pure unit tests do not pay for starting it."""
    uses_database = request.node.get_closest_marker("django_db") or {"db", "transactional_db", "live_server"} & set(
        request.fixturenames
    )
    if uses_database:
        request.getfixturevalue("sandbox")


@pytest.fixture(autouse=True)
def _process_memory_forgotten():
    """Each test starts with an empty per-process cache (the readiness report's last AWS answer, the rate limits'
    counts while Redis is away), as a new process would."""
    caches["local"].clear()


@pytest.fixture
def sandbox(sandbox_server):
    """The sandbox standing in for AWS, its faults cleared before and after the test."""
    control = SandboxControl(sandbox_server)
    control.clear_faults()
    control.clear_calls()
    yield control
    control.clear_faults()


def worker_database_url() -> str:
    """The test database, for worker processes started by the tests.

    Between transactional tests the database is flushed with TRUNCATE while a worker may still be finishing a
    task; should the two deadlock, the worker's short deadlock_timeout makes its task the one PostgreSQL aborts,
    never the flush (which would leave rows behind for the next test).
    """
    db = settings.DATABASES["default"]
    credentials = f"{db['USER']}:{db.get('PASSWORD') or ''}"
    return f"postgres://{credentials}@{db['HOST']}:{db['PORT']}/{db['NAME']}?options=-c%20deadlock_timeout%3D50ms"


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, sandbox_server):
    """A real Celery worker process consuming from real Redis and writing to the test database."""
    broker = settings.CELERY_BROKER_URL
    redis.Redis.from_url(broker).flushdb()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.test",
        "DATABASE_URL": worker_database_url(),
        "CELERY_BROKER_URL": broker,
        "PYTHONUNBUFFERED": "1",
    }
    log_path = ROOT / "test-artifacts" / "celery-worker.log"
    log_path.parent.mkdir(exist_ok=True)
    log = log_path.open("w")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "-Q",
            "declarations,default",
            "--concurrency",
            "2",
            "--pool",
            "threads",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while "ready." not in log_path.read_text():
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"The Celery worker did not start:\n{log_path.read_text()}")
        time.sleep(0.1)
    yield worker
    worker.terminate()
    worker.wait(timeout=20)
    log.close()


def wait_for_state(declaration: Declaration, *states: str, timeout: float = 20) -> Declaration:
    """Poll the database until the worker has moved the declaration into one of `states`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        declaration.refresh_from_db()
        if declaration.state in states:
            return declaration
        time.sleep(0.05)
    raise AssertionError(f"declaration {declaration.pk} stayed {declaration.state!r}, expected {states}")


def make_user(django_user_model, username: str, role: str | None = roles.SUPPORT):
    user = django_user_model.objects.create_user(username=username, password="a-long-test-password")
    if role:
        # Transactional tests truncate the groups the migration made: make sure the role exists.
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
    return user


@pytest.fixture
def support_user(django_user_model):
    return make_user(django_user_model, "sam.support")


@pytest.fixture
def other_support_user(django_user_model):
    return make_user(django_user_model, "olga.support")


@pytest.fixture
def manager_user(django_user_model):
    return make_user(django_user_model, "maya.manager", roles.MANAGER)


@pytest.fixture
def portal_admin_user(django_user_model):
    """An admin by role only (not a superuser, unlike pytest-django's admin_user), so role checks are exercised."""
    return make_user(django_user_model, "ada.admin", roles.ADMIN)


@pytest.fixture
def manager_client(manager_user):
    # Its own client (not pytest-django's shared `client`), so that one test can act as several people.
    from django.test import Client

    client = Client()
    client.force_login(manager_user)
    return client


@pytest.fixture
def portal_admin_client(portal_admin_user):
    from django.test import Client

    client = Client()
    client.force_login(portal_admin_user)
    return client


@pytest.fixture
def support_client(client, support_user):
    client.force_login(support_user)
    return client


@pytest.fixture
def plans(db, ssm_incidents) -> dict[str, ResponsePlan]:
    """The sandbox's demo plans, synced the real way and shown to everyone. Plans an earlier test created in the shared
    sandbox are deleted first, so that every test starts from the same plans (and the same declare page)."""
    demo_names = {plan["name"] for plan in demo.DEMO_PLANS}
    for page in ssm_incidents.get_paginator("list_response_plans").paginate():
        for summary in page["responsePlanSummaries"]:
            if summary["name"] not in demo_names:
                ssm_incidents.delete_response_plan(arn=summary["arn"])
    response_plans_sync()
    for plan in ResponsePlan.objects.filter(deleted_in_aws=False):
        response_plan_update(plan=plan, actor=None, is_visible=True)
    return {plan.name: plan for plan in ResponsePlan.objects.all()}


@pytest.fixture
def ssm_incidents(sandbox_server):
    """A plain boto3 client, as an operator's script or the AWS CLI would use, to check what AWS holds."""
    import boto3

    return boto3.client("ssm-incidents", endpoint_url=sandbox_server.url, region_name="us-east-1")


@pytest.fixture
def s3(sandbox_server):
    import boto3

    return boto3.client("s3", endpoint_url=sandbox_server.url, region_name="us-east-1")


@pytest.fixture
def trail(plans, support_user) -> list[AuditEvent]:
    """A few real audit events after the plans' own."""
    for title in ("A", "B", "C"):
        declaration_create(declared_by=support_user, response_plan=plans["website-outage"], title=title)
    return list(AuditEvent.objects.order_by("id"))


@pytest.fixture(scope="session")
def oidc_provider(live_server, tmp_path_factory):
    """One real OpenID Connect provider for the test run, its client's redirect URI the live server's."""
    from tests.oidc_provider import OIDCProvider

    provider = OIDCProvider(tmp_path_factory.mktemp("oidc"), portal_url=live_server.url)
    provider.start()
    yield provider
    provider.stop()


# How the tests map the provider's groups to the portal's roles (PORTAL_SSO_ROLE_MAP).
SSO_ROLE_MAP = {"portal-support": roles.SUPPORT, "portal-managers": roles.MANAGER, "portal-admins": roles.ADMIN}


@pytest.fixture
def sso(settings, oidc_provider):
    """The portal configured for the test provider, with `brenda.glass` as its only break-glass local account."""
    from portal.settings.single_sign_on import sso_form_action
    from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET

    oidc_provider.reset_accounts()
    settings.PORTAL_SSO_ISSUER = oidc_provider.issuer
    settings.PORTAL_SSO_ENABLED = True
    settings.PORTAL_SSO_PROVIDER_NAME = "Test Identity"
    settings.PORTAL_SSO_ROLE_MAP = SSO_ROLE_MAP
    settings.PORTAL_LOCAL_LOGIN_ACCOUNTS = ["brenda.glass"]
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_RP_SCOPES = "openid email profile groups"
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, "incidents.sso.ProviderBackend"]
    settings.SECURE_CSP = {**settings.SECURE_CSP, "form-action": sso_form_action(oidc_provider.issuer)}
    for role in roles.ALL:  # transactional tests truncate the groups the migration made
        Group.objects.get_or_create(name=role)
    return oidc_provider

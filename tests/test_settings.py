"""Production settings: safe by default, and refusing to start without their secrets."""

import json
import multiprocessing
import runpy
import shlex
import subprocess

import pytest
from django.core.management import CommandError, call_command
from gunicorn.config import Config

from tests.conftest import worker_database_url
from tests.helpers import ROOT, manage_py


def manage(*args, **env):
    return manage_py(*args, settings="portal.settings.production", **env)


def test_production_settings_pass_the_deploy_check():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY="x" * 20 + "production-grade-secret-for-the-check-only-" + "y" * 20,
        ALLOWED_HOSTS="portal.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = manage("check", ALLOWED_HOSTS="portal.example.com")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_to_start_without_the_audit_chain_key():
    result = manage("check", SECRET_KEY="z" * 60, ALLOWED_HOSTS="portal.example.com", PORTAL_AUDIT_KEYS="")
    assert result.returncode != 0
    assert "PORTAL_AUDIT_KEYS must be set" in result.stderr


@pytest.mark.parametrize(
    ("keys", "error"),
    [
        ("k1:too-short-a-secret", "the secret of key 'k1' must be at least 32 characters"),
        ("k1", "the secret of key 'k1' must be at least 32 characters"),
        ("sha256:" + "s" * 40, "entry 1 must be `id:secret`"),
        ("k1:" + "s" * 40 + ",k 2:" + "t" * 40, "entry 2 must be `id:secret`"),
        ("k1:" + "s" * 40 + ",k1:" + "t" * 40, "key 'k1' is listed twice"),
    ],
)
def test_a_malformed_audit_key_is_refused_without_showing_a_secret(keys, error):
    result = manage("check", SECRET_KEY="z" * 60, ALLOWED_HOSTS="portal.example.com", PORTAL_AUDIT_KEYS=keys)
    assert result.returncode != 0
    assert f"PORTAL_AUDIT_KEYS: {error}" in result.stderr
    assert "s" * 40 not in result.stderr and "too-short-a-secret" not in result.stderr


def test_local_mode_has_an_audit_key_without_configuration():
    script = "from django.conf import settings; print([key_id for key_id, _ in settings.PORTAL_AUDIT_KEYS])"
    result = manage_py(
        "shell", "-c", script, settings="portal.settings.local", PORTAL_AUDIT_KEYS="", LOG_LEVEL="WARNING"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "['local']"


def test_production_refuses_to_start_without_allowed_hosts():
    result = manage("check", SECRET_KEY="z" * 60)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS must be set" in result.stderr


def test_production_treats_an_empty_secret_key_as_missing():
    result = manage("check", SECRET_KEY="", ALLOWED_HOSTS="portal.example.com")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_a_secret_key_is_taken_as_written_even_when_it_begins_with_a_dollar():
    """Django's generated keys can begin with `$`, which django-environ would otherwise read as another variable's
    name (and print the rest of the key in its error)."""
    secret = "$" + "k" * 20 + "-generated-looking-secret-" + "q" * 20
    script = "from django.conf import settings; print(settings.SECRET_KEY)"
    result = manage("shell", "-c", script, SECRET_KEY=secret, ALLOWED_HOSTS="portal.example.com", LOG_LEVEL="WARNING")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == secret


def test_a_number_that_does_not_parse_names_its_variable():
    result = manage("check", SECRET_KEY="z" * 60, ALLOWED_HOSTS="portal.example.com", AXES_FAILURE_LIMIT="five")
    assert result.returncode != 0
    assert "AXES_FAILURE_LIMIT must be a whole number, got 'five'" in result.stderr
    result = manage("check", SECRET_KEY="z" * 60, ALLOWED_HOSTS="portal.example.com", PORTAL_SWEEP_INTERVAL="30s")
    assert result.returncode != 0
    assert "PORTAL_SWEEP_INTERVAL must be a number, got '30s'" in result.stderr


def test_blank_items_of_a_list_are_no_items():
    """A stray comma must not allow files without an extension, nor an empty host name."""
    script = "from django.conf import settings; print(settings.ALLOWED_HOSTS, settings.PORTAL_ALLOWED_FILE_EXTENSIONS)"
    result = manage(
        "shell",
        "-c",
        script,
        SECRET_KEY="z" * 60,
        ALLOWED_HOSTS="portal.example.com, ,",
        PORTAL_ALLOWED_FILE_EXTENSIONS="txt, ,pdf,",
        LOG_LEVEL="WARNING",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "['portal.example.com'] ['txt', 'pdf']"


def database_settings(**env) -> dict:
    script = "import json; from django.conf import settings; print(json.dumps(settings.DATABASES['default']))"
    result = manage(
        "shell", "-c", script, SECRET_KEY="z" * 60, ALLOWED_HOSTS="portal.example.com", LOG_LEVEL="WARNING", **env
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_keeps_database_connections_across_quiet_spells():
    """A declaration after a quiet minute must not wait for new connections; an idle one still notices a database
    that went away, and an operator behind PgBouncer can ask for a connection per request."""
    database = database_settings(DATABASE_URL="postgres://portal@db.example.com:5432/portal")
    assert database["CONN_MAX_AGE"] is None
    assert database["CONN_HEALTH_CHECKS"] is True
    assert database["OPTIONS"]["keepalives_idle"] <= 300  # below the common NAT idle timeouts (AWS: 350 s)
    per_request = database_settings(
        DATABASE_URL="postgres://portal@db.example.com:5432/portal", DATABASE_CONN_MAX_AGE="0"
    )
    assert per_request["CONN_MAX_AGE"] == 0


PREPARED_AFTER_REPEATS = """
from django.db import connection
with connection.cursor() as cursor:
    for _ in range(6):
        cursor.execute("SELECT %s::int + 1", [41])
    cursor.execute("SELECT count(*) FROM pg_prepared_statements")
    print(cursor.fetchone()[0])
"""


def test_production_prepares_the_statements_it_repeats_unless_told_not_to(django_db_setup):
    """PostgreSQL parses and plans a statement the portal repeats once per connection, not on every request; behind
    a pooler in transaction mode that cannot keep prepared statements, an operator turns that off."""
    database_url = worker_database_url()

    def prepared_statements(**env) -> int:
        result = manage(
            "shell",
            "-c",
            PREPARED_AFTER_REPEATS,
            SECRET_KEY="z" * 60,
            ALLOWED_HOSTS="portal.example.com",
            LOG_LEVEL="WARNING",
            DATABASE_URL=database_url,
            **env,
        )
        assert result.returncode == 0, result.stderr
        return int(result.stdout.strip().splitlines()[-1])

    assert prepared_statements() == 1
    assert prepared_statements(DATABASE_PREPARED_STATEMENTS="0") == 0


def test_the_test_worker_loses_any_deadlock_with_the_flush_between_tests(django_db_setup):
    """The flush between transactional tests must never be the statement PostgreSQL aborts (rows would be left for
    the next test): the worker the tests start keeps the short deadlock_timeout its database URL asks for."""
    show = "from django.db import connection as c; print(c.cursor().execute('SHOW deadlock_timeout').fetchone()[0])"
    result = manage_py("shell", "-c", show, settings="portal.settings.test", DATABASE_URL=worker_database_url())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "50ms"


def test_gunicorn_config_lets_a_long_export_finish(monkeypatch):
    """gunicorn kills a sync worker that sends nothing for `timeout` s: the 30 s default cut a million-row CSV export
    off mid-file on a slow machine. The settings go through gunicorn's own validation, as `gunicorn` would load them."""
    for name in ("GUNICORN_TIMEOUT", "GUNICORN_WORKERS", "GUNICORN_BIND"):
        monkeypatch.delenv(name, raising=False)
    config = Config()
    for name, value in runpy.run_path(str(ROOT / "gunicorn.conf.py")).items():
        if name in config.settings:
            config.set(name, value)
    assert config.wsgi_app == "portal.wsgi"
    assert config.timeout >= 300
    assert config.workers == 2 * multiprocessing.cpu_count() + 1
    # Only this machine (the proxy) reaches gunicorn by default, and gunicorn itself believes no forwarding header:
    # the portal judges them against its own list of proxies.
    assert config.bind == ["127.0.0.1:8000"]
    assert config.forwarded_allow_ips == []


PRODUCTION = {"SECRET_KEY": "z" * 60, "ALLOWED_HOSTS": "portal.example.com", "LOG_LEVEL": "WARNING"}


def production_values(*names: str, **env: str) -> dict:
    script = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}, default=str))"
    )
    result = manage("shell", "-c", script, **PRODUCTION, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_believes_the_proxys_https_header_only_once_a_proxy_is_configured():
    """X-Forwarded-Proto: https used to be believed from any client."""
    direct = production_values("SECURE_PROXY_SSL_HEADER", "PORTAL_PROXY_HOPS", "AXES_CLIENT_IP_CALLABLE")
    assert direct == {
        "SECURE_PROXY_SSL_HEADER": None,
        "PORTAL_PROXY_HOPS": 0,
        "AXES_CLIENT_IP_CALLABLE": "incidents.http.client_ip",  # the lockout keys on the audit trail's address
    }
    behind = production_values("SECURE_PROXY_SSL_HEADER", "PORTAL_TRUSTED_PROXIES", PORTAL_PROXY_HOPS="1")
    assert behind["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert behind["PORTAL_TRUSTED_PROXIES"] == ["127.0.0.1/32", "::1/128"]
    custom = production_values(
        "SECURE_PROXY_SSL_HEADER",
        PORTAL_PROXY_HOPS="2",
        PORTAL_PROXY_PROTO_HEADER="X-Scheme",
        PORTAL_TRUSTED_PROXIES="10.0.0.0/8, fd00::/8",
    )
    assert custom["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_SCHEME", "https"]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PORTAL_TRUSTED_PROXIES", "10.0.0.1/8", "PORTAL_TRUSTED_PROXIES must be IP addresses or networks"),
        ("PORTAL_OPERATOR_NETWORKS", "intranet", "PORTAL_OPERATOR_NETWORKS must be IP addresses or networks"),
        ("PORTAL_PROXY_HOPS", "-1", "PORTAL_PROXY_HOPS must be 0"),
        ("PORTAL_OPERATOR_TOKEN", "short", "PORTAL_OPERATOR_TOKEN must be at least 24 characters"),
    ],
)
def test_proxy_and_operator_settings_that_do_not_parse_name_their_variable(variable, value, message):
    result = manage("check", **PRODUCTION, **{variable: value})
    assert result.returncode != 0
    assert message in result.stderr


# --- What production installs and runs --------------------------------------------------------------------------


def test_a_production_install_leaves_the_development_groups_out():
    """Production installed the development group too: moto and Flask (the sandbox), Playwright, awscli, pytest."""
    planned = subprocess.run(["make", "-n", "production"], cwd=ROOT, capture_output=True, text=True, check=True)
    sync = next(shlex.split(line) for line in planned.stdout.splitlines() if " sync " in line)
    export = [*sync[: sync.index("sync")], "export", *sync[sync.index("sync") + 1 :], "--no-hashes"]
    listed = subprocess.run(export, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    packages = {line.split("==")[0].strip().lower() for line in listed.splitlines() if "==" in line}
    assert {"django", "gunicorn", "celery", "boto3", "psycopg", "django-axes", "django-ninja"} <= packages
    assert not packages & {"moto", "flask", "playwright", "awscli", "pytest", "mypy", "ruff", "schemathesis"}


def test_the_sandbox_refuses_to_run_outside_local_mode():
    result = manage("sandbox", **PRODUCTION)
    assert result.returncode == 1
    assert "runs in local mode only" in result.stderr
    assert "portal.settings.production" in result.stderr
    assert "Traceback" not in result.stderr  # said plainly, before reaching for moto (not installed in production)
    with pytest.raises(CommandError, match="runs in local mode only"):
        call_command("sandbox")  # the test settings are not local mode either

"""Production settings: safe by default, and refusing to start without their secrets."""

import json
import multiprocessing
import runpy

import pytest
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

"""The outbox sweeper, bounded retries, the global rate limit and the task settings that make delivery safe."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from incidents import tasks
from incidents.aws.client import _client, reset_clients, start_incident
from incidents.aws.ratelimit import RateLimitBusy, _redis, rate_limit_wait, reset_connections
from incidents.models import Declaration, RateLimitBucket
from incidents.selectors.declarations import declaration_for_start
from incidents.services.attachments import RelatedItemInput
from incidents.services.declarations import _declaration_for_key, declaration_create, declaration_dispatch
from incidents.services.starting import StartRetryable, declaration_start
from incidents.services.sweeper import declarations_sweep
from portal.celery import app
from tests.helpers import upload


def make_declaration(user, plan, **fields) -> Declaration:
    declaration, _ = declaration_create(declared_by=user, response_plan=plan, title="Stuck")
    if fields:
        Declaration.objects.filter(pk=declaration.pk).update(**fields)
        declaration.refresh_from_db()
    return declaration


def later(seconds: float):
    return timezone.now() + timedelta(seconds=seconds)


# --- The sweeper ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_declaration_never_handed_to_the_broker_is_redispatched(
    support_user, plans, django_capture_on_commit_callbacks
):
    declaration = make_declaration(support_user, plans["website-outage"])
    # As when the broker was down at declaration time: the failed publish cleared the hand-over time.
    Declaration.objects.filter(pk=declaration.pk).update(dispatched_at=None)

    too_soon = declarations_sweep(now=later(settings.PORTAL_SWEEP_QUEUED_AFTER / 2))
    assert too_soon.total == 0, "a fresh declaration is left to its own dispatch"

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = declarations_sweep(now=later(settings.PORTAL_SWEEP_QUEUED_AFTER + 1))
    assert result.queued == [declaration.pk]
    assert len(callbacks) == 1, "one dispatch, after the sweep's transaction commits"
    event = declaration.audit_events.get(action="declaration.redispatched")
    assert event.actor_label == "system"
    assert event.details["state"] == "queued"
    assert event.details["client_token"] == declaration.client_token


@pytest.mark.django_db
def test_a_claimed_declaration_is_not_swept_again_until_the_threshold_passes_again(support_user, plans):
    declaration = make_declaration(support_user, plans["website-outage"])
    sweep_at = later(settings.PORTAL_SWEEP_QUEUED_AFTER + 1)
    assert declarations_sweep(now=sweep_at).queued == [declaration.pk]
    assert declarations_sweep(now=sweep_at + timedelta(seconds=1)).total == 0
    again = sweep_at + timedelta(seconds=settings.PORTAL_SWEEP_QUEUED_AFTER + 1)
    assert declarations_sweep(now=again).queued == [declaration.pk]


@pytest.mark.django_db
def test_a_declaration_starting_for_too_long_is_redispatched_but_finished_ones_never(support_user, plans):
    plan = plans["website-outage"]
    long_ago = timezone.now() - timedelta(seconds=settings.PORTAL_SWEEP_STARTING_AFTER + 5)
    starting = make_declaration(support_user, plan, state=Declaration.State.STARTING, attempts=1)
    Declaration.objects.filter(pk=starting.pk).update(updated_at=long_ago)
    recent = make_declaration(support_user, plan, state=Declaration.State.STARTING, attempts=1)
    make_declaration(support_user, plan, state=Declaration.State.STARTED, created_at=long_ago)
    make_declaration(support_user, plan, state=Declaration.State.FAILED, created_at=long_ago)

    result = declarations_sweep()
    assert result.starting == [starting.pk]
    assert recent.pk not in result.starting
    assert result.queued == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_sweepers_skip_rows_another_one_holds(support_user, plans, monkeypatch):
    dispatched = []
    for module in ("declarations", "sweeper"):  # as declared, then as swept
        monkeypatch.setattr(
            f"incidents.services.{module}.declaration_dispatch",
            lambda *, declaration_id: dispatched.append(declaration_id),
        )
    plan = plans["website-outage"]
    first = make_declaration(support_user, plan)
    second = make_declaration(support_user, plan)
    sweep_at = later(settings.PORTAL_SWEEP_QUEUED_AFTER + 1)
    locked, release = threading.Event(), threading.Event()

    def other_sweeper_holding_first():
        with transaction.atomic():
            list(Declaration.objects.select_for_update().filter(pk=first.pk))
            locked.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=other_sweeper_holding_first)
    holder.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        result = declarations_sweep(now=sweep_at)
        assert time.monotonic() - started < 5, "a sweeper never waits for a row another one holds"
        assert result.queued == [second.pk]
    finally:
        release.set()
        holder.join()
    assert declarations_sweep(now=sweep_at).queued == [first.pk], "the second one was claimed"
    assert dispatched == [first.pk, second.pk, second.pk, first.pk]


@pytest.mark.django_db
def test_the_sweep_command_reports_what_it_redispatched(support_user, plans, settings, capsys):
    settings.PORTAL_SWEEP_QUEUED_AFTER = 0
    make_declaration(support_user, plans["website-outage"], created_at=timezone.now() - timedelta(seconds=5))
    call_command("sweep_declarations")
    assert "Re-dispatched 1 queued, 0 starting" in capsys.readouterr().out


# --- Bounded retries and a clear final failure -------------------------------------------------------


@pytest.fixture
def one_botocore_attempt(settings):
    settings.AWS_MAX_ATTEMPTS = 1
    reset_clients()
    yield
    reset_clients()


@pytest.mark.django_db(transaction=True)
def test_the_declaration_being_started_is_locked_with_what_startincident_needs(support_user, plans, monkeypatch):
    monkeypatch.setattr(  # no worker takes it
        "incidents.services.declarations.declaration_dispatch", lambda *, declaration_id: True
    )
    plan = plans["website-outage"]
    declaration = make_declaration(support_user, plan)

    def lock_from_another_connection():
        try:
            with transaction.atomic():
                list(Declaration.objects.select_for_update(nowait=True).filter(pk=declaration.pk))
            return "locked"
        except DatabaseError:
            return "refused"
        finally:
            connection.close()

    with transaction.atomic():
        held = declaration_for_start(declaration.pk)
        with ThreadPoolExecutor(1) as other:
            assert other.submit(lock_from_another_connection).result() == "refused"
        assert (held.pk, held.client_token, held.title, held.state) == (
            declaration.pk,
            declaration.client_token,
            "Stuck",
            Declaration.State.QUEUED,
        )
        assert (held.response_plan.arn, held.declared_by.get_username()) == (plan.arn, support_user.username)
        # The rest of the plan and the person is there when asked for.
        assert (held.response_plan.name, held.declared_by.email) == (plan.name, support_user.email)
    with ThreadPoolExecutor(1) as other:
        assert other.submit(lock_from_another_connection).result() == "locked"
    with pytest.raises(Declaration.DoesNotExist), transaction.atomic():
        declaration_for_start(declaration.pk + 1000)


@pytest.mark.django_db
def test_an_attempt_that_overlaps_a_finished_one_changes_nothing(support_user, plans, sandbox, monkeypatch):
    # A redelivered message starts a second attempt while the first is still waiting for AWS; the second one
    # finishes first. The first must then leave the outcome and the audit trail as the second wrote them.
    declaration = make_declaration(support_user, plans["website-outage"])
    real_start_incident = start_incident
    overlapping = []

    def first_call_overlapped_by_a_second_attempt(request):
        if not overlapping:
            overlapping.append("the second attempt")
            overlapping[0] = declaration_start(declaration_id=declaration.pk, final_attempt=False)
        return real_start_incident(request)

    monkeypatch.setattr("incidents.aws.client.start_incident", first_call_overlapped_by_a_second_attempt)
    first = declaration_start(declaration_id=declaration.pk, final_attempt=False)

    declaration.refresh_from_db()
    assert declaration.state == first.state == Declaration.State.STARTED
    assert declaration.incident_record_arn == overlapping[0].incident_record_arn == first.incident_record_arn
    assert declaration.attempts == 2
    actions = list(declaration.audit_events.values_list("action", flat=True))
    assert actions == ["declaration.queued", "declaration.starting", "declaration.starting", "declaration.started"]
    # Both calls carried the same client token: AWS started one incident.
    assert [call["params"]["clientToken"] for call in sandbox.calls()] == [declaration.client_token] * 2


@pytest.mark.django_db
@pytest.mark.usefixtures("one_botocore_attempt")
def test_attempts_are_bounded_by_the_database_even_when_messages_are_redelivered(support_user, plans, sandbox):
    sandbox.inject(operation="StartIncident", error_rate=1.0)
    declaration = make_declaration(support_user, plans["website-outage"])
    limit = settings.PORTAL_START_MAX_RETRIES + 1
    for _ in range(limit - 1):
        # Each delivery looks like a first one to Celery (a sweeper's or a lost worker's redelivery).
        with pytest.raises(StartRetryable):
            declaration_start(declaration_id=declaration.pk, final_attempt=False)
    declaration = declaration_start(declaration_id=declaration.pk, final_attempt=False)
    assert declaration.state == Declaration.State.FAILED
    assert declaration.attempts == limit
    assert declaration.failure_reason.endswith(f"(gave up after {limit} attempts)")
    assert len(sandbox.calls()) == limit
    assert {c["params"]["clientToken"] for c in sandbox.calls()} == {declaration.client_token}
    # Another delivery after the end does nothing at all.
    declaration_start(declaration_id=declaration.pk, final_attempt=False)
    assert len(sandbox.calls()) == limit


def test_retry_backoff_stays_far_below_the_visibility_timeout():
    worst = max(tasks.retry_countdown(retries) for retries in range(30) for _ in range(20))
    assert worst <= settings.PORTAL_VISIBILITY_TIMEOUT / 10
    assert settings.PORTAL_SWEEP_STARTING_AFTER < settings.PORTAL_VISIBILITY_TIMEOUT
    assert settings.CELERY_TASK_TIME_LIMIT < settings.PORTAL_SWEEP_STARTING_AFTER


def test_delivery_settings_make_tasks_at_least_once_and_safe():
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] == settings.PORTAL_VISIBILITY_TIMEOUT
    assert conf.result_backend_transport_options["visibility_timeout"] == settings.PORTAL_VISIBILITY_TIMEOUT
    start = app.tasks["incidents.tasks.start_declaration"]
    assert start.acks_late and start.reject_on_worker_lost


def test_every_task_has_an_explicit_queue_and_the_periodic_ones_are_scheduled():
    app.loader.import_default_modules()
    ours = {name for name in app.tasks if name.startswith("incidents.")}
    assert ours >= {"incidents.tasks.start_declaration", "incidents.tasks.sweep_declarations"}
    assert ours <= set(settings.CELERY_TASK_ROUTES), f"unrouted: {ours - set(settings.CELERY_TASK_ROUTES)}"
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"incidents.tasks.sweep_declarations", "incidents.tasks.record_worker_heartbeat"} <= scheduled


def test_botocore_has_explicit_timeouts_and_the_standard_retry_mode(sandbox_server):
    reset_clients()
    config = _client("ssm-incidents").meta.config
    assert config.retries["mode"] == "standard"
    assert config.retries["total_max_attempts"] == settings.AWS_MAX_ATTEMPTS
    assert (config.connect_timeout, config.read_timeout) == (settings.AWS_CONNECT_TIMEOUT, settings.AWS_READ_TIMEOUT)


# --- The global rate limit --------------------------------------------------------------------------------


def test_the_shared_rate_limit_spaces_calls_from_every_thread_and_process(settings):
    _redis().delete("portal:ratelimit:test-spacing")
    stamps: list[float] = []
    lock = threading.Lock()

    def caller():
        for _ in range(4):
            rate_limit_wait(name="test-spacing", per_second=20, burst=1, max_wait=5)
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    # 16 calls at 20 per second with no burst: at least 15 intervals of 50 ms between first and last.
    assert stamps[-1] - stamps[0] >= 15 * 0.05 - 0.02


def test_a_caller_that_would_wait_too_long_is_told_to_come_back_later():
    _redis().delete("portal:ratelimit:test-busy")
    rate_limit_wait(name="test-busy", per_second=1, burst=1, max_wait=0)
    with pytest.raises(RateLimitBusy):
        rate_limit_wait(name="test-busy", per_second=1, burst=1, max_wait=0.5)


@pytest.mark.django_db
def test_without_redis_the_rate_limit_is_kept_in_the_database(settings):
    settings.PORTAL_RATE_LIMIT_STORE = "database"  # as on `make run`'s embedded broker
    settings.PORTAL_RATE_LIMIT_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens: never asked
    reset_connections()
    try:
        rate_limit_wait(name="test-database", per_second=1, burst=1, max_wait=0)
        with pytest.raises(RateLimitBusy):
            rate_limit_wait(name="test-database", per_second=1, burst=1, max_wait=0.5)
    finally:
        reset_connections()
    assert RateLimitBucket.objects.get(name="test-database").next_arrival > time.time()


@pytest.mark.django_db
def test_a_busy_rate_limit_is_a_retryable_failure_not_a_lost_declaration(
    support_user, plans, sandbox, settings, one_botocore_attempt
):
    settings.PORTAL_START_RATE_LIMIT_PER_SECOND = 0.01
    settings.PORTAL_START_RATE_LIMIT_BURST = 1
    settings.PORTAL_START_RATE_LIMIT_MAX_WAIT = 1
    _redis().delete("portal:ratelimit:start-incident")
    first = make_declaration(support_user, plans["website-outage"])
    second = make_declaration(support_user, plans["payments-degraded"])
    assert declaration_start(declaration_id=first.pk, final_attempt=False).state == "started"
    with pytest.raises(StartRetryable) as raised:
        declaration_start(declaration_id=second.pk, final_attempt=False)
    assert raised.value.error.code == "PortalRateLimited"
    assert len(sandbox.calls()) == 1, "the refused call never reached AWS"
    _redis().delete("portal:ratelimit:start-incident")


# --- Idempotency under a race ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_concurrent_post_with_the_same_key_gets_the_declaration_the_first_one_made(support_user, plans, monkeypatch):
    plan = plans["website-outage"]
    files = [RelatedItemInput(kind="file", upload=upload("notes.txt", b"notes"))]
    first, created = declaration_create(
        declared_by=support_user, response_plan=plan, idempotency_key="k1", related_items=files
    )
    assert created
    real_lookup = _declaration_for_key
    lookups = []

    def lookup_that_lost_the_race(key, declared_by, fingerprint):
        # The first lookup runs before the other request commits; the second one, after the unique key clashed.
        lookups.append(key)
        return None if len(lookups) == 1 else real_lookup(key, declared_by, fingerprint)

    monkeypatch.setattr("incidents.services.declarations._declaration_for_key", lookup_that_lost_the_race)
    files = [RelatedItemInput(kind="file", upload=upload("notes.txt", b"notes"))]
    second, created = declaration_create(
        declared_by=support_user, response_plan=plan, idempotency_key="k1", related_items=files
    )
    assert (second.pk, created) == (first.pk, False)
    assert Declaration.objects.count() == 1


@pytest.mark.django_db
def test_a_repeated_key_without_files_is_answered_by_the_databases_unique_key(support_user, plans):
    plan = plans["website-outage"]
    first, created = declaration_create(declared_by=support_user, response_plan=plan, idempotency_key="k2")
    second, again = declaration_create(declared_by=support_user, response_plan=plan, idempotency_key="k2")
    assert (created, again) == (True, False)
    assert second.pk == first.pk
    assert Declaration.objects.count() == 1


@pytest.mark.django_db
def test_a_publish_that_fails_leaves_the_declaration_queued_and_never_handed_over(support_user, plans, monkeypatch):
    from kombu.exceptions import OperationalError

    declaration = make_declaration(support_user, plans["website-outage"])
    assert declaration.dispatched_at is not None, "stored as handed over, as the publish follows the commit"

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(app, "send_task", broker_down)
    assert declaration_dispatch(declaration_id=declaration.pk) is False
    declaration.refresh_from_db()
    assert declaration.state == Declaration.State.QUEUED
    assert declaration.dispatched_at is None, "the sweeper sees it was never handed to a worker"

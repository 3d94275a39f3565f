"""Fault injection: every accepted declaration ends as exactly one incident, whatever breaks on the way.

Real prefork workers, a private Redis, PostgreSQL and the sandbox. `make chaos` runs the issue's counts
(CHAOS_SCALE=full); `make test` runs the same scenarios small. Each prints: accepted, created, lost, duplicated.
"""

import collections
import threading
import time
import uuid

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from incidents.models import AttachmentState, Declaration
from incidents.services.declarations import declaration_create
from tests.chaos.conftest import annotate, scale, tally
from tests.helpers import declare_post, upload

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True), pytest.mark.timeout(1800)]

DECLARE = reverse("incidents:declare")
PLANS = ["website-outage", "payments-degraded", "data-pipeline-delay", "internal-tooling"]  # no dedupeString


def run_id() -> str:
    return uuid.uuid4().hex[:6]


def declare_many(user, plans, count: int, label: str) -> list[int]:
    """Declarations as the form makes them (same service), each with a unique title to count incidents by."""
    ids = []
    for n in range(count):
        declaration, _ = declaration_create(
            declared_by=user, response_plan=plans[PLANS[n % len(PLANS)]], title=f"{label} #{n}"
        )
        ids.append(declaration.pk)
    return ids


def post_declaration(client: Client, plan, title: str, **kwargs):
    started = time.monotonic()
    # Each a new incident on purpose: the same person declaring the same plan again within minutes is asked first.
    response = client.post(DECLARE, {**declare_post(plan, title=title, **kwargs), "action": "declare-again"})
    return response, time.monotonic() - started


# --- Scenarios ----------------------------------------------------------------------------------------------


def test_sigkill_a_worker_during_start_incident(rig, support_user, plans, sandbox, sandbox_server, ssm_incidents):
    """SIGKILL the pool process while StartIncident is in flight; one kill in five crashes the whole worker."""
    kills = scale(50, 4)
    worker, other = rig.workers
    other.stop()
    worker.stop()
    rig.start_workers(count=1, concurrency=1)
    # Slow answers keep each call in flight long enough to be killed during it (AWS still performs it).
    sandbox.inject(operation="StartIncident", latency_ms=300)
    label = f"sigkill {run_id()}"
    ids = declare_many(support_user, plans, kills, label)

    done, crashes, last_kill = 0, 0, 0.0
    deadline = time.monotonic() + 60 + kills * 10
    while done < kills and time.monotonic() < deadline:
        in_flight = [
            c
            for c in sandbox_server.calls.list("StartIncident")
            if c["status"] is None and c["received_at"] > last_kill
        ]
        if not in_flight:
            if not Declaration.objects.filter(pk__in=ids).exclude(state="started").exists():
                break
            time.sleep(0.02)
            continue
        last_kill = time.time()
        if done % 5 == 2:
            worker.crash()
            crashes += 1
            worker.start()
            worker.wait_ready()
        elif not worker.kill_child():
            continue
        done += 1
        time.sleep(0.3)  # let the pool replace its process before the next kill

    sandbox.clear_faults()
    rig.start_workers(count=2, concurrency=2)
    tally(
        "SIGKILL worker during StartIncident",
        ids,
        ssm_incidents,
        timeout=120,
        note=f"{done} kills, {crashes} of them whole-worker crashes",
    )
    assert done >= kills * 0.8, f"only {done} kills landed during StartIncident"


def test_aws_response_lost_after_the_incident_was_created(rig, support_user, plans, sandbox, ssm_incidents):
    count = scale(50, 5)
    sandbox.inject(operation="StartIncident", lose_response_next=count)
    ids = declare_many(support_user, plans, count, f"lost response {run_id()}")
    outcome = tally("AWS response lost after creation", ids, ssm_incidents, timeout=120)
    lost_calls = [c for c in sandbox.calls() if c["status"] == "lost"]
    assert len(lost_calls) == count, "every declaration's first answer was lost"
    assert outcome.created == count


def test_redis_restarted_without_persistence_while_declarations_are_queued(
    rig, support_user, plans, sandbox, ssm_incidents
):
    count = scale(50, 5)
    rig.stop_workers()
    try:
        ids = declare_many(support_user, plans, count, f"redis restart {run_id()}")
        assert rig.redis.queued() >= count, "the messages sat in Redis"
        rig.redis.restart()
        assert rig.redis.queued() == 0, "the restart lost every queued message"
    finally:
        rig.start_workers()
    tally("Redis restarted (no persistence)", ids, ssm_incidents, timeout=120, note="rescued by the sweeper")


def test_broker_down_while_people_declare(rig, support_user, plans, sandbox, ssm_incidents):
    count = scale(20, 3)
    client = Client()
    client.force_login(support_user)
    label = f"broker down {run_id()}"
    rig.redis.stop()
    slowest = 0.0
    try:
        for n in range(count):
            response, seconds = post_declaration(client, plans[PLANS[n % len(PLANS)]], f"{label} #{n}")
            slowest = max(slowest, seconds)
            assert response.status_code == 302, "the form accepts the declaration with the broker down"
            page = client.get(response["Location"]).content.decode()
            assert "Queued" in page and "Stored and waiting for a worker" in page
    finally:
        rig.redis.start()
    assert slowest < 2, f"the slowest declaration took {slowest:.2f} s with the broker down"
    ids = list(Declaration.objects.filter(title__startswith=label).values_list("pk", flat=True))
    assert Declaration.objects.filter(pk__in=ids, dispatched_at__isnull=True).count() == count
    tally("Broker down while people declare", ids, ssm_incidents, timeout=120, note=f"slowest form {slowest:.2f} s")


def test_aws_throttling_and_server_errors_for_a_while(rig, support_user, plans, sandbox, ssm_incidents):
    duration = scale(60, 6)
    count = scale(60, 8)
    sandbox.inject(operation="StartIncident", throttle_rate=0.3, error_rate=0.2, duration_s=duration, seed=11)
    label = f"flaky aws {run_id()}"
    ids, started = [], time.monotonic()
    for n in range(count):
        # Spread over the fault window, as people would declare during an outage.
        target = started + n * (duration * 0.8 / count)
        time.sleep(max(0.0, target - time.monotonic()))
        ids += declare_many(support_user, plans, 1, f"{label} #{n}")
    faults = collections.Counter(c["fault"] for c in sandbox.calls())
    tally(
        "AWS throttling 30 % + 5xx 20 %",
        ids,
        ssm_incidents,
        timeout=180,
        note=f"{faults['throttle']} throttled, {faults['error']} 5xx answers",
    )


def test_burst_across_two_workers_never_exceeds_the_global_rate_limit(rig, support_user, plans, sandbox, ssm_incidents):
    count = scale(500, 40)
    rate = float(rig.env["PORTAL_START_RATE_LIMIT_PER_SECOND"])
    burst = int(rig.env["PORTAL_START_RATE_LIMIT_BURST"])
    rig.start_workers(count=2, concurrency=2)
    ids = declare_many(support_user, plans, count, f"burst {run_id()}")
    outcome = tally("Burst across 2 workers", ids, ssm_incidents, timeout=120 + count / rate * 2)

    stamps = sorted(c["received_at"] for c in sandbox.calls())
    assert len(stamps) >= count
    # GCRA's promise: in any window of W seconds at most burst + rate × W calls (one of slack for network jitter).
    worst, window = 0, 1.0
    for i, start in enumerate(stamps):
        j = i
        while j < len(stamps) and stamps[j] < start + window:
            j += 1
        worst = max(worst, j - i)
    allowed = burst + rate * window + 1
    elapsed = stamps[-1] - stamps[0]
    note = f"max {worst} calls in any 1 s (limit {rate:g}/s, burst {burst}), {len(stamps) / elapsed:.1f}/s overall"
    annotate(outcome, note)
    assert worst <= allowed, note


def test_double_submits_and_concurrent_posts_with_one_idempotency_key(rig, support_user, plans, sandbox, ssm_incidents):
    count = scale(50, 5)
    label = f"double submit {run_id()}"
    keys = []
    for n in range(count):
        data = {**declare_post(plans[PLANS[n % len(PLANS)]], title=f"{label} #{n}"), "action": "declare-again"}
        keys.append(data["idempotency_key"])
        answers = []

        def submit(data=data, answers=answers):
            client = Client(raise_request_exception=False)
            client.force_login(support_user)
            answers.append(client.post(DECLARE, data))
            connection.close()

        # Three people's worth of clicks: two concurrent POSTs, then the browser's resubmission.
        threads = [threading.Thread(target=submit) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        submit()
        assert [answer.status_code for answer in answers] == [302, 302, 302], "every click lands on the declaration"
        assert len({answer["Location"] for answer in answers}) == 1
    ids = list(Declaration.objects.filter(idempotency_key__in=keys).values_list("pk", flat=True))
    assert len(ids) == count, "one declaration per idempotency key"
    tally("Double submits / concurrent POSTs", ids, ssm_incidents, timeout=120, note=f"{3 * count} POSTs")


def test_s3_down_at_declaration_time(rig, support_user, plans, sandbox, ssm_incidents):
    count = scale(20, 2)
    client = Client()
    client.force_login(support_user)
    label = f"s3 down {run_id()}"
    sandbox.inject(s3_down=True)
    try:
        for n in range(count):
            items = [{"kind": "file", "file": upload(f"log-{n}.txt", f"line {n}\n".encode()), "title": "Log"}]
            response, _ = post_declaration(client, plans[PLANS[n % len(PLANS)]], f"{label} #{n}", items=items)
            assert response.status_code == 302
        ids = list(Declaration.objects.filter(title__startswith=label).values_list("pk", flat=True))
        outcome = tally("S3 down", ids, ssm_incidents, timeout=120)
    finally:
        sandbox.inject(s3_down=False)
    deadline = time.monotonic() + 120
    files = Declaration.objects.filter(pk__in=ids)
    while time.monotonic() < deadline:
        states = collections.Counter(
            files.values_list("related_items__attachment_state", flat=True)  # one file each
        )
        if states[AttachmentState.PENDING] == 0:
            break
        time.sleep(0.2)
    assert states == {AttachmentState.ATTACHED: count}, states
    for declaration in files:
        related = ssm_incidents.list_related_items(incidentRecordArn=declaration.incident_record_arn)["relatedItems"]
        assert [item["identifier"]["type"] for item in related] == ["ATTACHMENT"]
    annotate(outcome, f"{count} files attached afterwards")

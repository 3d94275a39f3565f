"""The AWS sandbox, exercised the way the portal uses it: real boto3 clients (and the aws CLI) over HTTP."""

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from sandbox import demo
from sandbox.server import Sandbox

ACCOUNT = "123456789012"
PLAN_ARN = f"arn:aws:ssm-incidents::{ACCOUNT}:response-plan/website-outage"
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}


@pytest.fixture(scope="module")
def server():
    sandbox = Sandbox(host="127.0.0.1", port=0).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def sb(server):
    """A freshly reset sandbox with the demo plans and bucket."""
    server.reset()
    demo.seed(server.url)
    return server


def client(sb, service="ssm-incidents", **config):
    return boto3.client(service, endpoint_url=sb.url, config=Config(**config), **CREDENTIALS)


def raw_client(sb):
    """No client-side validation and no retries: the request reaches the sandbox exactly as given."""
    return client(sb, parameter_validation=False, retries={"total_max_attempts": 1})


def control(sb, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{sb.url}{path}", data=data, method=method)
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 -- local sandbox URL
        return json.loads(response.read())


def error_of(excinfo):
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response


# -- response plans ------------------------------------------------------------------------------------------


def test_create_get_and_paginate_response_plans(sb):
    ssm = client(sb)
    created = ssm.create_response_plan(
        name="extra-plan", displayName="Extra", incidentTemplate={"title": "Extra", "impact": 5}
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["arn"] == f"arn:aws:ssm-incidents::{ACCOUNT}:response-plan/extra-plan"

    plan = ssm.get_response_plan(arn=PLAN_ARN)
    assert plan["incidentTemplate"]["title"] == "Customer-facing website is down"
    assert plan["incidentTemplate"]["impact"] == 1

    first = ssm.list_response_plans(maxResults=2)
    assert len(first["responsePlanSummaries"]) == 2 and first["nextToken"]
    names = [p["name"] for p in first["responsePlanSummaries"]]
    token = first["nextToken"]
    while token:
        page = ssm.list_response_plans(maxResults=2, nextToken=token)
        names += [p["name"] for p in page["responsePlanSummaries"]]
        token = page.get("nextToken")
    assert len(names) == 6 and names == sorted(names)
    paginated = ssm.get_paginator("list_response_plans").paginate(PaginationConfig={"PageSize": 4})
    assert sum(len(p["responsePlanSummaries"]) for p in paginated) == 6

    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        ssm.create_response_plan(name="extra-plan", incidentTemplate={"title": "Again", "impact": 5})
    assert error_of(excinfo)[:2] == ("ConflictException", 409)

    assert (
        ssm.update_response_plan(arn=created["arn"], incidentTemplateImpact=3)["ResponseMetadata"]["HTTPStatusCode"]
        == 204
    )
    assert ssm.get_response_plan(arn=created["arn"])["incidentTemplate"]["impact"] == 3
    ssm.delete_response_plan(arn=created["arn"])
    with pytest.raises(ssm.exceptions.ResourceNotFoundException):
        ssm.get_response_plan(arn=created["arn"])


# -- incidents -----------------------------------------------------------------------------------------------


def test_start_incident_takes_defaults_from_the_plan(sb):
    ssm = client(sb)
    arn = ssm.start_incident(responsePlanArn=PLAN_ARN)["incidentRecordArn"]
    assert arn.startswith(f"arn:aws:ssm-incidents::{ACCOUNT}:incident-record/website-outage/")
    record = ssm.get_incident_record(arn=arn)["incidentRecord"]
    assert record["title"] == "Customer-facing website is down"
    assert record["impact"] == 1
    assert record["status"] == "OPEN"
    assert record["summary"].startswith("The public website")
    assert record["incidentRecordSource"]["source"] == "aws.ssm-incidents.custom"
    assert record["incidentRecordSource"]["createdBy"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/")
    assert record["creationTime"] == record["lastModifiedTime"]


def test_start_incident_overrides_and_resolve(sb):
    ssm = client(sb)
    arn = ssm.start_incident(
        responsePlanArn=PLAN_ARN,
        title="Checkout page returns 502",
        impact=2,
        triggerDetails={
            "source": "com.example.incident-portal",
            "timestamp": 1_780_000_000,
            "triggerArn": f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:checkout-5xx",
        },
    )["incidentRecordArn"]
    record = ssm.get_incident_record(arn=arn)["incidentRecord"]
    assert (record["title"], record["impact"]) == ("Checkout page returns 502", 2)
    assert record["incidentRecordSource"]["source"] == "com.example.incident-portal"
    assert record["incidentRecordSource"]["resourceArn"].endswith("alarm:checkout-5xx")

    ssm.update_incident_record(arn=arn, status="RESOLVED")
    resolved = ssm.get_incident_record(arn=arn)["incidentRecord"]
    assert resolved["status"] == "RESOLVED" and "resolvedTime" in resolved

    summaries = ssm.list_incident_records(
        filters=[{"key": "status", "condition": {"equals": {"stringValues": ["RESOLVED"]}}}]
    )["incidentRecordSummaries"]
    assert [s["arn"] for s in summaries] == [arn]


def test_list_incident_records_paginates_newest_first(sb):
    ssm = client(sb)
    arns = [ssm.start_incident(responsePlanArn=PLAN_ARN, title=f"n{i}")["incidentRecordArn"] for i in range(5)]
    pages = ssm.get_paginator("list_incident_records").paginate(PaginationConfig={"PageSize": 2})
    listed = [s["arn"] for page in pages for s in page["incidentRecordSummaries"]]
    assert listed == arns[::-1]


def test_related_items_round_trip(sb):
    ssm = client(sb)
    key = "uploads/2026/11/screenshot.png"
    arn = ssm.start_incident(
        responsePlanArn=PLAN_ARN,
        relatedItems=[
            {"identifier": {"type": "OTHER", "value": {"url": "https://status.example.com"}}, "title": "Status"},
            {
                "identifier": {
                    "type": "ATTACHMENT",
                    "value": {"arn": f"arn:aws:s3:::incident-portal-attachments/{key}"},
                },
                "title": "screenshot.png",
            },
        ],
    )["incidentRecordArn"]
    items = ssm.list_related_items(incidentRecordArn=arn)["relatedItems"]
    assert [i["title"] for i in items] == ["Status", "screenshot.png"]
    assert all(i["generatedId"].startswith(f"related-item/{i['identifier']['type']}/") for i in items)

    metric = {"type": "METRIC", "value": {"metricDefinition": '{"metric": "5xx"}'}}
    ssm.update_related_items(incidentRecordArn=arn, relatedItemsUpdate={"itemToAdd": {"identifier": metric}})
    ssm.update_related_items(incidentRecordArn=arn, relatedItemsUpdate={"itemToRemove": items[0]["identifier"]})
    types = [i["identifier"]["type"] for i in ssm.list_related_items(incidentRecordArn=arn)["relatedItems"]]
    assert types == ["ATTACHMENT", "METRIC"]


def test_unknown_plan_is_resource_not_found(sb):
    ssm = client(sb)
    missing = f"arn:aws:ssm-incidents::{ACCOUNT}:response-plan/nope"
    with pytest.raises(ssm.exceptions.ResourceNotFoundException) as excinfo:
        ssm.start_incident(responsePlanArn=missing)
    code, status, response = error_of(excinfo)
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert response["resourceIdentifier"] == missing and response["resourceType"] == "RESPONSE_PLAN"
    assert response["ResponseMetadata"]["RequestId"]


# -- idempotency ---------------------------------------------------------------------------------------------


def test_client_token_idempotency(sb):
    ssm = client(sb)
    first = ssm.start_incident(responsePlanArn=PLAN_ARN, title="Down", clientToken="declaration-42")
    again = ssm.start_incident(responsePlanArn=PLAN_ARN, title="Down", clientToken="declaration-42")
    assert first["incidentRecordArn"] == again["incidentRecordArn"]
    assert len(sb.emulator.incident_records()) == 1

    with pytest.raises(ssm.exceptions.ConflictException) as excinfo:
        ssm.start_incident(responsePlanArn=PLAN_ARN, title="Different", clientToken="declaration-42")
    code, status, response = error_of(excinfo)
    assert (code, status) == ("ConflictException", 409)
    assert response["resourceIdentifier"] == first["incidentRecordArn"]
    assert len(sb.emulator.incident_records()) == 1


def test_dedupe_string_folds_into_open_incident(sb):
    ssm = client(sb)
    plan = f"arn:aws:ssm-incidents::{ACCOUNT}:response-plan/security-event"
    first = ssm.start_incident(responsePlanArn=plan)["incidentRecordArn"]
    assert ssm.start_incident(responsePlanArn=plan)["incidentRecordArn"] == first
    ssm.update_incident_record(arn=first, status="RESOLVED")
    assert ssm.start_incident(responsePlanArn=plan)["incidentRecordArn"] != first


# -- validation ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "path", "constraint"),
    [
        (
            {"responsePlanArn": PLAN_ARN + "a" * (1001 - len(PLAN_ARN))},
            "responsePlanArn",
            "length less than or equal to 1000",
        ),
        ({"responsePlanArn": "notanarn"}, "responsePlanArn", "regular expression pattern"),
        ({"responsePlanArn": PLAN_ARN, "impact": 9}, "impact", "value less than or equal to 5"),
        ({"responsePlanArn": PLAN_ARN, "title": "t" * 201}, "title", "length less than or equal to 200"),
        (
            {
                "responsePlanArn": PLAN_ARN,
                "relatedItems": [
                    {"identifier": {"type": "OTHER", "value": {"url": f"https://e.com/{i}"}}} for i in range(101)
                ],
            },
            "relatedItems",
            "length less than or equal to 100",
        ),
        (
            {
                "responsePlanArn": PLAN_ARN,
                "relatedItems": [{"identifier": {"type": "OTHER", "value": {"url": "https://e.com/" + "x" * 990}}}],
            },
            "relatedItems.1.member.identifier.value.url",
            "length less than or equal to 1000",
        ),
        (
            {"responsePlanArn": PLAN_ARN, "relatedItems": [{"identifier": {"type": "LINK", "value": {"url": "u"}}}]},
            "relatedItems.1.member.identifier.type",
            "enum value set",
        ),
        (
            {
                "responsePlanArn": PLAN_ARN,
                "relatedItems": [{"identifier": {"type": "OTHER", "value": {"url": "u", "arn": PLAN_ARN}}}],
            },
            "relatedItems.1.member.identifier.value",
            "exactly one of",
        ),
        ({"title": "no plan"}, "responsePlanArn", "must not be null"),
    ],
)
def test_validation_errors(sb, params, path, constraint):
    ssm = raw_client(sb)
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        ssm.start_incident(**params)
    code, status, response = error_of(excinfo)
    assert (code, status) == ("ValidationException", 400)
    message = response["Error"]["Message"]
    assert message.startswith("1 validation error detected: ")
    assert f"at '{path}' failed to satisfy constraint" in message
    assert constraint in message
    assert sb.emulator.incident_records() == []


def test_validation_message_matches_aws_wording(sb):
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        raw_client(sb).start_incident(responsePlanArn="notanarn", impact=0)
    message = excinfo.value.response["Error"]["Message"]
    assert message == (
        "2 validation errors detected: Value '0' at 'impact' failed to satisfy constraint: Member must have "
        "value greater than or equal to 1; Value 'notanarn' at 'responsePlanArn' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^arn:aws(-cn|-us-gov)?:[a-z0-9-]*:[a-z0-9-]*:"
        "([0-9]{12})?:.+$"
    )


def test_unimplemented_operation_is_a_clean_error(sb):
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client(sb).get_replication_set(arn=f"arn:aws:ssm-incidents::{ACCOUNT}:replication-set/x")
    code, status, response = error_of(excinfo)
    assert (code, status) == ("ValidationException", 400)
    assert "not implemented by the sandbox" in response["Error"]["Message"]


# -- fault injection -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "code", "status"),
    [
        ("throttle_next", "ThrottlingException", 429),
        ("error_next", "InternalServerException", 500),
        ("deny_next", "AccessDeniedException", 403),
    ],
)
def test_injected_faults_as_boto3_sees_them(sb, fault, code, status):
    control(sb, "POST", "/_sandbox/faults", {"operation": "StartIncident", fault: 1})
    ssm = client(sb, retries={"total_max_attempts": 1})
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        ssm.start_incident(responsePlanArn=PLAN_ARN)
    assert error_of(excinfo)[:2] == (code, status)
    if code == "ThrottlingException":
        assert excinfo.value.response["serviceCode"] == "ssm-incidents"
        assert excinfo.value.response["quotaCode"]
    assert sb.emulator.incident_records() == []  # a faulted call changes nothing
    ssm.start_incident(responsePlanArn=PLAN_ARN)  # the fault was used up
    calls = control(sb, "GET", "/_sandbox/calls?operation=StartIncident")["calls"]
    assert [(c["status"], c["fault"]) for c in calls] == [(status, fault.removesuffix("_next")), (200, None)]
    assert calls[0]["params"]["responsePlanArn"] == PLAN_ARN
    assert isinstance(calls[0]["received_at"], float)


def test_throttles_are_retried_by_botocore(sb):
    sb.faults.configure(operation="StartIncident", throttle_next=2)
    ssm = client(sb, retries={"mode": "standard", "max_attempts": 3})
    response = ssm.start_incident(responsePlanArn=PLAN_ARN, clientToken="retry-me")
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert len(sb.emulator.incident_records()) == 1


def test_lost_response_then_retry_creates_one_incident(sb):
    control(sb, "POST", "/_sandbox/faults", {"operation": "StartIncident", "lose_response_next": 1})
    no_retry = client(sb, retries={"total_max_attempts": 1})
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        no_retry.start_incident(responsePlanArn=PLAN_ARN, clientToken="declaration-7")
    assert len(sb.emulator.incident_records()) == 1  # performed although the client never heard back

    # What a retry (Celery or botocore) does: the same token, so the same incident comes back.
    arn = client(sb).start_incident(responsePlanArn=PLAN_ARN, clientToken="declaration-7")["incidentRecordArn"]
    assert [r["arn"] for r in sb.emulator.incident_records()] == [arn]
    statuses = [c["status"] for c in control(sb, "GET", "/_sandbox/calls?operation=StartIncident")["calls"]]
    assert statuses == ["lost", 200]


def test_botocore_retries_a_lost_response_itself(sb):
    sb.faults.configure(operation="StartIncident", lose_response_next=1)
    response = client(sb, retries={"mode": "standard", "max_attempts": 3}).start_incident(responsePlanArn=PLAN_ARN)
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert len(sb.emulator.incident_records()) == 1  # botocore re-sent its own generated clientToken


def test_fault_rates_latency_and_control_api(sb):
    state = control(sb, "POST", "/_sandbox/faults", {"error_rate": 1.0, "latency_ms": 50, "duration_s": 60})
    assert state["operations"]["*"]["error_rate"] == 1.0
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client(sb, retries={"total_max_attempts": 1}).list_response_plans()
    assert error_of(excinfo)[:2] == ("InternalServerException", 500)
    assert control(sb, "DELETE", "/_sandbox/faults") == {"operations": {}, "s3_down": False}
    client(sb).list_response_plans()

    with pytest.raises(urllib.error.HTTPError) as bad:
        control(sb, "POST", "/_sandbox/faults", {"throttle_next": "lots"})
    assert bad.value.code == 400
    assert control(sb, "GET", "/_sandbox/health") == {"ok": True}
    assert control(sb, "DELETE", "/_sandbox/calls") == {"calls": []}
    assert control(sb, "GET", "/_sandbox/calls") == {"calls": []}


def test_reset_clears_incident_state(sb):
    client(sb).start_incident(responsePlanArn=PLAN_ARN)
    assert control(sb, "POST", "/_sandbox/reset") == {"ok": True, "s3_reset": False}
    assert sb.emulator.incident_records() == [] and sb.emulator.plans == {}


# -- S3 ------------------------------------------------------------------------------------------------------


def test_s3_put_get_presigned_and_sse(sb):
    s3 = client(sb, "s3")
    bucket = demo.DEFAULT_BUCKET
    s3.put_object(Bucket=bucket, Key="a/report.txt", Body=b"hello", ServerSideEncryption="AES256")
    head = s3.head_object(Bucket=bucket, Key="a/report.txt")
    assert head["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="a/report.txt")["Body"].read() == b"hello"

    # botocore presigns with SigV2 unless told otherwise; both kinds must reach moto (SigV4 ones are routed by
    # their X-Amz-Credential scope, unsigned/SigV2 ones fall through to moto).
    for presigner, marker in (
        (s3, "AWSAccessKeyId="),
        (client(sb, "s3", signature_version="s3v4"), "X-Amz-Credential="),
    ):
        url = presigner.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "a/report.txt"}, ExpiresIn=60
        )
        assert url.startswith(sb.url) and marker in url
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 -- local sandbox URL
            assert response.read() == b"hello"


def test_s3_down_fault(sb):
    s3 = client(sb, "s3", retries={"total_max_attempts": 1})
    control(sb, "POST", "/_sandbox/faults", {"s3_down": True})
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        s3.put_object(Bucket=demo.DEFAULT_BUCKET, Key="k", Body=b"x")
    assert error_of(excinfo)[:2] == ("ServiceUnavailable", 503)
    client(sb).list_response_plans()  # ssm-incidents is unaffected

    control(sb, "POST", "/_sandbox/faults", {"s3_down": "connection"})
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        s3.put_object(Bucket=demo.DEFAULT_BUCKET, Key="k", Body=b"x")

    control(sb, "POST", "/_sandbox/faults", {"s3_down": False})
    s3.put_object(Bucket=demo.DEFAULT_BUCKET, Key="k", Body=b"x")


# -- the aws CLI ---------------------------------------------------------------------------------------------


def test_aws_cli_reads_incidents(sb):
    arn = client(sb).start_incident(responsePlanArn=PLAN_ARN, title="Seen from the CLI")["incidentRecordArn"]
    aws = str(Path(sys.executable).with_name("aws"))
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }

    def cli(*args):
        result = subprocess.run(
            [aws, "--endpoint-url", sb.url, "--output", "json", "ssm-incidents", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return json.loads(result.stdout)

    listed = cli("list-incident-records")
    assert [s["arn"] for s in listed["incidentRecordSummaries"]] == [arn]
    assert cli("get-incident-record", "--arn", arn)["incidentRecord"]["title"] == "Seen from the CLI"
    assert cli("list-related-items", "--incident-record-arn", arn)["relatedItems"] == []


def test_filters_timeline_and_tags(sb):
    ssm = client(sb)
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        ssm.list_incident_records(filters=[{"key": "color", "condition": {"equals": {"stringValues": ["red"]}}}])
    assert error_of(excinfo)[:2] == ("ValidationException", 400)

    arn = ssm.start_incident(responsePlanArn=PLAN_ARN)["incidentRecordArn"]
    high = ssm.list_incident_records(
        filters=[
            {"key": "impact", "condition": {"equals": {"integerValues": [1, 2]}}},
            {"key": "creationTime", "condition": {"after": 0}},
        ]
    )["incidentRecordSummaries"]
    assert [s["arn"] for s in high] == [arn]
    assert ssm.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "web", "severity": "critical"}
    assert [e["eventType"] for e in ssm.list_timeline_events(incidentRecordArn=arn)["eventSummaries"]] == [
        "SSM Incident Record Update"
    ]

"""Realistic demo data for the sandbox, created through boto3 so it travels the same path as the portal.

``seed(url_or_client)`` creates the response plans below (skipping any that already exist), the S3 attachments
bucket and the audit heads bucket (with Object Lock), and returns the plan ARNs.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from .ssm_incidents import ACCOUNT_ID

DEFAULT_BUCKET = "incident-portal-attachments"
DEFAULT_HEADS_BUCKET = "incident-portal-audit-heads"
REGION = "us-east-1"

# What Incident Manager's impact levels mean (from the AWS console's "Impact" picker).
IMPACT_LEVELS = {
    1: "Critical — full application failure that impacts many to all customers",
    2: "High — complete failure of an application component that impacts many customers",
    3: "Medium — partial failure of an application component that impacts some customers",
    4: "Low — intermittent failures with limited impact on customers",
    5: "No impact — customers aren't currently impacted but urgent action is needed to avoid impact",
}

_SNS = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}"
_CONTACTS = f"arn:aws:ssm-contacts:{REGION}:{ACCOUNT_ID}:contact"

DEMO_PLANS: list[dict[str, Any]] = [
    {
        "name": "website-outage",
        "displayName": "Website outage",
        "incidentTemplate": {
            "title": "Customer-facing website is down",
            "impact": 1,
            "summary": "The public website returns errors or does not load for customers. "
            "Check the load balancer health, the latest deploy and the CDN status page.",
            "notificationTargets": [{"snsTopicArn": f"{_SNS}:incident-critical"}],
            "incidentTags": {"team": "web", "severity": "critical"},
        },
        "chatChannel": {"chatbotSns": [f"{_SNS}:chatbot-incidents"]},
        "engagements": [f"{_CONTACTS}/web-oncall"],
        "tags": {"team": "web"},
    },
    {
        "name": "payments-degraded",
        "displayName": "Payments degraded",
        "incidentTemplate": {
            "title": "Payment processing is degraded",
            "impact": 2,
            "summary": "Card payments are failing or slow for a share of customers. "
            "Check the payment provider status and the checkout error rate.",
            "notificationTargets": [{"snsTopicArn": f"{_SNS}:incident-high"}],
        },
        "engagements": [f"{_CONTACTS}/payments-oncall"],
        "tags": {"team": "payments"},
    },
    {
        "name": "data-pipeline-delay",
        "displayName": "Data pipeline delay",
        "incidentTemplate": {
            "title": "Nightly data pipeline is delayed",
            "impact": 3,
            "summary": "Reports and dashboards are stale because the ETL pipeline has not finished. "
            "Check the scheduler and the warehouse load jobs.",
        },
        "tags": {"team": "data"},
    },
    {
        "name": "security-event",
        "displayName": "Security event",
        "incidentTemplate": {
            "title": "Potential security event under investigation",
            "impact": 2,
            "summary": "A possible security event was reported. Preserve evidence, do not discuss details "
            "outside the incident channel, and page the security on-call.",
            # One open security incident at a time: further starts fold into it.
            "dedupeString": "security-event",
            "notificationTargets": [{"snsTopicArn": f"{_SNS}:incident-security"}],
        },
        "engagements": [f"{_CONTACTS}/security-oncall"],
        "tags": {"team": "security"},
    },
    {
        "name": "internal-tooling",
        "displayName": "Internal tooling",
        "incidentTemplate": {
            "title": "Internal tooling is unavailable",
            "impact": 4,
            "summary": "An internal tool (wiki, CI, chat bridge) is down; customers are not affected.",
        },
        "tags": {"team": "platform"},
    },
]


def _client(url_or_client: Any, service: str):
    """A client for ``service`` at the sandbox, from its URL or from any client already pointed at it."""
    url = url_or_client if isinstance(url_or_client, str) else url_or_client.meta.endpoint_url
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 -- the sandbox accepts any credentials
        config=Config(retries={"max_attempts": 2, "mode": "standard"}),
    )


def create_bucket(url_or_client: Any, bucket: str = DEFAULT_BUCKET) -> None:
    s3 = _client(url_or_client, "s3")
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise


def create_write_once_bucket(url_or_client: Any, bucket: str = DEFAULT_HEADS_BUCKET) -> None:
    """A bucket with S3 Object Lock (and so versioning), as the audit chain's published heads need: an object
    written with a retention can be neither deleted nor overwritten until it expires."""
    s3 = _client(url_or_client, "s3")
    try:
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise


def seed(url_or_client: Any, bucket: str = DEFAULT_BUCKET, heads_bucket: str = DEFAULT_HEADS_BUCKET) -> list[str]:
    """Create the demo response plans and the buckets; safe to call twice. Returns the plan ARNs."""
    incidents = _client(url_or_client, "ssm-incidents")
    arns = []
    for plan in DEMO_PLANS:
        arn = f"arn:aws:ssm-incidents::{ACCOUNT_ID}:response-plan/{plan['name']}"
        try:
            arn = incidents.create_response_plan(**plan)["arn"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConflictException":
                raise
        arns.append(arn)
    create_bucket(url_or_client, bucket)
    create_write_once_bucket(url_or_client, heads_bucket)
    return arns


def seed_bulk_plans(url_or_client: Any, count: int, prefix: str = "bulk-plan") -> list[str]:
    """Create `count` plain response plans (for load tests of long plan lists); safe to call twice."""
    incidents = _client(url_or_client, "ssm-incidents")
    arns = []
    for number in range(count):
        name = f"{prefix}-{number:04d}"
        try:
            arn = incidents.create_response_plan(
                name=name,
                displayName=f"Service {number:04d} degraded",
                incidentTemplate={
                    "title": f"Service {number:04d} is degraded",
                    "impact": 1 + number % 5,
                    "summary": f"Errors or latency above the SLO for service {number:04d}.",
                },
            )["arn"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConflictException":
                raise
            arn = f"arn:aws:ssm-incidents::{ACCOUNT_ID}:response-plan/{name}"
        arns.append(arn)
    return arns

"""The rules a declaration must satisfy, shared by the web form and the API.

Limits come from botocore's model of StartIncident (via `aws.start_incident_limits`), so that a person gets a
clear error at the field instead of an AWS ValidationException later.
"""

import re
import unicodedata
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from . import aws

LIMITS = aws.start_incident_limits()
TITLE_MAX_LENGTH: int = LIMITS["title_max_length"]
URL_MAX_LENGTH: int = LIMITS["url_max_length"]
ARN_MAX_LENGTH: int = LIMITS["arn_max_length"]
RELATED_ITEMS_MAX: int = LIMITS["related_items_max"]
RELATED_ITEM_TITLE_MAX_LENGTH: int = LIMITS["related_item_title_max_length"]
CLIENT_TOKEN_MAX_LENGTH: int = LIMITS["client_token_max_length"]
TRIGGER_SOURCE_MAX_LENGTH: int = LIMITS["trigger_source_max_length"]
TRIGGER_RAW_DATA_MAX_LENGTH: int = LIMITS["trigger_raw_data_max_length"]
ARN_RE = re.compile(LIMITS["arn_pattern"])

_url_validator = URLValidator(schemes=["http", "https"])


def reject_control_characters(value: str) -> None:
    if any(unicodedata.category(ch) == "Cc" and ch not in "\t" for ch in value):
        raise ValidationError("Remove the control characters (such as line breaks) from this text.")


def validate_link_url(value: str) -> None:
    if len(value) > URL_MAX_LENGTH:
        raise ValidationError(f"A link can be at most {URL_MAX_LENGTH} characters (it has {len(value)}).")
    scheme = urlsplit(value).scheme.lower()
    if scheme and scheme not in ("http", "https"):
        raise ValidationError(f"Only http:// and https:// links can be attached, not {scheme}: links.")
    try:
        _url_validator(value)
    except ValidationError:
        raise ValidationError(
            "Enter a complete web address starting with https:// or http://, such as https://status.example.com."
        ) from None


def validate_arn(value: str, *, what: str, example: str) -> None:
    if len(value) > ARN_MAX_LENGTH:
        raise ValidationError(f"An ARN can be at most {ARN_MAX_LENGTH} characters (it has {len(value)}).")
    if not ARN_RE.fullmatch(value):
        raise ValidationError(f"Enter {what}, such as {example}.")


def validate_resource_arn(value: str) -> None:
    validate_arn(value, what="an AWS resource ARN", example="arn:aws:ec2:us-east-1:123456789012:instance/i-0abc1234")


def validate_trigger_arn(value: str) -> None:
    validate_arn(
        value, what="the ARN of what triggered it", example="arn:aws:cloudwatch:us-east-1:123456789012:alarm:high-5xx"
    )


def validate_response_plan_arn(value: str) -> None:
    validate_arn(
        value, what="a response plan ARN", example="arn:aws:ssm-incidents::123456789012:response-plan/website-outage"
    )


def related_item_value_validator(kind: str):
    """The check for a link's URL or a resource's ARN; files are checked by `validate_upload`."""
    return validate_link_url if kind == "link" else validate_resource_arn


def validate_trigger_source(value: str) -> None:
    # AWS reserves "aws." sources for its own services (and records console starts as aws.ssm-incidents.custom).
    if not value.strip():
        raise ValidationError("Name what triggered the incident, such as com.example.alerting.")
    if len(value) > TRIGGER_SOURCE_MAX_LENGTH:
        raise ValidationError(
            f"A trigger source can be at most {TRIGGER_SOURCE_MAX_LENGTH} characters (it has {len(value)})."
        )
    if value.lower().startswith("aws."):
        raise ValidationError("Sources starting with “aws.” are reserved for AWS; use your own, such as com.example.")
    reject_control_characters(value)


def validate_trigger_raw_data(value: str) -> None:
    if len(value) > TRIGGER_RAW_DATA_MAX_LENGTH:
        raise ValidationError(f"rawData can be at most {TRIGGER_RAW_DATA_MAX_LENGTH} characters (it has {len(value)}).")


def safe_file_name(name: str) -> str:
    """The last path component, stripped of anything that could travel outside a key or a header."""
    base = PurePosixPath(name.replace("\\", "/")).name
    base = unicodedata.normalize("NFKC", base)
    base = re.sub(r"[^A-Za-z0-9._ -]", "_", base).strip(" .")
    return base[:200] or "attachment"


def validate_upload(upload) -> None:
    name = upload.name or ""
    if upload.size == 0:
        raise ValidationError(f"“{safe_file_name(name)}” is empty; attach a file with content.")
    max_bytes = settings.PORTAL_MAX_FILE_BYTES
    if upload.size > max_bytes:
        raise ValidationError(
            f"“{safe_file_name(name)}” is {human_size(upload.size)}; files can be at most {human_size(max_bytes)}."
        )
    extension = PurePosixPath(safe_file_name(name)).suffix.lower().lstrip(".")
    allowed = settings.PORTAL_ALLOWED_FILE_EXTENSIONS
    if extension not in allowed:
        raise ValidationError(
            f"“{safe_file_name(name)}” is not an allowed type. Allowed: {', '.join('.' + e for e in allowed)}."
        )


def human_size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}".replace(".0 ", " ")
        size /= 1024
    raise AssertionError("unreachable")

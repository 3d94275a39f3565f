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


def validate_resource_arn(value: str) -> None:
    if len(value) > ARN_MAX_LENGTH:
        raise ValidationError(f"An ARN can be at most {ARN_MAX_LENGTH} characters (it has {len(value)}).")
    if not ARN_RE.fullmatch(value):
        raise ValidationError(
            "Enter an AWS resource ARN, such as arn:aws:ec2:us-east-1:123456789012:instance/i-0abc1234."
        )


def safe_file_name(name: str) -> str:
    """The last path component, stripped of anything that could travel outside a key or a header."""
    base = PurePosixPath(name.replace("\\", "/")).name
    base = unicodedata.normalize("NFKC", base)
    base = re.sub(r"[^A-Za-z0-9._ -]", "_", base).strip(" .")
    return base[:200] or "attachment"


# Inner extensions that make a file name a disguise ("invoice.exe.txt"): refused even when the last one is allowed.
DISGUISING_EXTENSIONS = frozenset(
    {"exe", "com", "bat", "cmd", "msi", "scr", "dll", "js", "vbs", "ps1", "sh", "jar", "php", "html", "htm", "svg"}
)


def validate_upload(upload) -> None:
    name = upload.name or ""
    # Browsers send a bare name (Django's parser also strips folders); anything else is an attempt at traversal.
    if "/" in name or "\\" in name or ".." in name or "\x00" in name:
        raise ValidationError(f"“{safe_file_name(name)}”: a file name cannot contain folders or “..”; rename it.")
    if upload.size == 0:
        raise ValidationError(f"“{safe_file_name(name)}” is empty; attach a file with content.")
    max_bytes = settings.PORTAL_MAX_FILE_BYTES
    if upload.size > max_bytes:
        raise ValidationError(
            f"“{safe_file_name(name)}” is {human_size(upload.size)}; files can be at most {human_size(max_bytes)}."
        )
    suffixes = [suffix.lower().lstrip(".") for suffix in PurePosixPath(safe_file_name(name)).suffixes]
    extension = suffixes[-1] if suffixes else ""
    allowed = settings.PORTAL_ALLOWED_FILE_EXTENSIONS
    if extension not in allowed:
        raise ValidationError(
            f"“{safe_file_name(name)}” is not an allowed type. Allowed: {', '.join('.' + e for e in allowed)}."
        )
    disguise = next((suffix for suffix in suffixes[:-1] if suffix in DISGUISING_EXTENSIONS), None)
    if disguise:
        raise ValidationError(
            f"“{safe_file_name(name)}” looks like a disguised .{disguise} file; rename it to its real type."
        )


def human_size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}".replace(".0 ", " ")
        size /= 1024
    raise AssertionError("unreachable")

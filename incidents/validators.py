"""The rules a declaration must satisfy, shared by the web form, the API and the browser.

Limits come from botocore's model of StartIncident (via `aws.client.start_incident_limits`), so that a person gets a
clear error at the field instead of an AWS ValidationException later. `client_rules()` hands the very same
patterns, limits and messages to the declare page's script, so that checking as you type agrees with the server.
"""

import json
import re
import sys
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from confusable_homoglyphs import confusables
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.utils import timezone

from .aws.client import incident_action_limits, start_incident_limits
from .aws.requests import DRILL_TITLE_PREFIX, trigger_raw_data

LIMITS = start_incident_limits()
TITLE_MAX_LENGTH: int = LIMITS["title_max_length"]
URL_MAX_LENGTH: int = LIMITS["url_max_length"]
ARN_MAX_LENGTH: int = LIMITS["arn_max_length"]
RELATED_ITEMS_MAX: int = LIMITS["related_items_max"]
RELATED_ITEM_TITLE_MAX_LENGTH: int = LIMITS["related_item_title_max_length"]
CLIENT_TOKEN_MAX_LENGTH: int = LIMITS["client_token_max_length"]
TRIGGER_SOURCE_MAX_LENGTH: int = LIMITS["trigger_source_max_length"]
TRIGGER_RAW_DATA_MAX_LENGTH: int = LIMITS["trigger_raw_data_max_length"]
ARN_RE = re.compile(LIMITS["arn_pattern"])
SUMMARY_MAX_LENGTH: int = incident_action_limits()["summary_max_length"]
# A timeline note, with room left in CreateTimelineEvent's eventData for its JSON quoting and the author's name.
NOTE_MAX_LENGTH: int = incident_action_limits()["event_data_max_length"] // 3

LINK_SCHEMES = ("http", "https")
# What counts as a URL's scheme (RFC 3986 §3.1); written so that Python and JavaScript read it the same way.
SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
# Unicode category Cc (C0 and C1 controls), except the tab.
CONTROL_CHARACTERS_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def _format_character_ranges() -> list[tuple[int, int]]:
    """Unicode category Cf: zero-width and invisible characters (U+200B, U+2060, U+FEFF…) and every bidirectional
    control (U+202A–U+202E, U+2066–U+2069, U+200E/U+200F, U+061C), which can hide text or show it in another
    order than it is stored (Trojan Source, CVE-2021-42574). Listed as ranges of this Python's Unicode version, so
    that the browser applies exactly the same set whatever its own Unicode version."""
    ranges: list[tuple[int, int]] = []
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code)) == "Cf":
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    return ranges


FORMAT_CHARACTER_RANGES = _format_character_ranges()


def _character_class(escape: Callable[[int], str]) -> str:
    ranges = (escape(low) + (f"-{escape(high)}" if high > low else "") for low, high in FORMAT_CHARACTER_RANGES)
    return "[" + "".join(ranges) + "]"


INVISIBLE_CHARACTERS_RE = re.compile(_character_class(lambda code: f"\\U{code:08x}"))
# The same class in JavaScript's syntax (used with the "u" flag).
INVISIBLE_CHARACTERS_JS_PATTERN = _character_class(lambda code: f"\\u{{{code:x}}}")
UNSAFE_FILE_NAME_CHARACTERS_RE = re.compile(r"[^A-Za-z0-9._ -]")
FILE_NAME_MAX_LENGTH = 200
HOSTNAME_MAX_LENGTH = 253  # what Django's URLValidator allows (RFC 1034)

_url_validator = URLValidator(schemes=list(LINK_SCHEMES))

# Every message a person can get about a related item, with {placeholders}; the browser formats the same ones.
MESSAGES = {
    "control_characters": "Remove the control characters (such as line breaks) from this text.",
    "invisible_characters": "Remove the invisible character {code} from this text: invisible and text-direction "
    "characters can hide or reorder what people read.",
    "title_too_long": "A title can be at most {limit} characters (it has {length}).",
    "drill_title_too_long": "A drill's title can be at most {limit} characters (it has {length}): AWS receives it "
    "with “[DRILL] ” in front.",
    "link_too_long": "A link can be at most {limit} characters (it has {length}).",
    "link_scheme": "Only http:// and https:// links can be attached, not {scheme}: links.",
    "link_invalid": "Enter a complete web address starting with https:// or http://, such as https://status.example.com.",
    "arn_too_long": "An ARN can be at most {limit} characters (it has {length}).",
    "arn_invalid": "Enter an AWS resource ARN, such as arn:aws:ec2:us-east-1:123456789012:instance/i-0abc1234.",
    "value_missing": "Enter the link or ARN, or remove this row.",
    "file_missing": "Choose a file to attach, or remove this row.",
    "file_empty": "“{name}” is empty; attach a file with content.",
    "file_too_big": "“{name}” is {size}; files can be at most {limit}.",
    "file_type": "“{name}” is not an allowed type. Allowed: {allowed}.",
    "file_name_path": "“{name}”: a file name cannot contain folders or “..”; rename it.",
    "file_disguised": "“{name}” looks like a disguised .{extension} file; rename it to its real type.",
    "too_many_files": "Attach at most {limit} files (there are {count}).",
    "too_many_items": "An incident can have at most {limit} related items.",
    "kind_invalid": "A related item is a link, an AWS resource or a file.",
}


def code_point(character: str) -> str:
    return f"U+{ord(character):04X}"


def reject_control_characters(value: str) -> None:
    """THE rule for free text people and scripts send (titles, links, ARNs, names, notes): no control characters,
    and no invisible or bidirectional formatting characters."""
    if CONTROL_CHARACTERS_RE.search(value):
        raise ValidationError(MESSAGES["control_characters"])
    invisible = INVISIBLE_CHARACTERS_RE.search(value)
    if invisible:
        raise ValidationError(MESSAGES["invisible_characters"].format(code=code_point(invisible[0])))


def validate_link_url(value: str) -> None:
    # Django's URLValidator lets control characters through in the path, and botocore's ARN pattern (".+") too.
    reject_control_characters(value)
    if len(value) > URL_MAX_LENGTH:
        raise ValidationError(MESSAGES["link_too_long"].format(limit=URL_MAX_LENGTH, length=len(value)))
    match = SCHEME_RE.match(value)
    if match and match[1].lower() not in LINK_SCHEMES:
        raise ValidationError(MESSAGES["link_scheme"].format(scheme=match[1].lower()))
    try:
        _url_validator(value)
    except ValidationError:
        raise ValidationError(MESSAGES["link_invalid"]) from None


def warm_up() -> None:
    """Check an example link and ARN now: Django compiles URLValidator's patterns on their first use, ~40 ms here
    that a new process's first declaration with a link would otherwise wait for."""
    validate_link_url("https://status.example.com/incidents/1")
    validate_resource_arn("arn:aws:ec2:us-east-1:123456789012:instance/i-0abc1234")


def validate_arn(value: str, *, what: str, example: str) -> None:
    reject_control_characters(value)
    if len(value) > ARN_MAX_LENGTH:
        raise ValidationError(MESSAGES["arn_too_long"].format(limit=ARN_MAX_LENGTH, length=len(value)))
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


# What makes a typed or pasted value an AWS resource rather than a link (every ARN starts so; no web address does).
ARN_PREFIX = "arn:"


def related_item_kind_detect(value: str) -> str:
    """The kind of related item a typed or pasted value names, so that nobody has to choose it first: an ARN is an AWS
    resource, anything else is read as a link (and then checked as one, with the link's message)."""
    return "resource" if value.strip().lower().startswith(ARN_PREFIX) else "link"


def validate_related_item(*, kind: str, value: str = "", title: str = "", upload=None) -> None:
    """The one check of a related item, called by the declare form, the API and the declaration service.

    Raises a ValidationError whose `error_dict` names the part at fault: "kind", "title", "value" (a link's URL or a
    resource's ARN) or "file"; each interface shows it at its own field."""
    errors: dict[str, ValidationError] = {}
    try:
        reject_control_characters(title)
        if len(title.strip()) > RELATED_ITEM_TITLE_MAX_LENGTH:
            raise ValidationError(
                MESSAGES["title_too_long"].format(limit=RELATED_ITEM_TITLE_MAX_LENGTH, length=len(title.strip()))
            )
    except ValidationError as exc:
        errors["title"] = exc
    try:
        if kind == "file":
            if upload is None:
                raise ValidationError(MESSAGES["file_missing"])
            validate_upload(upload)
        elif kind in ("link", "resource"):
            if not value.strip():
                raise ValidationError(MESSAGES["value_missing"])
            (validate_link_url if kind == "link" else validate_resource_arn)(value.strip())
        else:
            errors["kind"] = ValidationError(MESSAGES["kind_invalid"])
    except ValidationError as exc:
        errors["file" if kind == "file" else "value"] = exc
    if errors:
        raise ValidationError(errors)


def validate_trigger_source(value: str) -> str:
    """The caller's source as it is kept (without surrounding spaces). AWS reserves "aws." sources for its own
    services (and records console starts as aws.ssm-incidents.custom); the portal's own source names the portal."""
    reject_control_characters(value)
    source = value.strip()
    if not source:
        raise ValidationError("Name what triggered the incident, such as com.example.alerting.")
    if len(source) > TRIGGER_SOURCE_MAX_LENGTH:
        raise ValidationError(
            f"A trigger source can be at most {TRIGGER_SOURCE_MAX_LENGTH} characters (it has {len(source)})."
        )
    # Compared as a reader would see it: " AWS.ssm" and "ａｗｓ.ssm" (full-width) are "aws.ssm" too.
    folded = unicodedata.normalize("NFKC", source).casefold()
    if folded.startswith("aws."):
        raise ValidationError("Sources starting with “aws.” are reserved for AWS; use your own, such as com.example.")
    if folded == unicodedata.normalize("NFKC", settings.PORTAL_TRIGGER_SOURCE).casefold():
        raise ValidationError(
            f"“{settings.PORTAL_TRIGGER_SOURCE}” is the portal's own source; name your system, such as "
            "com.example.alerting."
        )
    return source


def validate_trigger_raw_data(value: str) -> None:
    if len(value) > TRIGGER_RAW_DATA_MAX_LENGTH:
        raise ValidationError(f"rawData can be at most {TRIGGER_RAW_DATA_MAX_LENGTH} characters (it has {len(value)}).")


def validate_trigger_fits(*, source: str, raw_data: str) -> None:
    """The caller's source and rawData travel inside the portal's own rawData (aws/requests.py), which names the
    declarer: together they must leave room for it within AWS's limit. Counted as JSON strings, as they are sent."""
    room = caller_trigger_room() - _json_length(source)
    if _json_length(raw_data) > room:
        raise ValidationError(
            f"rawData can be at most {room - 2} characters, counting the backslashes JSON adds before quotes and line "
            f"breaks (it has {_json_length(raw_data) - 2}): the portal sends it to AWS inside its own rawData, beside "
            "the declarer's name."
        )


def _json_length(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False))


def caller_trigger_room() -> int:
    """What AWS's rawData limit leaves for the caller's source and rawData (each as a JSON string) once the portal's
    own fields are written for the longest username, declaration id and URL there can be."""
    longest_id = 2**63 - 1  # PostgreSQL's bigint
    longest = trigger_raw_data(
        declared_by="u" * (get_user_model()._meta.get_field("username").max_length or 150),
        declaration_id=longest_id,
        declaration_url=f"{settings.PORTAL_BASE_URL.rstrip('/')}/declarations/{longest_id}/",
        caller={"source": "", "rawData": ""},
    )
    return TRIGGER_RAW_DATA_MAX_LENGTH - len(longest) + 2 * _json_length("")


TIMESTAMP_FORMAT = "Give an ISO 8601 date and time with a time zone, such as 2026-11-29T16:30:00Z."
TRIGGER_TIMESTAMP_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
# Senders' clocks drift; a trigger a little in the future is plausible, one days ahead is a mistake.
TRIGGER_TIMESTAMP_MAX_SKEW = timedelta(days=1)


def parse_timestamp(value: str) -> datetime:
    """An ISO 8601 date and time with a time zone; RFC 3339 allows a lower-case t and z."""
    try:
        moment = datetime.fromisoformat(value.strip().upper())
    except ValueError:
        raise ValidationError(TIMESTAMP_FORMAT) from None
    if moment.tzinfo is None or "T" not in value.upper():
        raise ValidationError(TIMESTAMP_FORMAT)
    return moment


def validate_trigger_timestamp(value: str) -> str:
    """The time in UTC (ISO 8601), as stored."""
    moment = parse_timestamp(value)
    # Compared before converting: at the ends of the calendar (9999-12-31T23:59:59-01:00) UTC does not exist.
    if moment < TRIGGER_TIMESTAMP_EARLIEST:
        raise ValidationError("The trigger's time cannot be before 1970.")
    if moment > timezone.now() + TRIGGER_TIMESTAMP_MAX_SKEW:
        raise ValidationError("The trigger's time is more than a day in the future; check the sender's clock.")
    return moment.astimezone(UTC).isoformat()


def person_time_zone(name: str) -> ZoneInfo:
    """The zone the person entered a time in, as their browser names it (IANA), else the portal's TIME_ZONE."""
    try:
        return ZoneInfo(name) if name else ZoneInfo(settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE)


def validate_impact_started_at(moment: datetime) -> datetime:
    """When the impact began (form and API): in the past, at most PORTAL_IMPACT_START_MAX_DAYS back; in UTC."""
    now = timezone.now()
    days = settings.PORTAL_IMPACT_START_MAX_DAYS
    if moment > now:
        raise ValidationError(
            f"The impact cannot start in the future (it is now {now:%Y-%m-%d %H:%M} UTC); check the date, the time "
            "and the time zone."
        )
    if moment < now - timedelta(days=days):
        raise ValidationError(
            f"Give a time within the last {days} day{'s' if days != 1 else ''}; note anything older in the "
            "incident's timeline."
        )
    return moment.astimezone(UTC)


# The API's two ways of saying when it began (the form has one field); both would be the trigger's timestamp.
IMPACT_START_AND_TRIGGER = (
    "Send impactStartedAt or triggerDetails, not both: impactStartedAt becomes the trigger's timestamp, and "
    "triggerDetails brings its own."
)
DRILL_TITLE_MAX_LENGTH = TITLE_MAX_LENGTH - len(DRILL_TITLE_PREFIX)
DRILL_PLAN_ONLY = "A drill needs a drill plan, and that one is for real incidents: choose a drill plan."
REAL_PLAN_ONLY = (
    "That response plan is for drills only: declare a drill with it (“This is a drill” on the page, "
    '"drill": true in the API).'
)


def validate_title_length(value: str, *, drill: bool = False) -> None:
    """THE length rule of an incident's title: a drill's leaves room for the prefix AWS receives in front of it."""
    limit, message = (DRILL_TITLE_MAX_LENGTH, "drill_title_too_long") if drill else (TITLE_MAX_LENGTH, "title_too_long")
    length = len(value.strip())
    if length > limit:
        raise ValidationError(MESSAGES[message].format(limit=limit, length=length))


# The days the history and the summary can be asked about: days a declaration can have been made on, with room to
# spare, and far enough from the calendar's ends that a day's start and end exist in every time zone.
FILTER_DATE_EARLIEST = date(1970, 1, 1)
FILTER_DATE_LATEST = date(2999, 12, 31)
FILTER_DATE_MESSAGE = f"Choose a date from {FILTER_DATE_EARLIEST.isoformat()} to {FILTER_DATE_LATEST.isoformat()}."
FILTER_DATE_VALIDATORS = [
    MinValueValidator(FILTER_DATE_EARLIEST, message=FILTER_DATE_MESSAGE),
    MaxValueValidator(FILTER_DATE_LATEST, message=FILTER_DATE_MESSAGE),
]


def validate_multiline_text(value: str, *, limit: int, what: str) -> None:
    """Notes and summaries: line breaks and tabs welcome, every other control or invisible character refused."""
    reject_control_characters(re.sub(r"[\r\n\t]", " ", value))
    if len(value.strip()) > limit:
        raise ValidationError(f"{what} can be at most {limit} characters (it has {len(value.strip())}).")


def validate_note(value: str) -> None:
    if not value.strip():
        raise ValidationError("Write the note.")
    validate_multiline_text(value, limit=NOTE_MAX_LENGTH, what="A note")


def validate_summary(value: str) -> None:
    validate_multiline_text(value, limit=SUMMARY_MAX_LENGTH, what="A summary")


def validate_client_token(value: str) -> None:
    """A caller's idempotency key (the API's clientToken or Idempotency-Key header)."""
    if not 1 <= len(value) <= CLIENT_TOKEN_MAX_LENGTH:
        raise ValidationError(f"Give 1 to {CLIENT_TOKEN_MAX_LENGTH} characters, or leave it out (it has {len(value)}).")
    if not value.isascii() or not value.isprintable():
        raise ValidationError("Use printable ASCII characters only, such as a UUID.")


def username_key(username: str) -> str:
    """What makes two usernames the same account name: compatibility forms folded (NFKC: "ａｄｍｉｎ" is "admin", as
    Django itself normalises usernames) and case folded ("Admin", "ADMIN" and "admin" are one name)."""
    return unicodedata.normalize("NFKC", username).casefold()


def validate_username_lookalikes(username: str) -> None:
    """No character outside ASCII that Unicode's confusables list (UTS #39, through confusable-homoglyphs) gives as
    a look-alike of an ASCII letter or digit: "аdmin" with a Cyrillic а, "ɑdmin", "Αlice" with a Greek Α. Letters
    that look like no ASCII one (é, ß, ø, 日…) are welcome."""
    for character in dict.fromkeys(unicodedata.normalize("NFKC", username)):
        if character.isascii():
            continue
        found = confusables.is_confusable(character, greedy=True)
        lookalikes = [
            glyph["c"]
            for glyph in (found[0]["homoglyphs"] if found else [])
            if len(glyph["c"]) == 1 and glyph["c"].isascii() and glyph["c"].isalnum()
        ]
        if lookalikes:
            raise ValidationError(
                f"“{character}” ({unicodedata.name(character, code_point(character))}) looks like the letter "
                f"“{lookalikes[0]}”, so this name could pass for another account's; type it with plain letters."
            )


def safe_file_name(name: str) -> str:
    """The last path component, stripped of anything that could travel outside a key or a header."""
    base = PurePosixPath(name.replace("\\", "/")).name
    base = unicodedata.normalize("NFKC", base)
    base = UNSAFE_FILE_NAME_CHARACTERS_RE.sub("_", base).strip(" .")
    return base[:FILE_NAME_MAX_LENGTH] or "attachment"


def allowed_extensions_label() -> str:
    return ", ".join("." + extension for extension in settings.PORTAL_ALLOWED_FILE_EXTENSIONS)


# Inner extensions that make a file name a disguise ("invoice.exe.txt"): refused even when the last one is allowed.
DISGUISING_EXTENSIONS = frozenset(
    {"exe", "com", "bat", "cmd", "msi", "scr", "dll", "js", "vbs", "ps1", "sh", "jar", "php", "html", "htm", "svg"}
)


def validate_upload(upload) -> None:
    raw_name = upload.name or ""
    # Browsers send a bare name (Django's parser also strips folders); anything else is an attempt at traversal.
    if "/" in raw_name or "\\" in raw_name or ".." in raw_name or "\x00" in raw_name:
        raise ValidationError(MESSAGES["file_name_path"].format(name=safe_file_name(raw_name)))
    name = safe_file_name(raw_name)
    if upload.size == 0:
        raise ValidationError(MESSAGES["file_empty"].format(name=name))
    max_bytes = settings.PORTAL_MAX_FILE_BYTES
    if upload.size > max_bytes:
        raise ValidationError(
            MESSAGES["file_too_big"].format(name=name, size=human_size(upload.size), limit=human_size(max_bytes))
        )
    suffixes = [suffix.lower().lstrip(".") for suffix in PurePosixPath(name).suffixes]
    extension = suffixes[-1] if suffixes else ""
    if extension not in settings.PORTAL_ALLOWED_FILE_EXTENSIONS:
        raise ValidationError(MESSAGES["file_type"].format(name=name, allowed=allowed_extensions_label()))
    disguise = next((suffix for suffix in suffixes[:-1] if suffix in DISGUISING_EXTENSIONS), None)
    if disguise:
        raise ValidationError(MESSAGES["file_disguised"].format(name=name, extension=disguise))


def human_size(size: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}".replace(".0 ", " ")
        size /= 1024
    raise AssertionError("unreachable")


def _javascript_pattern(pattern: re.Pattern[str] | str) -> str:
    # Python's end-of-string anchor \Z is JavaScript's $ (without the multiline flag); the rest is shared syntax.
    text = pattern if isinstance(pattern, str) else pattern.pattern
    return text.replace(r"\Z", "$")


def client_rules() -> dict[str, Any]:
    """The related-item rules, as data for the declare page's script (never re-typed in JavaScript)."""
    return {
        "messages": MESSAGES,
        "title_max_length": TITLE_MAX_LENGTH,
        "item_title_max_length": RELATED_ITEM_TITLE_MAX_LENGTH,
        "url_max_length": URL_MAX_LENGTH,
        "url_pattern": _javascript_pattern(_url_validator.regex),
        "url_unsafe_characters": "".join(sorted(_url_validator.unsafe_chars)),
        "url_hostname_max_length": HOSTNAME_MAX_LENGTH,
        "link_schemes": list(LINK_SCHEMES),
        "scheme_pattern": SCHEME_RE.pattern,
        "arn_max_length": ARN_MAX_LENGTH,
        "arn_pattern": ARN_RE.pattern,
        "arn_prefix": ARN_PREFIX,
        "control_characters_pattern": CONTROL_CHARACTERS_RE.pattern,
        "invisible_characters_pattern": INVISIBLE_CHARACTERS_JS_PATTERN,
        "items_max": RELATED_ITEMS_MAX,
        "max_file_bytes": settings.PORTAL_MAX_FILE_BYTES,
        "max_files": settings.PORTAL_MAX_FILES,
        "allowed_extensions": list(settings.PORTAL_ALLOWED_FILE_EXTENSIONS),
        "allowed_extensions_label": allowed_extensions_label(),
        "disguising_extensions": sorted(DISGUISING_EXTENSIONS),
        "unsafe_file_name_pattern": UNSAFE_FILE_NAME_CHARACTERS_RE.pattern,
        "file_name_max_length": FILE_NAME_MAX_LENGTH,
    }

"""Validate request parameters against a botocore service model, the way the real service does.

botocore's client-side validator only checks required members, types and minimums; the service also
enforces maximum lengths, numeric ranges, regular-expression patterns, enums and "exactly one member" for
union shapes. This module checks all of those from the model metadata and words its messages the way AWS
(Coral) does, e.g.::

    1 validation error detected: Value 'notanarn' at 'responsePlanArn' failed to satisfy constraint:
    Member must satisfy regular expression pattern: ^arn:aws(-cn|-us-gov)?:...

Paths follow the AWS convention: nested members are joined with ``.`` and list items are addressed as
``relatedItems.1.member`` (1-based).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from typing import Any

from botocore.model import Shape, StructureShape

# Java character classes (the model's patterns are Java/Smithy regexes) that Python's `re` lacks. The
# ssm-incidents model needs none of them today, but other models do, and translating is better than
# silently skipping a constraint.
_JAVA_CLASSES = {
    "Alnum": "a-zA-Z0-9",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Upper": "A-Z",
    "Lower": "a-z",
    "XDigit": "0-9a-fA-F",
    "Space": r"\s",
    "L": r"^\W\d_",
}


class ValidationFailed(Exception):
    """Raised with every constraint violation found; ``str()`` is the AWS-style message."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__(format_errors(errors))


def format_errors(errors: list[str]) -> str:
    count = len(errors)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected: " + "; ".join(errors)


@functools.cache
def compile_pattern(pattern: str) -> re.Pattern[str] | None:
    """Compile a model pattern with Python's `re`, translating the Java-only constructs we know of.

    Returns None when the pattern cannot be expressed; the caller then skips that one constraint rather
    than rejecting valid input.
    """
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escaped = pattern[i + 1]
            if escaped == "p" and pattern.startswith("{", i + 2):
                close = pattern.index("}", i)
                body = _JAVA_CLASSES.get(pattern[i + 3 : close])
                if body is None or (in_class and body.startswith("^")):
                    return None
                out.append(body if in_class else f"[{body}]")
                i = close + 1
                continue
            out.append("\\Z" if escaped == "z" else char + escaped)
            i += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        out.append(char)
        i += 1
    try:
        return re.compile("".join(out))
    except re.error:
        return None


def _show(value: Any) -> str:
    """Render a value the way it is quoted in an AWS validation message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "'true'" if value else "'false'"
    if isinstance(value, str | int | float):
        return f"'{value}'"
    text = json.dumps(value, default=str, separators=(",", ":"))
    if len(text) > 200:
        text = text[:197] + "..."
    return f"'{text}'"


def _fail(errors: list[str], value: Any, path: str, constraint: str) -> None:
    errors.append(f"Value {_show(value)} at '{path}' failed to satisfy constraint: {constraint}")


def parse_timestamp(value: Any) -> float | None:
    """Accept what botocore sends for a timestamp (epoch seconds, or ISO 8601 in query strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.timestamp()
    return None


def validate(shape: Shape, value: Any, path: str = "") -> Any:
    """Validate ``value`` (a parsed request, member names as keys) against ``shape``.

    Returns the value with timestamps normalised to epoch seconds (float). Raises ValidationFailed listing
    every violation.
    """
    errors: list[str] = []
    cleaned = _check(shape, value, path, errors)
    if errors:
        raise ValidationFailed(errors)
    return cleaned


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _check(shape: Shape, value: Any, path: str, errors: list[str]) -> Any:
    kind = shape.type_name
    if kind == "structure":
        return _check_structure(shape, value, path, errors)
    if kind == "list":
        return _check_list(shape, value, path, errors)
    if kind == "map":
        return _check_map(shape, value, path, errors)
    if kind == "string":
        return _check_string(shape, value, path, errors)
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(errors, value, path, "Member must be an integer")
            return value
        _check_range(shape, value, path, errors)
        return value
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            _fail(errors, value, path, "Member must be a number")
            return value
        _check_range(shape, value, path, errors)
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            _fail(errors, value, path, "Member must be a boolean")
        return value
    if kind == "timestamp":
        parsed = parse_timestamp(value)
        if parsed is None:
            _fail(errors, value, path, "Member must be a timestamp (epoch seconds or ISO 8601)")
            return value
        return parsed
    if kind == "blob":
        if not isinstance(value, str | bytes):
            _fail(errors, value, path, "Member must be a base64-encoded blob")
        return value
    # "document" and anything newer: free-form JSON, nothing to check.
    return value


def _check_structure(shape: StructureShape, value: Any, path: str, errors: list[str]) -> Any:
    if not isinstance(value, dict):
        _fail(errors, value, path or shape.name, "Member must be a structure")
        return value
    members = shape.members
    cleaned: dict[str, Any] = {}
    for name in value:
        if name not in members:
            errors.append(
                f"Value {_show(value[name])} at '{_join(path, name)}' failed to satisfy constraint: "
                f"Member is not a known member of {shape.name}"
            )
    for name in shape.required_members:
        if value.get(name) is None:
            errors.append(f"Value null at '{_join(path, name)}' failed to satisfy constraint: Member must not be null")
    present = [name for name in members if value.get(name) is not None]
    if shape.is_tagged_union and len(present) != 1:
        options = ", ".join(members)
        _fail(
            errors,
            value,
            path or shape.name,
            f"Member must have exactly one of [{options}] set, but {len(present)} were set",
        )
    for name in present:
        cleaned[name] = _check(members[name], value[name], _join(path, name), errors)
    return cleaned


def _check_length(shape: Shape, value: Any, length: int, path: str, errors: list[str]) -> None:
    minimum = shape.metadata.get("min")
    maximum = shape.metadata.get("max")
    if minimum is not None and length < minimum:
        _fail(errors, value, path, f"Member must have length greater than or equal to {minimum}")
    if maximum is not None and length > maximum:
        _fail(errors, value, path, f"Member must have length less than or equal to {maximum}")


def _check_range(shape: Shape, value: int | float, path: str, errors: list[str]) -> None:
    minimum = shape.metadata.get("min")
    maximum = shape.metadata.get("max")
    if minimum is not None and value < minimum:
        _fail(errors, value, path, f"Member must have value greater than or equal to {minimum}")
    if maximum is not None and value > maximum:
        _fail(errors, value, path, f"Member must have value less than or equal to {maximum}")


def _check_string(shape: Shape, value: Any, path: str, errors: list[str]) -> Any:
    if not isinstance(value, str):
        _fail(errors, value, path, "Member must be a string")
        return value
    _check_length(shape, value, len(value), path, errors)
    pattern = shape.metadata.get("pattern")
    if pattern:
        compiled = compile_pattern(pattern)
        # Smithy patterns are not implicitly anchored, hence search(); the model's own ^...$ anchor them.
        if compiled is not None and not compiled.search(value):
            _fail(errors, value, path, f"Member must satisfy regular expression pattern: {pattern}")
    enum = shape.enum
    if enum and value not in enum:
        _fail(errors, value, path, f"Member must satisfy enum value set: [{', '.join(enum)}]")
    return value


def _check_list(shape: Shape, value: Any, path: str, errors: list[str]) -> Any:
    if not isinstance(value, list):
        _fail(errors, value, path, "Member must be a list")
        return value
    _check_length(shape, value, len(value), path, errors)
    return [_check(shape.member, item, f"{path}.{index}.member", errors) for index, item in enumerate(value, 1)]


def _check_map(shape: Shape, value: Any, path: str, errors: list[str]) -> Any:
    if not isinstance(value, dict):
        _fail(errors, value, path, "Member must be a map")
        return value
    _check_length(shape, value, len(value), path, errors)
    cleaned = {}
    for key, item in value.items():
        key_errors: list[str] = []
        _check(shape.key, key, path, key_errors)
        for error in key_errors:
            # Re-word "Value 'k' at 'tags' failed to satisfy constraint: X" as AWS does for map keys.
            constraint = error.split("failed to satisfy constraint: ", 1)[1]
            _fail(errors, key, path, f"Map keys must satisfy constraint: [{constraint}]")
        cleaned[key] = _check(shape.value, item, f"{path}.{key}", errors)
    return cleaned

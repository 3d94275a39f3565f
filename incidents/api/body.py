"""The request body: JSON only, within PORTAL_API_MAX_BODY_BYTES, parsed strictly."""

import functools
import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja.parser import Parser

from .envelope import ApiError


def too_large() -> ApiError:
    limit = settings.PORTAL_API_MAX_BODY_BYTES
    return ApiError("PAYLOAD_TOO_LARGE", f"The body can be at most {limit} bytes.", details={"max_bytes": limit})


def json_within_limit(run: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For an operation with a body, before a byte of it is read: refuse another media type, no declared length, and
    one over the limit (Django then reads no more than the declared length)."""

    @functools.wraps(run)
    def wrapper(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        if request.content_type != "application/json":
            got = request.content_type or "none"
            message = f"Send the body as JSON with “Content-Type: application/json” (got “{got}”)."
            return ApiError("UNSUPPORTED_MEDIA_TYPE", message).response()
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > settings.PORTAL_API_MAX_BODY_BYTES:
            return too_large().response()
        if not declared:  # Django reads no body without a declared length (nor would ninja parse an empty one)
            return ApiError("MALFORMED_REQUEST", "The body is empty; send the request as a JSON object.").response()
        return run(request, **kwargs)

    return wrapper


class StrictJsonParser(Parser):
    """JSON that means one thing: UTF-8, no repeated field, no NaN or Infinity (which JSON does not have)."""

    def parse_body(self, request: HttpRequest) -> Any:
        body = request.body
        if len(body) > settings.PORTAL_API_MAX_BODY_BYTES:  # a server that did not pass Content-Length on
            raise too_large()
        try:
            return json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
        except UnicodeDecodeError:
            raise ApiError("MALFORMED_REQUEST", "The body is not valid UTF-8.") from None
        except json.JSONDecodeError as exc:
            raise ApiError(
                "MALFORMED_REQUEST",
                f"The body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).",
                details={"line": exc.lineno, "column": exc.colno},
            ) from None
        except ValueError as exc:
            raise ApiError("MALFORMED_REQUEST", f"The body is not valid JSON: {exc}.") from None
        except RecursionError:
            # Python's parser recurses per level: ~1,000 levels of [[[… fit in a few kilobytes.
            raise ApiError(
                "MALFORMED_REQUEST",
                "The body nests arrays or objects too deeply; a StartIncident request needs five levels at most.",
            ) from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the field “{key}” appears twice")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")

"""The API's answers, every one in the envelope: `{"success": true, "data": …}` or
`{"success": false, "error": {"code", "message", "details"}}`."""

from typing import Any, Literal

from django.http import JsonResponse
from pydantic import BaseModel, ConfigDict, Field, create_model

# Every error code, its HTTP status and what it means (the reference page's table reads this too).
ERRORS = {
    "VALIDATION_ERROR": (400, "A field is invalid; `details` holds a message per field path."),
    "MALFORMED_REQUEST": (400, "The body is not JSON (or not UTF-8, or repeats a field)."),
    "UNAUTHENTICATED": (401, "No bearer token, or one that is unknown, revoked or expired."),
    "FORBIDDEN": (403, "The token's owner has no role in the portal (roles are checked on every request)."),
    "NOT_FOUND": (404, "No such endpoint, or no declaration with that id visible to the caller."),
    "METHOD_NOT_ALLOWED": (405, "The endpoint does not take this method; see the `Allow` header."),
    "CONFLICT": (409, "The clientToken / Idempotency-Key was already used with a different request."),
    "PAYLOAD_TOO_LARGE": (413, "The body is larger than the API accepts."),
    "UNSUPPORTED_MEDIA_TYPE": (415, "The body is not sent as `Content-Type: application/json`."),
    "RATE_LIMITED": (429, "Too many requests for this token, or its owner's tokens; wait for `Retry-After` seconds."),
    "INTERNAL_ERROR": (500, "An unexpected failure on the portal's side; nothing internal is revealed."),
}
ERROR_STATUS = {code: status for code, (status, _) in ERRORS.items()}


class ApiError(Exception):
    """An expected failure, answered in the error envelope with its code's status."""

    def __init__(
        self, code: str, message: str, *, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    def response(self) -> JsonResponse:
        body = {"success": False, "error": {"code": self.code, "message": self.message, "details": self.details}}
        return JsonResponse(body, status=ERROR_STATUS[self.code], headers=self.headers)


def success(data: Any) -> dict[str, Any]:
    return {"success": True, "data": data}


# --- The envelope as schemas, for the generated OpenAPI document and the check of every successful answer ---


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Literal[tuple(ERRORS)]  # type: ignore[valid-type]
    message: str
    details: dict[str, Any] = Field(
        description="For VALIDATION_ERROR, a message per field path, such as `relatedItems[2].identifier.value.url`."
    )


class Error(BaseModel):
    model_config = ConfigDict(extra="forbid")
    success: Literal[False]
    error: ErrorBody


def answer(data: type[BaseModel]) -> type[BaseModel]:
    """The success envelope around `data`'s schema."""
    return create_model(
        f"{data.__name__}Answer",
        __config__=ConfigDict(extra="forbid"),
        success=(Literal[True], ...),
        data=(data, ...),
    )


def errors(*codes: str) -> dict[int, type[BaseModel]]:
    """The error responses an operation documents, by status."""
    return {ERROR_STATUS[code]: Error for code in codes}


# What any authenticated operation can answer, besides its own outcomes.
COMMON_ERRORS = ("UNAUTHENTICATED", "FORBIDDEN", "METHOD_NOT_ALLOWED", "RATE_LIMITED", "INTERNAL_ERROR")

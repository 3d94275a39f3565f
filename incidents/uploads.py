"""Request bodies are bounded before they are read: uploads are the only large ones, and only people who signed in
may send them.

- `RequestBodyLimitMiddleware` answers before any other part of Django reads the body (CSRF's check reads the form
  of a POST; so would the view): a body declaring more than `max_request_bytes()` gets 413; from someone not signed
  in, a multipart body (files) for a page behind the sign-in is sent to the sign-in page, and any body larger than
  a sign-in form gets 413, unread.
- `FileSizeLimitUploadHandler` stops storing a file once it passes PORTAL_MAX_FILE_BYTES: the rest of that part is
  counted and dropped, never spooled to disk, and the form reports the file as too big at its row.
"""

import io
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve

from . import validators
from .api.body import too_large

# Multipart's own bytes: each part's boundary and headers (a few hundred bytes; ~300 parts for a full form).
MULTIPART_OVERHEAD_BYTES = 256 * 1024


def max_request_bytes() -> int:
    """The largest body anyone may send: every file at its limit, the form's own fields, multipart's framing."""
    return (
        settings.PORTAL_MAX_FILE_BYTES * settings.PORTAL_MAX_FILES
        + settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        + MULTIPART_OVERHEAD_BYTES
    )


class RequestBodyLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.refusal(request) or self.get_response(request)

    def refusal(self, request: HttpRequest) -> HttpResponse | None:
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0  # Django then reads no body at all
        multipart = (request.content_type or "").startswith("multipart/")
        if declared <= ANONYMOUS_MAX_BODY_BYTES and not multipart:
            return None  # the common case, decided without looking up the view
        view = _view_of(request)
        if view is API:
            # The API refuses other media types and bodies over its own limit itself, unread (api/body.py).
            return too_large().response() if declared > max_request_bytes() else None
        if declared > max_request_bytes():
            return _too_large_page(request, declared)
        if request.user.is_authenticated:
            return None
        if multipart and getattr(view, "login_required", True):
            # Where LoginRequiredMiddleware would send the person, before CSRF's check reads the form.
            return redirect_to_login(request.get_full_path())
        if declared > ANONYMOUS_MAX_BODY_BYTES:
            return _too_large_page(request, declared)
        return None


# Someone not signed in can only sign in: a few hundred bytes (the sign-in form, sent as multipart by some clients).
ANONYMOUS_MAX_BODY_BYTES = 64 * 1024
API = object()


def _view_of(request: HttpRequest) -> object | None:
    """The view that will answer (API for the JSON API's), None for an address nothing answers."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return None
    return API if "api" in match.namespaces else match.func


def _too_large_page(request: HttpRequest, declared: int) -> HttpResponse:
    context = {
        "size": validators.human_size(declared),
        "max_file_size": validators.human_size(settings.PORTAL_MAX_FILE_BYTES),
        "max_files": settings.PORTAL_MAX_FILES,
    }
    return render(request, "413.html", context, status=413)


class OversizedUpload(UploadedFile):
    """A file part that passed the limit: its name and the size it had, none of its content. It never passes
    validators.validate_upload, which refuses it with the same message as any file too big."""

    def __init__(self, *, name: str, size: int, content_type: str | None):
        super().__init__(io.BytesIO(), name=name, content_type=content_type, size=size)


class FileSizeLimitUploadHandler(FileUploadHandler):
    """First of FILE_UPLOAD_HANDLERS: passes each chunk on to Django's own handlers until the file is over
    PORTAL_MAX_FILE_BYTES, then stops passing (so at most that much of it is ever kept) and answers for the file."""

    received = 0

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        return raw_data if self.received <= settings.PORTAL_MAX_FILE_BYTES else None

    def file_complete(self, file_size: int) -> UploadedFile | None:
        if self.received <= settings.PORTAL_MAX_FILE_BYTES:
            return None  # the next handler (memory or temporary file) has it all
        return OversizedUpload(name=self.file_name or "", size=self.received, content_type=self.content_type)

"""Facts about the HTTP request that the web pages and the API both need."""

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


def client_ip(request: HttpRequest) -> str | None:
    """The address a request came from, as recorded in the audit trail."""
    return request.META.get("REMOTE_ADDR")


def htmx_target(request: HttpRequest) -> str | None:
    """The id of the element an htmx request will swap (None for a plain request): which fragment to render."""
    htmx: HtmxDetails = request.htmx  # type: ignore[attr-defined]  # set by django-htmx's middleware
    return htmx.target if htmx else None

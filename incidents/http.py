"""Facts about the HTTP request that the web pages and the API both need."""

from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The address a request came from, as recorded in the audit trail."""
    return request.META.get("REMOTE_ADDR")


def htmx_target(request: HttpRequest) -> str | None:
    """The id of the element an htmx request will swap (None for a plain request): which fragment to render."""
    return request.htmx.target if request.htmx else None

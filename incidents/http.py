"""Facts about the HTTP request that the web pages and the API both need."""

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class PortalRequest(HttpRequest):
    """A request to a page behind the login, as the views see it (for type checking: nothing is built from it).

    LoginRequiredMiddleware has sent anonymous visitors to sign in, so `user` is a person; django-htmx's middleware
    has set `htmx`."""

    user: User
    htmx: HtmxDetails


def client_ip(request: HttpRequest) -> str | None:
    """The address a request came from, as recorded in the audit trail."""
    return request.META.get("REMOTE_ADDR")


def htmx_target(request: PortalRequest) -> str | None:
    """The id of the element an htmx request will swap (None for a plain request): which fragment to render."""
    return request.htmx.target if request.htmx else None

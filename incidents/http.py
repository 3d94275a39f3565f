"""Facts about the HTTP request that the web pages and the API both need."""

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class PersonRequest(HttpRequest):
    """A request made by a person, as the views see it (for type checking: nothing is built from it): a page's, once
    LoginRequiredMiddleware has sent anonymous visitors to sign in, or the API's, once the bearer token named one."""

    user: User


class PortalRequest(PersonRequest):
    """A request to a page behind the login, with django-htmx's details of it."""

    htmx: HtmxDetails


def client_ip(request: HttpRequest) -> str | None:
    """The address a request came from, as recorded in the audit trail."""
    return request.META.get("REMOTE_ADDR")


def htmx_target(request: PortalRequest) -> str | None:
    """The id of the element an htmx request will swap (None for a plain request): which fragment to render."""
    return request.htmx.target if request.htmx else None

"""Facts about the HTTP request that the web pages and the API both need: who is asking (the request types), from
which address (through the proxy in front, when one is configured), and which fragment htmx wants."""

import ipaddress
from collections.abc import Callable, Iterable

from django.conf import settings
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django_htmx.middleware import HtmxDetails

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class PersonRequest(HttpRequest):
    """A request made by a person, as the views see it (for type checking: nothing is built from it): a page's, once
    LoginRequiredMiddleware has sent anonymous visitors to sign in, or the API's, once the bearer token named one."""

    user: User


class PortalRequest(PersonRequest):
    """A request to a page behind the login, with django-htmx's details of it."""

    htmx: HtmxDetails


def _meta_key(header: str) -> str:
    """Where Django keeps a request header in META: `X-Forwarded-For` → `HTTP_X_FORWARDED_FOR`."""
    return "HTTP_" + header.upper().replace("-", "_")


def address_in(address: str | None, networks: Iterable[IPNetwork]) -> bool:
    """Whether `address` (as a request gives it) lies in one of `networks`; what is not an address does not."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 from a dual-stack socket is 10.0.0.1
    return any(ip in network for network in networks)


def _peer(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def through_trusted_proxy(request: HttpRequest) -> bool:
    """Whether the request reached the portal through the proxy the settings name (PORTAL_PROXY_HOPS > 0, and the
    connection comes from an address in PORTAL_TRUSTED_PROXIES): only then are its forwarding headers believed."""
    return settings.PORTAL_PROXY_HOPS > 0 and address_in(_peer(request), settings.PORTAL_TRUSTED_PROXIES)


def client_ip(request: HttpRequest) -> str | None:
    """The address of the person or script behind a request. Everything that records or limits by address uses this
    one function: the audit trail, the sign-in lockout (django-axes' AXES_CLIENT_IP_CALLABLE) and the operators' gate.

    Directly connected, it is the connection's address: a forwarding header is the client's own word and ignored.
    Through the configured proxies, each of the PORTAL_PROXY_HOPS proxies appended the address it received the
    request from to X-Forwarded-For, so the client's is that many entries from the right; whatever stands further
    left was written by the client and is not believed. A header shorter than the chain (a proxy that did not add
    its entry) or an entry that is not an address leaves the connection's address, which cannot be forged.
    """
    peer = _peer(request)
    if not through_trusted_proxy(request):
        return peer
    hops = settings.PORTAL_PROXY_HOPS
    chain = [entry.strip() for entry in request.META.get(_meta_key(settings.PORTAL_PROXY_CLIENT_HEADER), "").split(",")]
    chain = [entry for entry in chain if entry]
    if len(chain) < hops:
        return peer
    try:
        return str(ipaddress.ip_address(chain[-hops]))
    except ValueError:
        return peer


def forwarded_by_unknown_peer(request: HttpRequest) -> bool:
    """Whether the request carries a forwarding header that no configured proxy vouches for: a client's forgery, or
    a proxy the settings do not know of (behind which every person would seem to come from the proxy's address)."""
    return not through_trusted_proxy(request) and bool(request.META.get(_meta_key(settings.PORTAL_PROXY_CLIENT_HEADER)))


class TrustedProxyMiddleware:
    """Drops the scheme header (X-Forwarded-Proto, PORTAL_PROXY_PROTO_HEADER) from requests that did not come
    through the configured proxy, before anything reads it: Django's SECURE_PROXY_SSL_HEADER believes the header
    from whoever sends it, so a client that reaches gunicorn directly could otherwise claim HTTPS."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not through_trusted_proxy(request):
            request.META.pop(_meta_key(settings.PORTAL_PROXY_PROTO_HEADER), None)
        return self.get_response(request)


def htmx_target(request: PortalRequest) -> str | None:
    """The id of the element an htmx request will swap (None for a plain request): which fragment to render."""
    return request.htmx.target if request.htmx else None

"""The proxy in front: its forwarding headers count only when the settings name it (PORTAL_PROXY_HOPS,
PORTAL_TRUSTED_PROXIES), and then the same client address reaches the audit trail, the sign-in lockout and the
operators' gate; a client that writes the headers itself, directly or through the proxy, changes nothing."""

import ipaddress

import pytest
from django.test import RequestFactory
from django.urls import reverse

from incidents.http import client_ip
from incidents.models import AuditEvent

PROXY = "127.0.0.1"  # nginx on the portal's machine, as the README runs it
CLIENT, OTHER_CLIENT, FORGED = "203.0.113.7", "198.51.100.23", "192.0.2.99"


def address_of(remote_addr: str, forwarded_for: str | None = None) -> str | None:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    return client_ip(RequestFactory().get("/", REMOTE_ADDR=remote_addr, headers=headers))


@pytest.fixture
def behind_proxy(settings):
    settings.PORTAL_PROXY_HOPS = 1
    return settings


def test_a_direct_client_is_its_connections_address_whatever_it_forwards(settings):
    assert settings.PORTAL_PROXY_HOPS == 0  # the default: no proxy believed
    assert address_of(CLIENT, FORGED) == CLIENT
    assert address_of(CLIENT, f"{FORGED}, {OTHER_CLIENT}") == CLIENT


def test_through_the_configured_proxy_the_client_is_the_address_the_proxy_saw(behind_proxy):
    assert address_of(PROXY, CLIENT) == CLIENT
    # A client's own X-Forwarded-For reaches the portal with the proxy's entry appended: only that entry counts.
    assert address_of(PROXY, f"{FORGED}, {CLIENT}") == CLIENT
    assert address_of(PROXY, f"{FORGED},{FORGED} , {CLIENT}") == CLIENT


def test_a_client_that_goes_around_the_proxy_cannot_claim_another_address(behind_proxy):
    """The proxy's headers count only from the proxy's address (PORTAL_TRUSTED_PROXIES)."""
    assert address_of(CLIENT, FORGED) == CLIENT


def test_a_chain_of_proxies_counts_its_hops_from_the_right(behind_proxy):
    behind_proxy.PORTAL_PROXY_HOPS = 2
    behind_proxy.PORTAL_TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]
    # load balancer (appends the client) → nginx at 10.0.0.5 (appends the balancer's 10.0.1.9) → the portal
    assert address_of("10.0.0.5", f"{FORGED}, {CLIENT}, 10.0.1.9") == CLIENT
    assert address_of(PROXY, f"{FORGED}, {CLIENT}, 10.0.1.9") == PROXY  # loopback is no longer a trusted proxy


@pytest.mark.parametrize("header", [None, "", " , ", "not-an-address", "203.0.113.7:443"])
def test_a_missing_or_unreadable_entry_leaves_the_connections_address(behind_proxy, header):
    assert address_of(PROXY, header) == PROXY


def test_ipv6_and_ipv4_mapped_proxies(behind_proxy):
    assert address_of("::1", "2001:db8::7") == "2001:db8::7"
    behind_proxy.PORTAL_TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]
    assert address_of("::ffff:10.0.0.5", CLIENT) == CLIENT


# --- The audit trail --------------------------------------------------------------------------------------------


def token_created_from(client, **request) -> str | None:
    client.post("/tokens/", {"name": "from somewhere", "expires_in_days": "30"}, **request)
    return AuditEvent.objects.filter(action="api_token.created").latest("id").ip_address


@pytest.mark.django_db
def test_the_audit_trail_records_the_person_behind_the_proxy(support_client, behind_proxy):
    recorded = token_created_from(support_client, REMOTE_ADDR=PROXY, headers={"X-Forwarded-For": f"{FORGED}, {CLIENT}"})
    assert recorded == CLIENT


@pytest.mark.django_db
def test_the_audit_trail_ignores_an_address_a_direct_client_forwards(support_client):
    recorded = token_created_from(support_client, REMOTE_ADDR=CLIENT, headers={"X-Forwarded-For": FORGED})
    assert recorded == CLIENT


# --- The sign-in lockout ----------------------------------------------------------------------------------------


def sign_in(client, password: str, **request):
    return client.post(reverse("login"), {"username": "sam.support", "password": password}, **request)


@pytest.mark.django_db
def test_behind_the_proxy_wrong_passwords_lock_out_their_sender_not_everyone(client, support_user, behind_proxy):
    """Five wrong passwords used to lock the username for everyone: all requests had the proxy's address."""
    attacker = {"REMOTE_ADDR": PROXY, "headers": {"X-Forwarded-For": CLIENT}}
    for _ in range(behind_proxy.AXES_FAILURE_LIMIT):
        sign_in(client, "not-the-password", **attacker)
    assert sign_in(client, "a-long-test-password", **attacker).status_code == 429

    owner = sign_in(client, "a-long-test-password", REMOTE_ADDR=PROXY, headers={"X-Forwarded-For": OTHER_CLIENT})
    assert owner.status_code == 302
    assert owner["Location"] == reverse("incidents:declare")


@pytest.mark.django_db
def test_a_direct_client_cannot_dodge_the_lockout_by_forwarding_new_addresses(client, support_user, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "not-the-password", REMOTE_ADDR=CLIENT, headers={"X-Forwarded-For": f"192.0.2.{n}"})
    locked = sign_in(client, "a-long-test-password", REMOTE_ADDR=CLIENT, headers={"X-Forwarded-For": "192.0.2.200"})
    assert locked.status_code == 429


# --- HTTPS as the proxy reports it --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_only_the_proxy_may_say_a_request_came_over_https(client, behind_proxy):
    behind_proxy.SECURE_SSL_REDIRECT = True
    behind_proxy.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    https = {"headers": {"X-Forwarded-Proto": "https"}}
    assert client.get("/healthz", REMOTE_ADDR=PROXY, **https).status_code == 200
    # A client that reaches gunicorn directly and claims HTTPS is sent to HTTPS like any plain-HTTP request.
    forged = client.get("/healthz", REMOTE_ADDR=CLIENT, **https)
    assert forged.status_code == 301
    assert forged["Location"].startswith("https://")

"""Single sign-on with the company's identity provider (OpenID Connect, authorization code flow with PKCE) through
mozilla-django-oidc, and the break-glass rule for local accounts while it is configured.

mozilla-django-oidc does the flow (state, nonce, PKCE, the token request, the signature against the provider's JWKS);
what it leaves out is added here: the provider's endpoints from its discovery document, read at the first sign-in
rather than configured one by one; the ID token's audience and issuer, which it does not check; the groups claim
mapped to the portal's roles at every sign-in (services/accounts.py); a refusal of any kind recorded in the audit
trail; and signing out of the provider too (its end_session_endpoint)."""

import logging
import threading
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest
from django.shortcuts import resolve_url
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from .errors import PortalError
from .http import client_ip
from .services.accounts import user_roles_from_provider
from .services.authentication import sso_refusal_record

logger = logging.getLogger(__name__)

BACKEND = "incidents.sso.ProviderBackend"


class ProviderUnavailable(Exception):
    """The identity provider's discovery document could not be read (the provider is down or misconfigured)."""


_discovered: dict[str, dict[str, Any]] = {}
_discovery_lock = threading.Lock()


def discovery() -> dict[str, Any]:
    """The provider's discovery document, read once per process (per issuer) and kept once it was read whole."""
    issuer = settings.PORTAL_SSO_ISSUER
    with _discovery_lock:
        if issuer in _discovered:
            return _discovered[issuer]
    try:
        response = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as error:
        raise ProviderUnavailable(f"The identity provider at {issuer} did not answer: {error}") from error
    if document.get("issuer", "").rstrip("/") != issuer:
        raise ProviderUnavailable(f"The discovery document at {issuer} names another issuer: {document.get('issuer')}")
    missing = {"authorization_endpoint", "token_endpoint", "jwks_uri"} - document.keys()
    if missing:
        raise ProviderUnavailable(f"The discovery document at {issuer} lacks {', '.join(sorted(missing))}.")
    with _discovery_lock:
        _discovered[issuer] = document
    return document


def local_login_allowed(username: str) -> bool:
    """Whether this local account may sign in with its password: any, without single sign-on; with it, the named
    break-glass accounts only (PORTAL_LOCAL_LOGIN_ACCOUNTS)."""
    if not settings.PORTAL_SSO_ENABLED:
        return True
    allowed = settings.PORTAL_LOCAL_LOGIN_ACCOUNTS
    return "*" in allowed or username.casefold() in {name.casefold() for name in allowed}


def sign_in_method(user) -> str | None:
    """How a sign-in happened, for the audit trail: only told apart while single sign-on is configured."""
    if not settings.PORTAL_SSO_ENABLED:
        return None
    return "single sign-on" if getattr(user, "backend", None) == BACKEND else "break-glass local account"


class LocalAccountBackend(ModelBackend):
    """Django's password check, refusing accounts that are not break-glass ones while single sign-on is configured
    (a refusal is a failed sign-in as any other: recorded, and counted by django-axes)."""

    def user_can_authenticate(self, user) -> bool:
        return super().user_can_authenticate(user) and local_login_allowed(user.get_username())


def refuse(request: HttpRequest | None, *, reason: str, username: str | None = None) -> None:
    logger.warning("single sign-on refused: %s", reason)
    sso_refusal_record(username=username, reason=reason, ip_address=client_ip(request) if request is not None else None)


class ProviderBackend(OIDCAuthenticationBackend):
    """Signs in the person the provider vouches for, with the roles their groups map to at this sign-in."""

    def __init__(self, *args, **kwargs):
        # Django makes a backend for every request of a signed-in person (get_user): nothing is read from the
        # provider until a sign-in needs it, so that a provider that is down never touches the pages.
        self.UserModel = get_user_model()

    def _configure(self) -> None:
        document = discovery()
        self.OIDC_OP_TOKEN_ENDPOINT = document["token_endpoint"]
        self.OIDC_OP_USER_ENDPOINT = document.get("userinfo_endpoint")
        self.OIDC_OP_JWKS_ENDPOINT = document["jwks_uri"]
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None

    def authenticate(self, request, **kwargs):
        # Only the provider's callback (which passes the nonce) is ours; a password form's credentials are not.
        if request is None or "nonce" not in kwargs or not settings.PORTAL_SSO_ENABLED:
            return None
        try:
            self._configure()
            return super().authenticate(request, **kwargs)
        except ProviderUnavailable as error:
            refuse(request, reason=str(error))
        except requests.RequestException as error:
            # The token endpoint refused the code (the account was disabled or removed meanwhile, say).
            refuse(request, reason=f"The identity provider refused the sign-in: {_short(error)}")
        except SuspiciousOperation as error:
            refuse(request, reason=f"The identity provider's answer was refused: {error}")
        return None

    def get_payload_data(self, token, key):
        """The ID token's signature (the provider's key, the configured algorithm), audience (this portal's client
        id), issuer and expiry, all checked: mozilla-django-oidc checks the signature but not audience nor issuer."""
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[self.OIDC_RP_SIGN_ALGO],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=discovery()["issuer"],
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.InvalidTokenError as error:
            raise SuspiciousOperation(f"The ID token was refused: {error}") from error

    def get_userinfo(self, access_token, id_token, payload):
        """The ID token's claims, completed by the userinfo endpoint's (some providers send groups in one only)."""
        claims = dict(payload)
        if self.OIDC_OP_USER_ENDPOINT:
            info = super().get_userinfo(access_token, id_token, payload)
            if info.get("sub") != payload.get("sub"):
                raise SuspiciousOperation("The userinfo answer is about someone else than the ID token.")
            claims = {**info, **payload}
        return claims

    def get_or_create_user(self, access_token, id_token, payload):
        claims = self.get_userinfo(access_token, id_token, payload)
        username = claims.get(settings.PORTAL_SSO_USERNAME_CLAIM)
        if not isinstance(username, str) or not username.strip():
            raise SuspiciousOperation(f"The provider sent no {settings.PORTAL_SSO_USERNAME_CLAIM!r} claim.")
        username = username.strip()
        if settings.PORTAL_SSO_USERNAME_CLAIM == "email" and claims.get("email_verified") is False:
            # Whoever may type an address unverified at the provider must not become that address's account here.
            refuse(self.request, reason="The provider has not verified this e-mail address.", username=username)
            return None
        groups = claims.get(settings.PORTAL_SSO_GROUPS_CLAIM) or []
        if isinstance(groups, str):
            groups = [groups]
        role_names = {settings.PORTAL_SSO_ROLE_MAP[group] for group in groups if group in settings.PORTAL_SSO_ROLE_MAP}
        email = claims.get("email") if isinstance(claims.get("email"), str) else ""
        try:
            user = user_roles_from_provider(
                username=username, email=email or "", role_names=role_names, ip_address=client_ip(self.request)
            )
        except PortalError as error:
            refuse(self.request, reason=str(error), username=username)
            return None
        if user is None or not role_names:
            refuse(self.request, reason="No provider group of theirs gives a role in the portal.", username=username)
            return None
        if not user.is_active:
            refuse(self.request, reason="The account is disabled in the portal.", username=username)
            return None
        return user

    def get_user(self, user_id):
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None


def _short(error: Exception) -> str:
    text = str(error)
    return text if len(text) <= 300 else text[:300] + "…"


def provider_logout_url(request: HttpRequest) -> str:
    """Where signing out leads (mozilla-django-oidc's OIDC_OP_LOGOUT_URL_METHOD, called before the session ends):
    the provider's end_session_endpoint for a provider's sign-in, so that its session ends too, else the login page."""
    after = request.build_absolute_uri(resolve_url(settings.LOGOUT_REDIRECT_URL))
    id_token = request.session.get("oidc_id_token")
    if not (settings.PORTAL_SSO_ENABLED and id_token):
        return after
    try:
        endpoint = discovery().get("end_session_endpoint")
    except ProviderUnavailable:
        return after
    if not endpoint:
        return after
    query = urlencode(
        {"id_token_hint": id_token, "post_logout_redirect_uri": after, "client_id": settings.OIDC_RP_CLIENT_ID}
    )
    return f"{endpoint}?{query}"


def exempt_from_lockout(request: HttpRequest | None, credentials: dict | None) -> bool:
    """django-axes' AXES_WHITELIST_CALLABLE: the provider's callback is no password guess (its code is single-use and
    checked by the provider, its state by the session), and it carries no username, so its refusals would otherwise
    lock the provider's sign-in for everyone behind the same address."""
    return credentials is not None and "nonce" in credentials

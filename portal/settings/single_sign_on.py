"""Single sign-on's settings (OpenID Connect, mozilla-django-oidc; incidents/sso.py), read by base.py."""

from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from .environment import env

# The portal's roles as incidents/roles.py names them (a provider group may map only to one of these).
PORTAL_ROLE_NAMES = ("support staff", "managers", "admins")


def sso_role_map(raw: str) -> dict[str, str]:
    """PORTAL_SSO_ROLE_MAP, "provider-group=portal role,other-group=other role" (several groups may map to a role)."""
    mapping: dict[str, str] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        group, _, role = (text.strip() for text in item.partition("="))
        if not group or role not in PORTAL_ROLE_NAMES:
            raise ImproperlyConfigured(
                f"PORTAL_SSO_ROLE_MAP: {item!r} must be `provider group=role` with a role among "
                f"{', '.join(PORTAL_ROLE_NAMES)}."
            )
        mapping[group] = role
    return mapping


# The provider's issuer URL (its discovery document is read at the first sign-in); empty: no single sign-on.
PORTAL_SSO_ISSUER = env.str("PORTAL_SSO_ISSUER", default="").rstrip("/")
PORTAL_SSO_ENABLED = bool(PORTAL_SSO_ISSUER)
PORTAL_SSO_PROVIDER_NAME = env.str("PORTAL_SSO_PROVIDER_NAME", default="your company account")
# The claim that carries the person's groups (in the ID token or the userinfo answer), and the one that names them.
PORTAL_SSO_GROUPS_CLAIM = env.str("PORTAL_SSO_GROUPS_CLAIM", default="groups")
PORTAL_SSO_USERNAME_CLAIM = env.str("PORTAL_SSO_USERNAME_CLAIM", default="email")
PORTAL_SSO_ROLE_MAP = sso_role_map(env.str("PORTAL_SSO_ROLE_MAP", default=""))
# A provider's sign-in lasts at most this long (seconds); then the person signs in again, and their groups are read
# again: a person removed from a group or from the provider loses the role or the access within this time.
PORTAL_SSO_MAX_SESSION_AGE = env.int("PORTAL_SSO_MAX_SESSION_AGE", default=8 * 3600)
# Break-glass: while single sign-on is configured, only these local accounts may sign in with a password ("*": all).
# Empty by default: name one or two admins' accounts for when the provider is down (docs/security.md).
PORTAL_LOCAL_LOGIN_ACCOUNTS = env.list("PORTAL_LOCAL_LOGIN_ACCOUNTS", cast=str.strip, default=[])
OIDC_RP_CLIENT_ID = env.str("PORTAL_SSO_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env.str("PORTAL_SSO_CLIENT_SECRET", default="")
OIDC_RP_SCOPES = env.str("PORTAL_SSO_SCOPES", default="openid email profile")
OIDC_RP_SIGN_ALGO = env.str("PORTAL_SSO_SIGN_ALGO", default="RS256")
if PORTAL_SSO_ENABLED and not (OIDC_RP_CLIENT_ID and OIDC_RP_CLIENT_SECRET):
    raise ImproperlyConfigured("PORTAL_SSO_ISSUER is set: PORTAL_SSO_CLIENT_ID and PORTAL_SSO_CLIENT_SECRET must be.")
if PORTAL_SSO_ENABLED and not PORTAL_SSO_ROLE_MAP:
    raise ImproperlyConfigured("PORTAL_SSO_ISSUER is set: PORTAL_SSO_ROLE_MAP must map provider groups to roles.")
if PORTAL_SSO_MAX_SESSION_AGE < 60:
    raise ImproperlyConfigured("PORTAL_SSO_MAX_SESSION_AGE must be at least 60 seconds.")
# How the client secret reaches the token endpoint: in the form body (client_secret_post), or as HTTP Basic
# (client_secret_basic) for providers that accept only the method the client was registered with.
OIDC_TOKEN_USE_BASIC_AUTH = env.bool("PORTAL_SSO_CLIENT_SECRET_BASIC", default=False)
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
# Kept for the provider's sign-out (id_token_hint); the access token is not needed after sign-in.
OIDC_STORE_ID_TOKEN = True
OIDC_TIMEOUT = env.int("PORTAL_SSO_TIMEOUT", default=5)
OIDC_AUTHENTICATION_CALLBACK_URL = "sso-callback"
OIDC_OP_LOGOUT_URL_METHOD = "incidents.sso.provider_logout_url"


def sso_form_action(issuer: str) -> list[str]:
    """The Content Security Policy's form-action with the provider's origin: signing out is a form whose answer
    redirects to the provider's end_session_endpoint, and browsers hold such a redirect to form-action too."""
    parts = urlsplit(issuer)
    return [CSP.SELF, f"{parts.scheme}://{parts.netloc}"]

"""Production: refuses to start without its secrets; every transport hardened."""

from .base import *  # noqa: F403
from .base import audit_keys, env

# No default: a missing one stops the process with "SECRET_KEY must be set in the environment…".
SECRET_KEY = env.str("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", cast=str.strip)
# The audit chain's HMAC keys: the database never holds them, so rows written without them fail verification.
PORTAL_AUDIT_KEYS = audit_keys(env.str("PORTAL_AUDIT_KEYS"))
DEBUG = False
PORTAL_LOCAL_MODE = False

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Behind the TLS-terminating proxy, PORTAL_PROXY_HOPS (base.py) makes its X-Forwarded-Proto count, from it alone.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)

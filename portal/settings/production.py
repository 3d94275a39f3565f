"""Production: refuses to start without its secrets; every transport hardened."""

from .base import *  # noqa: F403
from .base import env_bool, env_int, require

SECRET_KEY = require("SECRET_KEY", SECRET_KEY)  # noqa: F405
ALLOWED_HOSTS = require("ALLOWED_HOSTS", ALLOWED_HOSTS)  # noqa: F405
DEBUG = False
PORTAL_LOCAL_MODE = False

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600)

"""Who is calling: the owner of a live personal token, within the token's and the person's rate limits, with a role
in the portal.

The session cookie never authenticates here, only `Authorization: Bearer <token>`, so the API needs no CSRF
protection and no login redirect.
"""

from django.conf import settings
from django.http import HttpRequest
from ninja.security import HttpBearer

from .. import roles
from ..errors import PortalError
from ..models import ApiToken
from ..services.api_tokens import api_token_authenticate
from ..services.rate_limits import rate_limit_hit
from .envelope import ApiError

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="incident-portal"'}
HOW_TO_AUTHENTICATE = "Send a personal API token as “Authorization: Bearer <token>”; create one on the API tokens page."


def unauthenticated(message: str = HOW_TO_AUTHENTICATE) -> ApiError:
    return ApiError("UNAUTHENTICATED", message, headers=CHALLENGE)


def rate_limited(what: str, retry_after: int) -> ApiError:
    return ApiError(
        "RATE_LIMITED",
        f"{what}; try again in {retry_after} s.",
        details={"retry_after_seconds": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


class BearerToken(HttpBearer):
    """Answers the token; ninja calls it before reading the request's parameters or body.

    A missing header or another scheme makes HttpBearer answer None, which ninja reports as AuthenticationError."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken:
        if not token.strip():
            raise unauthenticated()
        try:
            api_token = api_token_authenticate(secret=token.strip())
        except PortalError as exc:
            raise unauthenticated(exc.message) from exc
        # The token acts as its owner, whatever session the request also carries.
        request.user = api_token.owner
        # Per token, and per person across all their tokens: more tokens do not buy more requests.
        retry_after = rate_limit_hit(
            key=f"api-token:{api_token.secret_hash[:32]}",
            rate=settings.PORTAL_API_RATE_LIMIT,
            setting="PORTAL_API_RATE_LIMIT",
        )
        if retry_after is not None:
            raise rate_limited(
                f"Too many requests for this token (limit {settings.PORTAL_API_RATE_LIMIT})", retry_after
            )
        retry_after = rate_limit_hit(
            key=f"api-person:{api_token.owner_id}",
            rate=settings.PORTAL_API_PERSON_RATE_LIMIT,
            setting="PORTAL_API_PERSON_RATE_LIMIT",
        )
        if retry_after is not None:
            raise rate_limited(
                f"Too many requests from this token's owner across all their tokens "
                f"(limit {settings.PORTAL_API_PERSON_RATE_LIMIT})",
                retry_after,
            )
        # The owner's role now, not when the token was made: a demoted owner's token loses the rights with the role.
        if not roles.can_declare(api_token.owner):
            raise ApiError("FORBIDDEN", "The account this token belongs to has no role in the portal; ask an admin.")
        return api_token

"""Records signing in and out: each sign-in, failed sign-in, lockout and sign-out is an audit event.

Passwords never reach these functions. A failed attempt names the account only when one by that name exists: what
someone typed into the username field may be their password, or anyone's."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User

from ..models import AuditEvent
from .audit import audit_record


def _details(**values: str | bool | None) -> dict[str, str | bool | None]:
    return {name: value for name, value in values.items() if value is not None}


def _about(account: User | None, **values: str | bool | None) -> dict[str, str | bool | None]:
    """The details of an attempt on `account` (None: no account by the name tried, which is then not recorded)."""
    return _details(username=account.get_username() if account else None, known_account=account is not None, **values)


def _account_named(username: str | None) -> User | None:
    """The account a sign-in attempt claimed, looked up as the authentication backend does."""
    if not username:
        return None
    try:
        return get_user_model().objects.get_by_natural_key(username)
    except get_user_model().DoesNotExist:
        return None


def sign_in_record(
    *, user: User, ip_address: str | None, via: str | None = None, method: str | None = None
) -> AuditEvent:
    """Someone signed in (`via` names the page: the portal's login, the Django admin's or the identity provider's
    callback; `method`, when single sign-on is configured, tells a provider's sign-in from a break-glass one)."""
    return audit_record(
        action="auth.signed_in", actor=user, ip_address=ip_address, details=_details(via=via, method=method)
    )


def sso_refusal_record(*, username: str | None, reason: str, ip_address: str | None) -> AuditEvent:
    """A sign-in through the identity provider was refused: the provider said no (the person is disabled or removed
    there, or cancelled), its token did not verify, or the person has no portal role or a disabled account here.
    `username` is what the provider said, when it got that far; the account is named only when it exists."""
    account = _account_named(username)
    return audit_record(
        action="auth.sso_refused",
        actor=account,
        ip_address=ip_address,
        details=_details(username=username, known_account=account is not None, reason=reason),
    )


def sign_in_failure_record(*, username: str | None, ip_address: str | None, via: str | None = None) -> AuditEvent:
    """A sign-in failed: a wrong password, an unknown or disabled account, or an account locked out (a wrong current
    password on the password change page counts too: `via` tells which page)."""
    account = _account_named(username)
    return audit_record(
        action="auth.sign_in_failed",
        actor=account,
        ip_address=ip_address,
        details=_about(account, via=via),
    )


def lockout_record(*, username: str | None, ip_address: str | None, via: str | None = None) -> AuditEvent:
    """Repeated failures locked sign-ins out (for this username from this address, as django-axes is set up); each
    further attempt during the cool-off extends the lock and is recorded again."""
    account = _account_named(username)
    return audit_record(
        action="auth.locked_out",
        actor=account,
        ip_address=ip_address,
        details=_about(account, via=via),
    )


def sign_out_record(*, user: User, ip_address: str | None, via: str | None = None) -> AuditEvent:
    return audit_record(action="auth.signed_out", actor=user, ip_address=ip_address, details=_details(via=via))


def lockout_clear_record(
    *, username: str | None, locked_address: str | None, actor: User, ip_address: str | None
) -> AuditEvent:
    """An admin deleted django-axes' record of failed sign-ins (in the Django admin), lifting any lock on them."""
    account = _account_named(username)
    return audit_record(
        action="auth.lockout_cleared",
        actor=actor,
        ip_address=ip_address,
        details=_about(account, address=locked_address, via="Django admin"),
    )

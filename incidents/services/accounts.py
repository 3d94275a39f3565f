"""Writes accounts: admins add people, give and take roles, disable accounts; people change their own password;
changes made in Django's admin are recorded. Each change is audited."""

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from .. import roles, validators
from ..errors import PortalError
from ..models import AuditEvent
from ..selectors.accounts import AccountState, username_taken_by
from .audit import audit_record

# Where a change recorded by *_admin_change_record was made, as the trail names it.
DJANGO_ADMIN = "Django admin"
# Where a role change made by the identity provider's groups came from (user_roles_from_provider).
PROVIDER = "identity provider"

USERNAME_TAKEN = "The account “{existing}” already exists: usernames that differ only in capitals count as the same."


def username_check(*, username: str, exclude_user_id: int | None = None) -> None:
    """A new or changed username must not pass for another account's (here, the admin's forms and setup_demo)."""
    validators.validate_username_lookalikes(username)
    existing = username_taken_by(username=username, exclude_user_id=exclude_user_id)
    if existing is not None:
        raise ValidationError(USERNAME_TAKEN.format(existing=existing))


def _role_groups(role_names: Iterable[str]) -> list[Group]:
    names = set(role_names)
    unknown = names - set(roles.ALL)
    if unknown:
        raise PortalError(f"Unknown roles: {', '.join(sorted(unknown))}.", field="roles")
    return list(Group.objects.filter(name__in=names))


@transaction.atomic
def user_create(
    *, username: str, email: str = "", password: str, role_names, actor, ip_address: str | None = None
) -> User:
    """An admin adds an account with its roles; the password must pass the configured validators."""
    User = get_user_model()
    user = User(username=username.strip(), email=email.strip())
    try:
        user.full_clean(exclude=["password"])  # normalises the username (NFKC) as Django does
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise PortalError(" ".join(messages), field=field) from exc
    try:
        username_check(username=user.get_username())
    except ValidationError as exc:
        raise PortalError(" ".join(exc.messages), field="username") from exc
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise PortalError(" ".join(exc.messages), field="password") from exc
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:  # a concurrent request made the same name (the unique index on LOWER(username))
        raise PortalError(USERNAME_TAKEN.format(existing=user.get_username()), field="username") from exc
    groups = _role_groups(role_names)
    user.groups.set(groups)
    audit_record(
        action="user.created",
        actor=actor,
        ip_address=ip_address,
        details={"user": user.get_username(), "roles": sorted(group.name for group in groups)},
    )
    return user


@transaction.atomic
def user_update(*, user, actor, role_names, is_active: bool, ip_address: str | None = None):
    """An admin changes someone's roles or disables the account; each change is audited."""
    if user.pk == actor.pk and (not is_active or roles.ADMIN not in set(role_names)) and not user.is_superuser:
        raise PortalError("You cannot remove your own admin role or disable your own account.", field="roles")
    groups = _role_groups(role_names)
    before = sorted(user.groups.filter(name__in=roles.ALL).values_list("name", flat=True))
    after = sorted(group.name for group in groups)
    diff: dict[str, Any] = {}
    if before != after:
        diff["roles"] = {"from": before, "to": after}
    if user.is_active != is_active:
        diff["is_active"] = {"from": user.is_active, "to": is_active}
    if not diff:
        return user
    # Groups that are not portal roles are left as they are.
    user.groups.remove(*Group.objects.filter(name__in=roles.ALL))
    user.groups.add(*groups)
    if "is_active" in diff:
        user.is_active = is_active
        user.save(update_fields=["is_active"])
    audit_record(
        action="user.updated", actor=actor, ip_address=ip_address, details={"user": user.get_username(), **diff}
    )
    return user


@transaction.atomic
def user_roles_from_provider(
    *, username: str, email: str, role_names: Iterable[str], ip_address: str | None = None
) -> User | None:
    """A person signed in through the identity provider: their portal roles become exactly the ones their provider
    groups map to (groups that are not portal roles stay as they are). An unknown person with at least one role gets an
    account without a password (they sign in through the provider only); one without any role gets none (None).
    Each creation and role change is audited, with the provider as its source."""
    groups = _role_groups(role_names)
    after = sorted(group.name for group in groups)
    user = get_user_model().objects.filter(username__iexact=username).first()
    if user is None:
        if not groups:
            return None
        user = get_user_model()(username=username, email=email)
        user.set_unusable_password()  # they sign in through the provider only
        try:
            username_check(username=username)
            user.full_clean(exclude=["password"])
        except ValidationError as exc:
            raise PortalError(" ".join(exc.messages), field="username") from exc
        user.save()
        user.groups.set(groups)
        audit_record(
            action="user.created",
            actor=user,
            ip_address=ip_address,
            details={"user": user.get_username(), "roles": after, "via": PROVIDER},
        )
        return user
    if user.has_usable_password():
        # A local account (break-glass, an admin's) is never taken over by a provider's name for someone.
        raise PortalError(
            f"The portal account “{user.get_username()}” signs in with a password; single sign-on cannot use it.",
            code="forbidden",
        )
    before = sorted(user.groups.filter(name__in=roles.ALL).values_list("name", flat=True))
    if before != after:
        user.groups.remove(*Group.objects.filter(name__in=roles.ALL))
        user.groups.add(*groups)
        audit_record(
            action="user.updated",
            actor=user,
            ip_address=ip_address,
            details={"user": user.get_username(), "roles": {"from": before, "to": after}, "via": PROVIDER},
        )
    return user


@transaction.atomic
def user_password_change(*, user: User, password: str, ip_address: str | None = None) -> User:
    """A person sets a new password for their own account (having proved the current one); never recorded itself."""
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise PortalError(" ".join(exc.messages), field="new_password1") from exc
    user.set_password(password)
    user.save(update_fields=["password"])
    audit_record(
        action="auth.password_changed", actor=user, ip_address=ip_address, details={"user": user.get_username()}
    )
    return user


def _differences(before: AccountState, after: AccountState) -> dict[str, Any]:
    return {
        name: {"from": before.values.get(name), "to": value}
        for name, value in after.values.items()
        if before.values.get(name) != value
    }


def _password_text(state: AccountState) -> str:
    return "set" if state.password_usable else "none (cannot sign in with a password)"


@transaction.atomic
def user_admin_change_record(
    *, before: AccountState | None, after: AccountState | None, actor: User, ip_address: str | None = None
) -> AuditEvent | None:
    """Record a change to an account made in Django's admin, given the account as it was and as it is now (None
    where it did not or no longer exists): what changed from what to what. A new password is recorded as the fact
    that it was set, never its value nor its hash. Nothing is recorded when nothing changed."""
    changes: dict[str, Any]
    if before is None and after is not None:
        action, name = "user.created", after.name
        changes = {key: value for key, value in after.values.items() if key != "username"}
        changes["password"] = _password_text(after)
    elif before is not None and after is None:
        action, name, changes = "user.deleted", before.name, {}
    elif before is not None and after is not None:
        name, changes = after.name, _differences(before, after)
        if before.password_hash != after.password_hash:
            changes["password"] = _password_text(after) if after.password_usable else "removed"
        if not changes:
            return None
        action = "user.password_set" if changes.keys() == {"password"} else "user.updated"
    else:
        return None
    return audit_record(
        action=action, actor=actor, ip_address=ip_address, details={"user": name, "via": DJANGO_ADMIN, **changes}
    )


@transaction.atomic
def group_admin_change_record(
    *, before: AccountState | None, after: AccountState | None, actor: User, ip_address: str | None = None
) -> AuditEvent | None:
    """Record a change to a group (the portal's roles are groups) made in Django's admin: its name or
    permissions, or that it was created or deleted. Nothing is recorded when nothing changed."""
    changes: dict[str, Any]
    if before is None and after is not None:
        action, name, changes = "group.created", after.name, {"permissions": after.values["permissions"]}
    elif before is not None and after is None:
        action, name, changes = "group.deleted", before.name, {}
    elif before is not None and after is not None:
        action, name, changes = "group.updated", after.name, _differences(before, after)
        if not changes:
            return None
    else:
        return None
    return audit_record(
        action=action, actor=actor, ip_address=ip_address, details={"group": name, "via": DJANGO_ADMIN, **changes}
    )

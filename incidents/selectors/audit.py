"""Reads the audit trail: a declaration's or a plan's events, the walk that verifies the whole chain (against the
heads published to S3), and what the database role could do to it."""

import hmac
import re
from dataclasses import dataclass, field

from django.db import connections, router
from django.db.models import QuerySet

from ..aws import client as aws
from ..models import AuditEvent, Declaration, ResponsePlan

REWRITTEN = "rewritten"
CUT_SHORT = "cut short"
HEADS_PREFIX = "audit-heads/"
_HEAD_KEY = re.compile(re.escape(HEADS_PREFIX) + r"(\d{20})-([0-9a-f]{64})")


def declaration_audit_trail(*, declaration: Declaration) -> QuerySet[AuditEvent]:
    return declaration.audit_events.order_by("id")


def response_plan_audit_trail(*, plan: ResponsePlan) -> QuerySet[AuditEvent]:
    return plan.audit_events.order_by("-id")


def audit_chain_head() -> AuditEvent | None:
    """The newest event: the chain's head."""
    return AuditEvent.objects.order_by("-id").first()


# --- Published heads ---------------------------------------------------------------------------------------------


def audit_head_key(*, event_id: int, event_hash: str) -> str:
    """Where the head at one event is published: its id and hash are in the name, so one listing reads them all."""
    return f"{HEADS_PREFIX}{event_id:020d}-{event_hash}"


def audit_published_heads(*, bucket: str) -> dict[int, set[str]]:
    """Every head ever published to `bucket` (every version of every object: none can be removed while locked),
    as event id → the hashes published for it. Raises AwsError when S3 cannot be read."""
    heads: dict[int, set[str]] = {}
    for key in aws.list_every_version(bucket=bucket, prefix=HEADS_PREFIX):
        found = _HEAD_KEY.fullmatch(key)
        if found:
            heads.setdefault(int(found.group(1)), set()).add(found.group(2))
    return heads


# --- Verification -------------------------------------------------------------------------------------------------


@dataclass
class AuditVerification:
    checked: int = 0
    first_id: int | None = None
    last_id: int | None = None
    last_hash: str = ""
    legacy: int = 0  # events linked before the chain was keyed (plain SHA-256)
    heads_passed: int = 0  # published heads the chain passes through
    newest_head_id: int | None = None
    anchor_id: int | None = None  # the event whose hash was given as the anchor, once the walk has passed it
    failure: str = ""  # REWRITTEN or CUT_SHORT
    broken_id: int | None = None
    problem: str = ""
    passed_heads: set[int] = field(default_factory=set, repr=False)

    @property
    def intact(self) -> bool:
        return not self.failure

    def fail(self, failure: str, problem: str, event_id: int | None = None) -> "AuditVerification":
        self.failure, self.problem, self.broken_id = failure, problem, event_id
        return self


def _link_problem(event: AuditEvent, expected_previous: str, keyed_before: bool) -> str:
    """Why `event` is not a sound link after `expected_previous`, or ""."""
    if event.previous_hash != expected_previous:
        return (
            f"its previous_hash {event.previous_hash[:12]}… does not match the hash of the event before it "
            f"({expected_previous[:12]}…): an event was removed, inserted or reordered"
        )
    if event.content_hash != event.compute_content_hash():
        return "its content does not match its hash: the event was changed after it was written"
    if event.key_id == AuditEvent.LEGACY_KEY_ID and keyed_before:
        return "it is linked without a key (plain SHA-256) after keyed events: it was written without the key"
    try:
        expected = AuditEvent.chain_hash(event.previous_hash, event.content_hash, event.key_id)
    except LookupError:
        return (
            f"it is linked with key {event.key_id!r}, which PORTAL_AUDIT_KEYS does not hold: a forged event, or a "
            "retired key removed while events still need it"
        )
    if not hmac.compare_digest(event.hash, expected):
        return (
            f"its hash does not follow from its content and the previous hash under key {event.key_id!r}: it was "
            "written or rewritten without the key"
        )
    return ""


def audit_chain_verify(
    *, genesis_hash: str, anchor: str = "", heads: dict[int, set[str]] | None = None, chunk_size: int = 5000
) -> AuditVerification:
    """Walk the whole chain in id order, holding one chunk at a time, and stop at the first failure.

    Each link is checked under its key. Events removed from the very end leave a chain that still links up, so the
    chain must also pass through every published head (`heads`, from audit_published_heads) unchanged and reach
    the newest one; `anchor`, a hash an earlier walk reported (kept outside the database), must still be in it.
    A failure is REWRITTEN (an event changed, added, removed or re-linked) or CUT_SHORT (events missing from the
    end)."""
    heads = heads or {}
    result = AuditVerification(newest_head_id=max(heads, default=None))
    expected_previous = genesis_hash
    keyed = False
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=chunk_size):
        if result.first_id is None:
            result.first_id = event.pk
        problem = _link_problem(event, expected_previous, keyed)
        if problem:
            return result.fail(REWRITTEN, problem, event.pk)
        for published in heads.get(event.pk, ()):
            if published != event.hash:
                return result.fail(
                    REWRITTEN,
                    f"it no longer matches the head published for it ({published[:12]}…): it or an event before it "
                    "was rewritten and the chain re-linked",
                    event.pk,
                )
        if event.pk in heads:
            result.passed_heads.add(event.pk)
        keyed = keyed or event.key_id != AuditEvent.LEGACY_KEY_ID
        result.legacy += event.key_id == AuditEvent.LEGACY_KEY_ID
        expected_previous = event.hash
        result.checked += 1
        result.last_id = event.pk
        result.last_hash = event.hash
        if anchor and event.hash == anchor:
            result.anchor_id = event.pk
    result.heads_passed = len(result.passed_heads)
    last_id = result.last_id or 0
    skipped = sorted(head for head in heads if head < last_id and head not in result.passed_heads)
    if skipped:
        return result.fail(
            REWRITTEN,
            f"the chain no longer passes through the head published at event #{skipped[0]}: events were removed "
            "and the chain continued or was re-linked without them",
            skipped[0],
        )
    if result.newest_head_id is not None and result.newest_head_id > last_id:
        where = f"ends at event #{last_id}" if result.checked else "is empty"
        return result.fail(
            CUT_SHORT,
            f"the trail {where}, but a head was published at event #{result.newest_head_id}: events were removed "
            "from its end",
        )
    if anchor and result.anchor_id is None:
        return result.fail(
            CUT_SHORT,
            f"the anchored event (hash {anchor[:12]}…) is no longer in the trail: events were removed from its end, "
            "or the hash is not one this trail reported",
        )
    return result


# --- The database role --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditRolePrivileges:
    """What the role the portal connects as could do to the audit trail beyond INSERT and SELECT."""

    role: str
    excess: tuple[str, ...]
    applicable: bool = True  # False on databases without roles (SQLite)


_ROLE_SQL = """
SELECT current_user, r.rolsuper, pg_has_role(current_user, c.relowner, 'MEMBER'),
       has_table_privilege(c.oid, 'UPDATE'), has_table_privilege(c.oid, 'DELETE'),
       has_table_privilege(c.oid, 'TRUNCATE'), has_table_privilege(c.oid, 'TRIGGER')
FROM pg_class c JOIN pg_roles r ON r.rolname = current_user
WHERE c.oid = to_regclass(%s)
"""


def audit_role_privileges() -> AuditRolePrivileges:
    """The audit table's privileges the current database role should not have (docs/security.md's runtime role may
    only INSERT and SELECT): empty `excess` when it has none of them."""
    connection = connections[router.db_for_write(AuditEvent)]
    if connection.vendor != "postgresql":
        return AuditRolePrivileges(role="", excess=(), applicable=False)
    with connection.cursor() as cursor:
        cursor.execute(_ROLE_SQL, [AuditEvent._meta.db_table])
        role, superuser, owner, *privileges = cursor.fetchone()
    excess = [
        name
        for name, held in (
            ("superuser: bypasses every trigger", superuser),
            ("owner of the table: may disable its triggers or drop it", owner),
            ("UPDATE", privileges[0]),
            ("DELETE", privileges[1]),
            ("TRUNCATE", privileges[2]),
            ("TRIGGER", privileges[3]),
        )
        if held
    ]
    return AuditRolePrivileges(role=role, excess=tuple(excess))

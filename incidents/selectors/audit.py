"""Reads the audit trail: a declaration's or a plan's events, and the walk that verifies the whole chain."""

from dataclasses import dataclass

from django.db.models import QuerySet

from ..models import AuditEvent, Declaration, ResponsePlan


def declaration_audit_trail(*, declaration: Declaration) -> QuerySet[AuditEvent]:
    return declaration.audit_events.order_by("id")


def response_plan_audit_trail(*, plan: ResponsePlan) -> QuerySet[AuditEvent]:
    return plan.audit_events.order_by("-id")


@dataclass
class AuditVerification:
    checked: int = 0
    first_id: int | None = None
    last_id: int | None = None
    last_hash: str = ""
    broken_id: int | None = None
    problem: str = ""
    anchor_id: int | None = None  # the event whose hash was given as the anchor, once the walk has passed it
    anchor_missing: bool = False

    @property
    def intact(self) -> bool:
        return self.broken_id is None and not self.anchor_missing


def audit_chain_verify(*, genesis_hash: str, anchor: str = "", chunk_size: int = 5000) -> AuditVerification:
    """Walk the whole chain in id order, holding one chunk at a time, and stop at the first broken link.

    Events removed from the very end leave a chain that still links up. `anchor`, a hash an earlier walk reported
    as the latest (kept outside the database), must still be in the chain for it to count as intact."""
    result = AuditVerification()
    expected_previous = genesis_hash
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=chunk_size):
        if result.first_id is None:
            result.first_id = event.pk
        if event.previous_hash != expected_previous:
            result.broken_id = event.pk
            result.problem = (
                f"its previous_hash {event.previous_hash[:12]}… does not match the hash of the event before it "
                f"({expected_previous[:12]}…): an event was removed, inserted or reordered"
            )
            return result
        if event.content_hash != event.compute_content_hash():
            result.broken_id = event.pk
            result.problem = "its content does not match its hash: the event was changed after it was written"
            return result
        if event.hash != AuditEvent.chain_hash(event.previous_hash, event.content_hash):
            result.broken_id = event.pk
            result.problem = "its hash does not follow from its content and the previous hash: it was rewritten"
            return result
        expected_previous = event.hash
        result.checked += 1
        result.last_id = event.pk
        result.last_hash = event.hash
        if anchor and event.hash == anchor:
            result.anchor_id = event.pk
    if anchor and result.anchor_id is None:
        result.anchor_missing = True
        result.problem = (
            f"the anchored event (hash {anchor[:12]}…) is no longer in the trail: events were removed from its end, "
            "or the hash is not one this trail reported"
        )
    return result

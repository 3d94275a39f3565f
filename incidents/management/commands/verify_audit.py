import re

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from incidents.aws.client import AwsError
from incidents.selectors.audit import (
    CUT_SHORT,
    REWRITTEN,
    audit_chain_verify,
    audit_published_heads,
    audit_role_privileges,
)
from incidents.services.audit import GENESIS_HASH

HASH = re.compile(r"[0-9a-f]{64}")
# Exit codes: 2 is argparse's for a wrong command line.
EXIT_REWRITTEN = 1
EXIT_CUT_SHORT = 3
EXIT_HEADS_UNREADABLE = 4


class Command(BaseCommand):
    help = (
        "Verify the audit trail: every link under its key, and the chain against every head published to "
        "PORTAL_AUDIT_HEADS_BUCKET. Exit 0 with a summary when intact; 1 when rewritten (an event changed, added, "
        "removed or re-linked, or a published head no longer on the chain); 3 when cut short (events missing from "
        "the end: the trail ends before the newest published head or the --anchor); 4 when the published heads "
        "cannot be read. Warns when the database role may do more than INSERT and SELECT audit events."
    )

    def add_arguments(self, parser):
        parser.add_argument("--chunk-size", type=int, default=5000, help="Events read per database round trip.")
        parser.add_argument(
            "--anchor",
            default="",
            metavar="HASH",
            help="A latest hash an earlier run printed: exit 3 unless the trail still holds that event.",
        )

    def handle(self, *args, chunk_size, anchor, **options):
        anchor = anchor.strip().lower()
        if anchor and not HASH.fullmatch(anchor):
            raise CommandError("--anchor takes a hash as this command prints it: 64 hexadecimal characters.")
        self._warn_about_the_role()
        bucket = settings.PORTAL_AUDIT_HEADS_BUCKET
        heads: dict[int, set[str]] = {}
        heads_error = ""
        if bucket:
            try:
                heads = audit_published_heads(bucket=bucket)
            except AwsError as error:
                heads_error = f"the published heads in s3://{bucket} could not be read ({error.code})"
        result = audit_chain_verify(genesis_hash=GENESIS_HASH, anchor=anchor, heads=heads, chunk_size=chunk_size)
        if result.failure == REWRITTEN:
            where = f" at event #{result.broken_id}" if result.broken_id is not None else ""
            raise CommandError(
                f"Audit trail rewritten{where}: {result.problem}. {result.checked} events before it verified.",
                returncode=EXIT_REWRITTEN,
            )
        if result.failure == CUT_SHORT:
            raise CommandError(
                f"Audit trail cut short: {result.problem}. {result.checked} events verified.",
                returncode=EXIT_CUT_SHORT,
            )
        if heads_error:
            raise CommandError(
                f"Audit trail not verified against its published heads: {heads_error}. The {result.checked} events "
                "in the database link up under their keys.",
                returncode=EXIT_HEADS_UNREADABLE,
            )
        if not bucket:
            self.stderr.write(
                "Warning: PORTAL_AUDIT_HEADS_BUCKET is not set, so no published head is checked: events removed from "
                "the end of the trail are caught only with --anchor."
            )
        if not result.checked:
            self.stdout.write("Audit trail intact: it has no events yet, and no head was ever published.")
            return
        published = f" It passes through {result.heads_passed} published heads." if bucket else ""
        anchored = f" It still holds the anchored event #{result.anchor_id}." if anchor else ""
        legacy = f" {result.legacy} of them linked before keys (plain SHA-256)." if result.legacy else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit trail intact: {result.checked} events verified, #{result.first_id} to #{result.last_id}; "
                f"latest hash {result.last_hash}.{legacy}{published}{anchored}"
            )
        )

    def _warn_about_the_role(self) -> None:
        privileges = audit_role_privileges()
        if privileges.excess:
            self.stderr.write(
                f"Warning: the database role {privileges.role!r} may do more than INSERT and SELECT audit events: "
                f"{'; '.join(privileges.excess)}. Connect the portal as the runtime role of docs/security.md."
            )

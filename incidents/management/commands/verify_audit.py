import re

from django.core.management.base import BaseCommand, CommandError

from incidents.selectors.audit import audit_chain_verify
from incidents.services.audit import GENESIS_HASH

HASH = re.compile(r"[0-9a-f]{64}")


class Command(BaseCommand):
    help = (
        "Walk the audit trail's hash chain; exit 1 naming the first broken link, 0 with a summary when intact. "
        "Keep the latest hash it prints outside the database and pass it back with --anchor: events removed from "
        "the end of the trail leave a chain that still links up, but not one that still holds that hash."
    )

    def add_arguments(self, parser):
        parser.add_argument("--chunk-size", type=int, default=5000, help="Events read per database round trip.")
        parser.add_argument(
            "--anchor",
            default="",
            metavar="HASH",
            help="A latest hash an earlier run printed: exit 1 unless the trail still holds that event.",
        )

    def handle(self, *args, chunk_size, anchor, **options):
        anchor = anchor.strip().lower()
        if anchor and not HASH.fullmatch(anchor):
            raise CommandError("--anchor takes a hash as this command prints it: 64 hexadecimal characters.")
        result = audit_chain_verify(genesis_hash=GENESIS_HASH, anchor=anchor, chunk_size=chunk_size)
        if result.broken_id is not None:
            raise CommandError(
                f"Audit trail broken at event #{result.broken_id}: {result.problem}. "
                f"{result.checked} events before it verified.",
                returncode=1,
            )
        if result.anchor_missing:
            raise CommandError(
                f"Audit trail cut short: {result.problem}. {result.checked} events verified.", returncode=1
            )
        if not result.checked:
            self.stdout.write("Audit trail intact: it has no events yet.")
            return
        anchored = f" It still holds the anchored event #{result.anchor_id}." if anchor else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit trail intact: {result.checked} events verified, #{result.first_id} to #{result.last_id}; "
                f"latest hash {result.last_hash}.{anchored}"
            )
        )

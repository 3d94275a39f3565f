from django.core.management.base import BaseCommand, CommandError

from incidents import selectors, services


class Command(BaseCommand):
    help = "Walk the audit trail's hash chain; exit 1 naming the first broken link, 0 with a summary when intact."

    def add_arguments(self, parser):
        parser.add_argument("--chunk-size", type=int, default=5000, help="Events read per database round trip.")

    def handle(self, *args, chunk_size, **options):
        result = selectors.audit_chain_verify(genesis_hash=services.GENESIS_HASH, chunk_size=chunk_size)
        if not result.intact:
            raise CommandError(
                f"Audit trail broken at event #{result.broken_id}: {result.problem}. "
                f"{result.checked} events before it verified.",
                returncode=1,
            )
        if not result.checked:
            self.stdout.write("Audit trail intact: it has no events yet.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit trail intact: {result.checked} events verified, #{result.first_id} to #{result.last_id}; "
                f"latest hash {result.last_hash}."
            )
        )

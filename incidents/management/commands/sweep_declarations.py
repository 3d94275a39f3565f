from django.core.management.base import BaseCommand

from incidents.services.sweeper import declarations_sweep


class Command(BaseCommand):
    help = "Re-dispatch declarations stuck queued or starting (the periodic sweeper, run once by hand)."

    def handle(self, *args, **options):
        result = declarations_sweep()
        self.stdout.write(
            f"Re-dispatched {len(result.queued)} queued, {len(result.starting)} starting, "
            f"{len(result.attachments)} with files waiting to be attached."
        )

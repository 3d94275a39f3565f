from django.core.management.base import BaseCommand, CommandError

from incidents.aws.client import AwsError
from incidents.services.plans import response_plans_sync


class Command(BaseCommand):
    help = "Mirror AWS response plans into the portal. New plans arrive hidden until an admin shows them."

    def handle(self, *args, **options):
        try:
            result = response_plans_sync()
        except AwsError as exc:
            raise CommandError(f"Could not read response plans from AWS: {exc}") from exc
        self.stdout.write(
            f"{len(result.created)} new (hidden until shown), {len(result.updated)} changed, "
            f"{len(result.deleted)} deleted in AWS, {result.unchanged} unchanged."
        )

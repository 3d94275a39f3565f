"""``python manage.py sandbox``: run the local AWS sandbox (ssm-incidents emulator + moto S3).

A thin wrapper so developers do not need to know about ``python -m sandbox``; all behaviour lives in the
top-level ``sandbox`` package, which does not depend on Django.

Local mode only (``portal.settings.local``, what ``make run`` uses): anywhere else the portal talks to real AWS, and
a production install has no sandbox to run (its ``sandbox`` dependency group, moto, is left out).
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

NOT_LOCAL = (
    "The sandbox stands in for AWS on a developer's machine and runs in local mode only (portal.settings.local, as "
    "`make run` starts it); these settings ({settings}) are not local mode. Production talks to real AWS (README, "
    "Pointing it at real AWS); in a development checkout, run `python manage.py sandbox` without "
    "DJANGO_SETTINGS_MODULE, or `python -m sandbox`."
)


class Command(BaseCommand):
    help = "Serve the ssm-incidents emulator and moto's S3 on one local AWS endpoint (Ctrl-C stops)."
    # The sandbox touches neither the database nor Django's checks; skip them so it starts instantly.
    requires_system_checks = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=4566, help="port to listen on (default 4566)")
        parser.add_argument("--seed-demo", action="store_true", help="create demo response plans and the bucket")
        parser.add_argument(
            "--bucket", help="S3 bucket to create (default with --seed-demo: incident-portal-attachments)"
        )

    def handle(self, *args, **options):
        if not getattr(settings, "PORTAL_LOCAL_MODE", False):
            raise CommandError(NOT_LOCAL.format(settings=settings.SETTINGS_MODULE))
        # Imported here, in local mode only: a production install does not have moto, which the sandbox needs.
        from sandbox.server import run

        run(
            host=options["host"],
            port=options["port"],
            seed_demo=options["seed_demo"],
            bucket=options["bucket"],
            out=self.stdout,
        )

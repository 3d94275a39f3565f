"""``python manage.py sandbox``: run the local AWS sandbox (ssm-incidents emulator + moto S3).

A thin wrapper so developers do not need to know about ``python -m sandbox``; all behaviour lives in the
top-level ``sandbox`` package, which does not depend on Django.
"""

from django.core.management.base import BaseCommand


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
        from sandbox.server import run

        run(
            host=options["host"],
            port=options["port"],
            seed_demo=options["seed_demo"],
            bucket=options["bucket"],
            out=self.stdout,
        )

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from incidents.errors import PortalError
from incidents.services.api_tokens import api_token_create


class Command(BaseCommand):
    help = "Create a personal API token for a user and print its secret (shown once; only a hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="What will use the token.")
        parser.add_argument("--expires-in-days", type=int, default=90, help="0 for a token that never expires.")

    def handle(self, *args, username, name, expires_in_days, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days > 0 else None
        try:
            _token, secret = api_token_create(owner=user, name=name, expires_at=expires_at)
        except PortalError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(secret)

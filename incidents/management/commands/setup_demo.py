import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from incidents import roles
from incidents.models import ResponsePlan
from incidents.selectors.accounts import username_taken_by
from incidents.services.plans import response_plan_update

DEMO_ACCOUNTS = {"support": roles.SUPPORT, "manager": roles.MANAGER, "admin": roles.ADMIN}
WHEN_TO_USE = {
    "website-outage": "The public website or sign-in is down or erroring for many customers.",
    "payments-degraded": "Checkout or payments are failing or much slower than usual.",
    "data-pipeline-delay": "Reports or data exports are late, but customers can still use the product.",
    "security-event": "Suspected breach, leaked credential, or unexpected access. Declare early.",
    "internal-tooling": "Internal tools are broken and slowing staff down; customers are unaffected.",
}


class Command(BaseCommand):
    help = "Local mode only: create the demo accounts and show the demo response plans."

    def add_arguments(self, parser):
        parser.add_argument("--password", help="Password for every demo account (default: generated).")

    def handle(self, *args, password=None, **options):
        if not getattr(settings, "PORTAL_LOCAL_MODE", False):
            raise CommandError("Demo accounts exist only in local mode (portal.settings.local).")
        password = password or secrets.token_urlsafe(12)
        User = get_user_model()
        for username, group_name in DEMO_ACCOUNTS.items():
            existing = username_taken_by(username=username)
            if existing not in (None, username):
                # Usernames are one name regardless of capitals: "Admin" would be this demo account's double.
                raise CommandError(
                    f"The account “{existing}” already exists and counts as the same name as the demo account "
                    f"“{username}”; rename or remove it in the admin first."
                )
            user, _ = User.objects.get_or_create(username=username)
            user.set_password(password)
            user.is_staff = username == "admin"
            user.is_superuser = username == "admin"
            user.save()
            user.groups.set([Group.objects.get(name=group_name)])
        for plan in ResponsePlan.objects.filter(deleted_in_aws=False):
            response_plan_update(
                plan=plan, actor=None, is_visible=True, when_to_use=plan.when_to_use or WHEN_TO_USE.get(plan.name, "")
            )
        self.stdout.write(self.style.SUCCESS(f"Demo accounts: support, manager, admin — password: {password}"))

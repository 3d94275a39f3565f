"""Usernames are unique regardless of capitals: "Admin" cannot be made beside "admin", whichever way the account is
made (the portal's pages, Django's admin, createsuperuser, a shell). A unique index on LOWER(username) in auth_user,
which Django's own migrations leave case-sensitive. Forms check first with a clear message
(services.accounts.username_check, which also folds compatibility forms and refuses look-alike letters); the
index is what holds when something else writes.

Existing accounts that differ only in capitals are never renamed or merged here: which one is the real person is an
operator's decision. The migration stops and names them; rename or remove one (the Django admin allows it), then
migrate again.
"""

from django.db import migrations
from django.db.models import Count
from django.db.models.functions import Lower

INDEX = "incidents_auth_user_username_ci_uniq"


def refuse_existing_duplicates(apps, schema_editor):
    User = apps.get_model("auth", "User")
    clashes = (
        User.objects.annotate(folded=Lower("username"))
        .values("folded")
        .annotate(accounts=Count("id"))
        .filter(accounts__gt=1)
        .values_list("folded", flat=True)
    )
    groups = [
        sorted(User.objects.annotate(folded=Lower("username")).filter(folded=folded).values_list("username", flat=True))
        for folded in clashes
    ]
    if groups:
        listed = "; ".join(" / ".join(names) for names in groups)
        raise RuntimeError(
            f"These accounts differ only in capitals: {listed}. Usernames become unique regardless of case; rename or "
            "remove all but one of each (Django's admin allows it), then migrate again."
        )


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0008_related_item_order_by_column"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunPython(refuse_existing_duplicates, migrations.RunPython.noop),
        migrations.RunSQL(
            f"CREATE UNIQUE INDEX {INDEX} ON auth_user (LOWER(username))",
            f"DROP INDEX {INDEX}",
        ),
    ]

import django.contrib.postgres.indexes
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models
from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce, Upper

TITLE_TRGM_INDEX = django.contrib.postgres.indexes.GinIndex(
    django.contrib.postgres.indexes.OpClass(Upper("effective_title"), name="gin_trgm_ops"),
    name="declaration_title_trgm",
)


def fill_effective_values(apps, schema_editor):
    Declaration = apps.get_model("incidents", "Declaration")
    ResponsePlan = apps.get_model("incidents", "ResponsePlan")
    plan = ResponsePlan.objects.filter(pk=OuterRef("response_plan_id"))
    Declaration.objects.update(
        effective_impact=Coalesce(F("impact"), Subquery(plan.values("template_impact")[:1])),
    )
    Declaration.objects.filter(title="").update(effective_title=Subquery(plan.values("template_title")[:1]))
    Declaration.objects.exclude(title="").update(effective_title=F("title"))


def add_trigram_index(apps, schema_editor):
    # SQLite has no GIN indexes: search there scans, which is fine for `make run`.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.add_index(apps.get_model("incidents", "Declaration"), TITLE_TRGM_INDEX)


def remove_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.remove_index(apps.get_model("incidents", "Declaration"), TITLE_TRGM_INDEX)


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0002_roles_and_append_only_audit"),
    ]

    operations = [
        TrigramExtension(),
        migrations.AddField(
            model_name="declaration",
            name="effective_title",
            field=models.CharField(blank=True, default="", editable=False, max_length=200),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="declaration",
            name="effective_impact",
            field=models.PositiveSmallIntegerField(
                blank=True,
                null=True,
                editable=False,
                choices=[(1, "Critical"), (2, "High"), (3, "Medium"), (4, "Low"), (5, "No impact")],
            ),
        ),
        migrations.RunPython(fill_effective_values, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="declaration",
            name="effective_impact",
            field=models.PositiveSmallIntegerField(
                blank=True,
                editable=False,
                choices=[(1, "Critical"), (2, "High"), (3, "Medium"), (4, "Low"), (5, "No impact")],
            ),
        ),
        migrations.AddIndex(
            model_name="declaration",
            index=models.Index(fields=["state", "-created_at", "-id"], name="declaration_state_created"),
        ),
        migrations.AddIndex(
            model_name="declaration",
            index=models.Index(fields=["response_plan", "-created_at", "-id"], name="declaration_plan_created"),
        ),
        migrations.AddIndex(
            model_name="declaration",
            index=models.Index(fields=["effective_impact", "-created_at", "-id"], name="declaration_impact_created"),
        ),
        migrations.AddIndex(
            model_name="declaration",
            index=models.Index(fields=["declared_by", "-created_at", "-id"], name="declaration_declarer_created"),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="declaration", index=TITLE_TRGM_INDEX)],
            database_operations=[migrations.RunPython(add_trigram_index, remove_trigram_index)],
        ),
    ]

"""Related items order by their declaration's id, not by the declaration's own ordering (which joined the
declaration into every query for one declaration's items). No change to the database."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0007_leaner_indexes"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="relateditem",
            options={"ordering": ["declaration_id", "position"]},
        ),
    ]

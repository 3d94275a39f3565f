"""The database's stand-in for the Redis token bucket (local mode without Redis)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0010_audit_chain_keyed"),
    ]

    operations = [
        migrations.CreateModel(
            name="RateLimitBucket",
            fields=[
                ("name", models.CharField(max_length=100, primary_key=True, serialize=False)),
                ("next_arrival", models.FloatField(default=0)),
            ],
        ),
    ]

"""The summary's medians on SQLite (`make run`'s default database), which has no median of its own: the same
figures as PostgreSQL's, from a `manage.py` of its own on a fresh SQLite database."""

import os
import subprocess
import sys

from tests.helpers import ROOT

SCRIPT = """
from datetime import timedelta
from django.contrib.auth.models import User
from django.utils import timezone
from incidents.models import Declaration, ResponsePlan
from incidents.selectors.summary import declarations_durations

now = timezone.now()
person = User.objects.create(username="sam")
plan = ResponsePlan.objects.create(arn="arn:aws:ssm-incidents::1:response-plan/p", name="p", template_title="T",
                                   template_impact=2)
for number, (before, started, resolved) in enumerate([(10, 1, None), (20, 3, 150), (None, None, None)]):
    Declaration.objects.create(
        declared_by=person, response_plan=plan, client_token=f"t{number}", created_at=now,
        impact_started_at=now - timedelta(minutes=before) if before else None,
        started_at=now + timedelta(minutes=started) if started else None,
        resolved_at=now + timedelta(minutes=started + resolved) if resolved else None,
    )
(row,) = declarations_durations(Declaration.objects.all())
print(row.count, row.impact_to_declared, row.declared_to_started, row.started_to_resolved)
"""


def test_the_medians_on_sqlite(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "PORTAL_"))}
    env.update(DJANGO_SETTINGS_MODULE="portal.settings.local", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
        )

    migrated = manage("migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    result = manage("shell", "-c", SCRIPT)
    assert result.returncode == 0, result.stderr
    # Impact → declared: 10, 20 and 0 min; declared → started: 1 and 3 min; started → resolved: 150 min.
    assert result.stdout.strip().splitlines()[-1] == "3 0:10:00 0:02:00 2:30:00"

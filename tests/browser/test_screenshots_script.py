"""scripts/screenshots.py, run as the lead runs it: against a running portal, signing in with a password."""

import subprocess
import sys

from incidents import roles
from tests.conftest import make_user
from tests.helpers import ROOT, make_declaration

PAGES = ["declare", "declaration", "history", "summary", "plans", "users", "tokens", "api-docs"]


def test_the_script_saves_every_main_page_at_both_widths(live_server, django_user_model, plans, tmp_path):
    admin = make_user(django_user_model, "shot.admin", roles.ADMIN)
    make_declaration(declared_by=admin, plan=plans["website-outage"], title="Checkout down")
    result = subprocess.run(
        [sys.executable, "scripts/screenshots.py", live_server.url, "shot.admin", "a-long-test-password", tmp_path],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    saved = sorted(path.name for path in tmp_path.glob("*.png"))
    assert saved == sorted(f"{page}-{width}.png" for page in PAGES for width in (1280, 390))
    assert "skipped" not in result.stdout
    assert all(path.stat().st_size > 5_000 for path in tmp_path.glob("*.png"))

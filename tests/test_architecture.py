"""The layout a maintainer relies on: layers only point down, no import cycles, `portal/` is configuration only,
one door to boto3, and nothing of the app leans on Django's private internals.

Read from the source (each module's imports, wherever they stand in it), so that a violation fails here before it
confuses a reader. docs/architecture.md explains the layers.
"""

import ast
from pathlib import Path

import pytest

from tests.helpers import ROOT

APP = ROOT / "incidents"
# Lower numbers sit lower; a module may import its own layer or any below it.
LAYERS = {
    "errors": 0,
    "models": 0,
    "metrics": 0,
    "roles": 1,
    "aws": 1,
    "validators": 2,
    "http": 2,
    "charts": 2,
    "prepared_statements": 1,
    "selectors": 3,
    "services": 4,
    "health": 4,
    "forms": 5,
    "warmup": 5,
    "admin_site": 5,
    "sso": 5,
    "admin": 6,
    "context_processors": 6,
    "templatetags": 6,
    "views": 6,
    "api": 6,
    "tasks": 6,
    "receivers": 6,
    "uploads": 6,
    "urls": 7,
    "sso_urls": 7,
    "management": 7,
    "apps": 7,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, relative imports resolved, at any depth of the file (not only the top)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from . import roles` imports the module incidents.roles
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def app_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for path in APP.rglob("*.py")
        if "migrations" not in path.parts and "__pycache__" not in path.parts
    }


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 and parts[0] == "incidents" else None


def app_imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Each app module's imports of other app modules (only names that are modules)."""
    return {
        name: {other for other in imported_modules(path) if other in modules} - {name} for name, path in modules.items()
    }


def test_every_module_of_the_app_has_a_layer():
    missing = {name for name in app_modules() if name != "incidents" and layer_of(name) is None}
    assert not missing, f"give these a place in LAYERS and docs/architecture.md: {sorted(missing)}"


def test_layers_only_point_down():
    modules = app_modules()
    upward = [
        f"{name} imports {other}"
        for name, others in app_imports(modules).items()
        for other in others
        if (mine := layer_of(name)) is not None and (theirs := layer_of(other)) is not None and theirs > mine
    ]
    assert not upward, upward


def test_selectors_only_read():
    modules = app_modules()
    writes = [
        f"{name} imports {other}"
        for name, others in app_imports(modules).items()
        if name.startswith("incidents.selectors")
        for other in others
        if other.startswith("incidents.services")
    ]
    assert not writes, writes


def test_the_app_has_no_import_cycle():
    graph = app_imports(app_modules())
    # Importing incidents.services.x also runs the package's __init__: treat packages as plain modules here.
    visiting, done, cycles = set(), set(), []

    def visit(node: str, trail: list[str]) -> None:
        if node in visiting:
            cycles.append(trail[trail.index(node) :] + [node])
            return
        if node in done:
            return
        visiting.add(node)
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*trail, nxt])
        visiting.discard(node)
        done.add(node)

    for node in sorted(graph):
        visit(node, [node])
    assert not cycles, cycles


@pytest.mark.parametrize("path", sorted((ROOT / "portal").rglob("*.py")), ids=lambda path: path.name)
def test_portal_is_configuration_only(path):
    assert not {name for name in imported_modules(path) if name.split(".")[0] == "incidents"}


def test_boto3_is_reached_through_one_door():
    doors = {
        name
        for name, path in app_modules().items()
        if {other.split(".")[0] for other in imported_modules(path)} & {"boto3", "botocore"}
    }
    assert doors == {"incidents.aws.client"}


# The ORM's query compiler and the session engines' internals; not django.db.backends.signals, a documented API.
PRIVATE_DJANGO = ("django.db.models.sql", "django.contrib.sessions.backends", "django.db.backends.base")


def test_nothing_leans_on_djangos_private_internals():
    leaning = {
        f"{name} imports {other}"
        for name, path in app_modules().items()
        for other in imported_modules(path)
        if other.startswith(PRIVATE_DJANGO) or any(part.startswith("_") for part in other.split(".") if part)
    }
    assert not leaning, leaning


def test_every_task_a_service_sends_by_name_exists_and_has_a_queue():
    """Services send tasks by name (they sit below tasks.py): a misspelt name would be published, dropped by the
    worker as unknown, and re-sent by the sweeper forever."""
    from django.conf import settings

    from incidents.services.actions import SEND_TASK
    from incidents.services.attachments import ATTACH_TASK
    from incidents.services.declarations import START_TASK
    from portal.celery import app

    app.loader.import_default_modules()
    for name in (START_TASK, ATTACH_TASK, SEND_TASK):
        assert name in app.tasks
        assert settings.CELERY_TASK_ROUTES[name]["queue"] == "declarations"

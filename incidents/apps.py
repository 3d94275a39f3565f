from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps

from . import prepared_statements


class IncidentsConfig(AppConfig):
    name = "incidents"
    default = True

    def ready(self) -> None:
        prepared_statements.install()
        # Imported once the models are loaded, as Django's documentation prescribes: the receivers of sign-ins,
        # failed sign-ins, lockouts and sign-outs (the audit trail, the metrics) connect themselves.
        from . import receivers  # noqa: F401


class PortalAdminConfig(admin_apps.AdminConfig):
    """Django's admin, open to the portal's admins only (incidents/admin_site.py); the site is loaded lazily, as it
    imports models. Named in INSTALLED_APPS in place of django.contrib.admin."""

    default = False
    default_site = "incidents.admin_site.PortalAdminSite"

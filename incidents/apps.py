from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.contrib.auth.signals import user_logged_in, user_login_failed

from . import metrics, prepared_statements


class IncidentsConfig(AppConfig):
    name = "incidents"
    default = True

    def ready(self) -> None:
        prepared_statements.install()
        user_logged_in.connect(metrics.sign_in_succeeded, dispatch_uid="incidents.metrics.sign_in")
        user_login_failed.connect(metrics.sign_in_refused, dispatch_uid="incidents.metrics.sign_in_refused")


class PortalAdminConfig(admin_apps.AdminConfig):
    """Django's admin, open to the portal's admins only (incidents/admin_site.py); the site is loaded lazily, as it
    imports models. Named in INSTALLED_APPS in place of django.contrib.admin."""

    default = False
    default_site = "incidents.admin_site.PortalAdminSite"

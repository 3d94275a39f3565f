from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    # Loaded lazily: the site module imports models.
    default_site = "portal.admin_site.PortalAdminSite"

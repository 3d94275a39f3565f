from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.urls import URLPattern, URLResolver, include, path

urlpatterns: list[URLPattern | URLResolver] = [
    # Signing in and out only. The portal sends no e-mail, so it offers no password reset (an admin sets a new
    # password in the Django admin); changing one's own password is the portal's own page (incidents/urls.py).
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    # Signing out (of the identity provider too) and signing in through it: incidents/sso_urls.py.
    path("", include("incidents.sso_urls")),
    path("admin/", admin.site.urls),
    path("", include("incidents.urls")),
]

if settings.PORTAL_BENCH_VIEWS:

    @login_not_required
    def bare(request):
        """The benchmark's yardstick: the same server and middleware, no work."""
        return HttpResponse("ok", content_type="text/plain")

    urlpatterns.append(path("bench/bare/", bare))

"""Signing in through the identity provider and signing out, under names of their own (not the app's namespace):
`logout` as Django's own view was named, and the callback the provider is given (`/oidc/callback/`)."""

from django.urls import path

from .views import sso

urlpatterns = [
    path("oidc/authenticate/", sso.SignInStart.as_view(), name="sso-start"),
    path("oidc/callback/", sso.SignInCallback.as_view(), name="sso-callback"),
    path("accounts/logout/", sso.SignOut.as_view(), name="logout"),
]

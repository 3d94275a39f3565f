from django.urls import include, path, re_path

from .api import actions as _api_actions  # noqa: F401 - registers the operations on a started incident
from .api import reference
from .api import views as api
from .views import accounts, curation, declarations, declare, health, history, incident_actions, metrics

app_name = "incidents"

urlpatterns = [
    path("", declare.home, name="home"),
    path("declare/", declare.declare, name="declare"),
    path("declarations/", history.declaration_list, name="declaration-list"),
    path("declarations/export.csv", history.declaration_export, name="declaration-export"),
    path("declarations/summary/", history.declaration_summary, name="declaration-summary"),
    path("declarations/<int:declaration_id>/", declarations.declaration_detail, name="declaration-detail"),
    path("declarations/<int:declaration_id>/retry/", declarations.declaration_retry, name="declaration-retry"),
    path("declarations/<int:declaration_id>/actions/", incident_actions.incident_actions, name="declaration-actions"),
    path(
        "declarations/<int:declaration_id>/notes/",
        incident_actions.incident_action_request,
        {"kind": "note"},
        name="declaration-note",
    ),
    path(
        "declarations/<int:declaration_id>/related-items/",
        incident_actions.incident_action_request,
        {"kind": "items"},
        name="declaration-items",
    ),
    path(
        "declarations/<int:declaration_id>/change/",
        incident_actions.incident_action_request,
        {"kind": "update"},
        name="declaration-update",
    ),
    path(
        "declarations/<int:declaration_id>/resolve/",
        incident_actions.incident_action_request,
        {"kind": "resolve"},
        name="declaration-resolve",
    ),
    path("declarations/<int:declaration_id>/join/", incident_actions.incident_join, name="declaration-join"),
    path(
        "declarations/<int:declaration_id>/files/<int:item_id>/",
        declarations.related_item_download,
        name="related-item-download",
    ),
    path("plans/", curation.response_plan_list, name="plan-list"),
    path("plans/sync/", curation.response_plan_sync, name="plan-sync"),
    path("plans/impact-levels/", curation.impact_level_list, name="impact-levels"),
    path("plans/<int:plan_id>/", curation.response_plan_edit, name="plan-edit"),
    path("plans/<int:plan_id>/move/", curation.response_plan_move, name="plan-move"),
    path("plans/<int:plan_id>/visibility/", curation.response_plan_visibility, name="plan-visibility"),
    path("users/", accounts.user_list, name="user-list"),
    path("users/new/", accounts.user_create, name="user-create"),
    path("users/<int:user_id>/", accounts.user_edit, name="user-edit"),
    path("accounts/password/", accounts.password_change, name="password-change"),
    path("tokens/", accounts.api_tokens, name="api-tokens"),
    path("tokens/all/", accounts.api_tokens_all, name="api-tokens-all"),
    path("tokens/<int:token_id>/revoke/", accounts.api_token_revoke, name="api-token-revoke"),
    # The JSON API (incidents/api/) and its reference.
    path("api/", reference.reference_redirect, name="api"),
    path("api/docs/", reference.reference, name="api-docs"),
    path("api/openapi.json", reference.openapi_document, name="api-openapi"),
    path("api/", include((api.urls(), "api"))),
    # Anything else under /api/ answers in the envelope, never with the HTML 404 page or a login redirect
    # (a prefix match, so that paths with line breaks are caught too: `.*$` would stop at them).
    re_path(r"^api/", reference.not_found),
    # Liveness for load balancers (anyone); readiness, with every part's state, for operators (views/access.py).
    path("healthz", health.liveness, name="healthz"),
    path("healthz/ready", health.readiness, name="healthz-ready"),
    path("metrics", metrics.metrics, name="metrics"),
]

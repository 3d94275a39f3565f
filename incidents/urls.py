from django.urls import path

from . import views

app_name = "incidents"

urlpatterns = [
    path("", views.home, name="home"),
    path("declare/", views.declare, name="declare"),
    path("declarations/", views.declaration_list, name="declaration-list"),
    path("declarations/export.csv", views.declaration_export, name="declaration-export"),
    path("declarations/summary/", views.declaration_summary, name="declaration-summary"),
    path("declarations/<int:declaration_id>/", views.declaration_detail, name="declaration-detail"),
    path("declarations/<int:declaration_id>/retry/", views.declaration_retry, name="declaration-retry"),
    path(
        "declarations/<int:declaration_id>/files/<int:item_id>/",
        views.related_item_download,
        name="related-item-download",
    ),
    path("plans/", views.response_plan_list, name="plan-list"),
    path("plans/sync/", views.response_plan_sync, name="plan-sync"),
    path("plans/<int:plan_id>/", views.response_plan_edit, name="plan-edit"),
    path("users/", views.user_list, name="user-list"),
    path("users/new/", views.user_create, name="user-create"),
    path("users/<int:user_id>/", views.user_edit, name="user-edit"),
]

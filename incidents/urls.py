from django.urls import path

from . import views

app_name = "incidents"

urlpatterns = [
    path("", views.home, name="home"),
    path("declare/", views.declare, name="declare"),
    path("declarations/<int:declaration_id>/", views.declaration_detail, name="declaration-detail"),
    path("declarations/<int:declaration_id>/retry/", views.declaration_retry, name="declaration-retry"),
    path("declarations/<int:declaration_id>/files/<int:item_id>/", views.declaration_file, name="declaration-file"),
    path("healthz", views.healthz, name="healthz"),
]

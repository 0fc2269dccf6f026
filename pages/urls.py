"""URL patterns of the composed pages. They keep the names they had when the registry and the
runs app served them (``versions:dashboard``, ``versions:model``, ``versions:checkpoint``,
``versions:model-safety``, ``jobs:detail``), so every template and bookmark is unchanged:
config/urls.py adds ``registry_pages`` to the ``versions`` namespace and ``run_pages`` to the
``jobs`` namespace. The apps below never import this module."""

from django.urls import path

from pages import views

registry_pages = [
    path("p/<slug:slug>/", views.project_dashboard, name="dashboard"),
    path("p/<slug:slug>/models/<str:model_name>/", views.model_detail, name="model"),
    path("p/<slug:slug>/models/<str:model_name>/safety/", views.model_safety, name="model-safety"),
    path("p/<slug:slug>/models/<str:model_name>/c/<int:number>/", views.checkpoint_detail, name="checkpoint"),
]

run_pages = [
    path("p/<slug:slug>/runs/<int:run_id>/", views.run_detail, name="detail"),
]

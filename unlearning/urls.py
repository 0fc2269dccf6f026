"""Unlearning pages (the REST API is unlearning.api_urls)."""

from django.urls import path

from unlearning import views

app_name = "unlearning"

urlpatterns = [
    path("p/<slug:slug>/models/<str:model_name>/c/<int:number>/unlearn/", views.unlearning_start, name="start"),
    path("p/<slug:slug>/unlearning/<int:unlearning_run_id>/", views.unlearning_detail, name="detail"),
    path("p/<slug:slug>/unlearning/<int:unlearning_run_id>/progress.json", views.unlearning_progress, name="progress"),
]

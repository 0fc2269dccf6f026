"""Evaluation pages (the REST API is evals.api_urls)."""
from django.urls import path

from evals import views

app_name = "evals"

urlpatterns = [
    path("p/<slug:slug>/evaluations/", views.evaluation_list, name="list"),
    path("p/<slug:slug>/evaluations/new/", views.evaluation_start, name="start"),
    path("p/<slug:slug>/evaluations/<int:evaluation_id>/", views.evaluation_detail, name="detail"),
    path("cases/<int:case_id>/image.png", views.case_image, name="case-image"),
    path("p/<slug:slug>/suites/", views.suite_list, name="suites"),
    path("p/<slug:slug>/suites/<str:suite_name>/v/<int:number>/", views.suite_version_detail, name="suite-version"),
]

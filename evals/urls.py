"""Evaluation pages (the REST API is evals.api_urls)."""

from django.urls import path

from evals import calibration_views, explorer_views, views

app_name = "evals"

urlpatterns = [
    path("p/<slug:slug>/evaluations/", views.evaluation_list, name="list"),
    path("p/<slug:slug>/evaluations/new/", views.evaluation_start, name="start"),
    path("p/<slug:slug>/evaluations/<int:evaluation_id>/", views.evaluation_detail, name="detail"),
    path("p/<slug:slug>/evaluations/<int:evaluation_id>/cases/", explorer_views.evaluation_cases, name="cases"),
    path("p/<slug:slug>/evaluations/<int:evaluation_id>/cases/export/", explorer_views.evaluation_cases_export, name="cases-export"),
    path("cases/<int:case_id>/image.png", views.case_image, name="case-image"),
    path("p/<slug:slug>/calibrations/", calibration_views.calibration_list, name="calibrations"),
    path("p/<slug:slug>/calibrations/new/", calibration_views.calibration_start, name="calibration-start"),
    path("p/<slug:slug>/calibrations/<int:calibration_id>/", calibration_views.calibration_detail, name="calibration"),
    path("p/<slug:slug>/calibrations/<int:calibration_id>/disagreements/", calibration_views.calibration_disagreements, name="calibration-disagreements"),
    path("p/<slug:slug>/suites/", views.suite_list, name="suites"),
    path("p/<slug:slug>/suites/<str:suite_name>/v/<int:number>/", views.suite_version_detail, name="suite-version"),
]

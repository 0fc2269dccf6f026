from django.urls import path

from evals import api, calibration_api

urlpatterns = [
    path("projects/<slug:project_slug>/suites/", api.SuiteListApi.as_view(), name="api-suites"),
    path("projects/<slug:project_slug>/suites/<str:suite_name>/", api.SuiteDetailApi.as_view(), name="api-suite"),
    path("projects/<slug:project_slug>/suites/<str:suite_name>/versions/", api.SuiteVersionListApi.as_view(), name="api-suite-versions"),
    path("projects/<slug:project_slug>/suites/<str:suite_name>/versions/import/", api.SuiteVersionImportApi.as_view(), name="api-suite-import"),
    path("projects/<slug:project_slug>/suites/<str:suite_name>/versions/<int:number>/cases/", api.SuiteVersionCaseListApi.as_view(), name="api-suite-cases"),
    path("projects/<slug:project_slug>/suites/<str:suite_name>/versions/<int:number>/benign/", api.SuiteVersionBenignApi.as_view(), name="api-suite-version-benign"),
    path("projects/<slug:project_slug>/evaluations/", api.EvaluationListApi.as_view(), name="api-evaluations"),
    path("projects/<slug:project_slug>/evaluations/<int:evaluation_id>/", api.EvaluationDetailApi.as_view(), name="api-evaluation"),
    path("projects/<slug:project_slug>/evaluations/<int:evaluation_id>/results/", api.EvaluationCaseResultListApi.as_view(), name="api-evaluation-results"),
    path("projects/<slug:project_slug>/evaluations/<int:evaluation_id>/results/export/", api.EvaluationCaseResultExportApi.as_view(), name="api-evaluation-results-export"),
    path("projects/<slug:project_slug>/datasets/<str:name>/versions/import/", calibration_api.JudgementSetImportApi.as_view(), name="api-judgement-set-import"),
    path("projects/<slug:project_slug>/calibrations/", calibration_api.CalibrationListApi.as_view(), name="api-calibrations"),
    path("projects/<slug:project_slug>/calibrations/<int:calibration_id>/", calibration_api.CalibrationDetailApi.as_view(), name="api-calibration"),
    path(
        "projects/<slug:project_slug>/calibrations/<int:calibration_id>/disagreements/",
        calibration_api.CalibrationDisagreementListApi.as_view(),
        name="api-calibration-disagreements",
    ),
]

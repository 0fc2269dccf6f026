from django.urls import path

from evals import api, calibration_api

urlpatterns = [
    path("projects/<slug:project_slug>/suites/", api.SuiteListCreate.as_view(), name="api-suites"),
    path("projects/<slug:project_slug>/suites/<str:suite_name>/", api.SuiteDetail.as_view(), name="api-suite"),
    path("projects/<slug:project_slug>/suites/<str:suite_name>/versions/", api.SuiteVersionCreate.as_view(), name="api-suite-versions"),
    path("projects/<slug:project_slug>/suites/<str:suite_name>/versions/import/", api.SuiteVersionImport.as_view(), name="api-suite-import"),
    path("projects/<slug:project_slug>/suites/<str:suite_name>/versions/<int:number>/cases/", api.SuiteVersionCases.as_view(), name="api-suite-cases"),
    path("projects/<slug:project_slug>/suites/<str:suite_name>/versions/<int:number>/benign/", api.SuiteVersionBenign.as_view(),
         name="api-suite-version-benign"),
    path("projects/<slug:project_slug>/evaluations/", api.EvaluationListCreate.as_view(), name="api-evaluations"),
    path("projects/<slug:project_slug>/evaluations/<int:evaluation_id>/", api.EvaluationDetail.as_view(), name="api-evaluation"),
    path("projects/<slug:project_slug>/evaluations/<int:evaluation_id>/results/", api.EvaluationCaseResults.as_view(), name="api-evaluation-results"),
    path("projects/<slug:project_slug>/evaluations/<int:evaluation_id>/results/export/", api.EvaluationCaseResultsExport.as_view(),
         name="api-evaluation-results-export"),
    path("projects/<slug:project_slug>/datasets/<str:name>/versions/import/", calibration_api.JudgementSetImport.as_view(),
         name="api-judgement-set-import"),
    path("projects/<slug:project_slug>/calibrations/", calibration_api.CalibrationListCreate.as_view(), name="api-calibrations"),
    path("projects/<slug:project_slug>/calibrations/<int:calibration_id>/", calibration_api.CalibrationDetail.as_view(), name="api-calibration"),
    path("projects/<slug:project_slug>/calibrations/<int:calibration_id>/disagreements/", calibration_api.CalibrationDisagreements.as_view(),
         name="api-calibration-disagreements"),
]

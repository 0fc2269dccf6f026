from django.urls import path

from unlearning import api

urlpatterns = [
    path("projects/<slug:project_slug>/unlearning-runs/", api.UnlearningRunListApi.as_view(), name="unlearning-runs"),
    path("projects/<slug:project_slug>/unlearning-runs/<int:unlearning_run_id>/", api.UnlearningRunDetailApi.as_view(), name="unlearning-run"),
    path(
        "projects/<slug:project_slug>/unlearning-runs/<int:unlearning_run_id>/cancel/",
        api.UnlearningRunCancelApi.as_view(),
        name="unlearning-run-cancel",
    ),
    path(
        "projects/<slug:project_slug>/models/<str:name>/checkpoints/<int:number>/download-merged/",
        api.CheckpointMergedDownloadApi.as_view(),
        name="api-checkpoint-download-merged",
    ),
]

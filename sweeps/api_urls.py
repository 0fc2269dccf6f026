from django.urls import path

from sweeps import api

urlpatterns = [
    path("projects/<slug:project_slug>/sweeps/", api.SweepListApi.as_view(), name="sweeps"),
    path("projects/<slug:project_slug>/sweeps/<int:sweep_id>/", api.SweepDetailApi.as_view(), name="sweep"),
    path("projects/<slug:project_slug>/sweeps/<int:sweep_id>/cancel/", api.SweepCancelApi.as_view(), name="sweep-cancel"),
    path("projects/<slug:project_slug>/sweeps/<int:sweep_id>/resume/", api.SweepResumeApi.as_view(), name="sweep-resume"),
    path("projects/<slug:project_slug>/sweeps/<int:sweep_id>/seeds/", api.SweepSeedsAddApi.as_view(), name="sweep-seeds"),
]

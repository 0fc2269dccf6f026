from django.urls import path

from sweeps import api

urlpatterns = [
    path("projects/<slug:project_slug>/sweeps/", api.SweepListView.as_view(), name="sweeps"),
    path("projects/<slug:project_slug>/sweeps/<int:sweep_id>/", api.SweepDetailView.as_view(), name="sweep"),
    path("projects/<slug:project_slug>/sweeps/<int:sweep_id>/cancel/", api.SweepCancelView.as_view(), name="sweep-cancel"),
    path("projects/<slug:project_slug>/sweeps/<int:sweep_id>/resume/", api.SweepResumeView.as_view(), name="sweep-resume"),
    path("projects/<slug:project_slug>/sweeps/<int:sweep_id>/seeds/", api.SweepSeedsView.as_view(), name="sweep-seeds"),
]

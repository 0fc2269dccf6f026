from django.urls import path

from sweeps import api

urlpatterns = [
    path("projects/<slug:project_slug>/sweeps/", api.SweepListView.as_view(), name="sweeps"),
    path("projects/<slug:project_slug>/sweeps/<int:sweep_id>/", api.SweepDetailView.as_view(), name="sweep"),
]

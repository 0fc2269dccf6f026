from django.urls import path

from sweeps import api

urlpatterns = [
    path("projects/<slug:project_slug>/sweeps/", api.SweepListApi.as_view(), name="sweeps"),
    path("projects/<slug:project_slug>/sweeps/<int:sweep_id>/", api.SweepDetailApi.as_view(), name="sweep"),
]

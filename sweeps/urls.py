"""Sweep pages (the REST API is sweeps.api_urls)."""

from django.urls import path

from sweeps import views

app_name = "sweeps"

urlpatterns = [
    path("p/<slug:slug>/sweeps/", views.sweep_list, name="list"),
    path("p/<slug:slug>/sweeps/<int:sweep_id>/", views.sweep_detail, name="detail"),
    path("p/<slug:slug>/sweeps/<int:sweep_id>/cancel/", views.sweep_action, {"action": "cancel"}, name="cancel"),
    path("p/<slug:slug>/sweeps/<int:sweep_id>/resume/", views.sweep_action, {"action": "resume"}, name="resume"),
    path("p/<slug:slug>/sweeps/<int:sweep_id>/seeds/", views.sweep_action, {"action": "seeds"}, name="seeds"),
]

"""Sweep pages (the REST API is sweeps.api_urls)."""
from django.urls import path

from sweeps import views

app_name = "sweeps"

urlpatterns = [
    path("p/<slug:slug>/sweeps/", views.sweep_list, name="list"),
    path("p/<slug:slug>/sweeps/<int:sweep_id>/", views.sweep_detail, name="detail"),
]

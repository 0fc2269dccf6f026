"""Run pages (included at the root by config/urls.py, with the run page itself, ``jobs:detail``,
from pages.urls: it sends each run to the page of the app that made it)."""

from django.urls import path

from jobs import views

app_name = "jobs"

urlpatterns = [
    path("p/<slug:slug>/runs/", views.run_list_page, name="list"),
    path("p/<slug:slug>/runs/<int:run_id>/status.json", views.run_status, name="status"),
]

"""Run pages (include at the root: config/urls.py ``path("", include("jobs.urls"))``)."""
from django.urls import path

from jobs import views

app_name = "jobs"

urlpatterns = [
    path("p/<slug:slug>/runs/", views.run_list_page, name="list"),
    path("p/<slug:slug>/runs/<int:run_id>/", views.run_detail, name="detail"),
    path("p/<slug:slug>/runs/<int:run_id>/status.json", views.run_status, name="status"),
]

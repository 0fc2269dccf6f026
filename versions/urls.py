"""Pages of the registry (the REST API lives under /api/v1/, see versions.api.urls). The
dashboard, model, checkpoint and safety pages share this namespace but live in pages.urls."""

from django.contrib.auth import views as auth_views
from django.urls import path

from versions import views

app_name = "versions"

urlpatterns = [
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.project_list, name="project-list"),
    path("p/<slug:slug>/prompts/<str:prompt_name>/", views.prompt_history, name="prompt"),
    path("p/<slug:slug>/prompts/<str:prompt_name>/v/<int:number>/", views.prompt_version_detail, name="prompt-version"),
    path("p/<slug:slug>/prompts/<str:prompt_name>/diff/", views.prompt_diff, name="prompt-diff"),
    path("p/<slug:slug>/prompts/<str:owner_name>/labels/<str:label_name>/", views.label_detail, {"owner_kind": "prompt"}, name="prompt-label"),
    path("p/<slug:slug>/models/<str:owner_name>/labels/<str:label_name>/", views.label_detail, {"owner_kind": "model"}, name="model-label"),
    path("p/<slug:slug>/datasets/<str:dataset_name>/", views.dataset_detail, name="dataset"),
    path("p/<slug:slug>/datasets/<str:dataset_name>/v/<int:number>/", views.dataset_version_detail, name="dataset-version"),
]

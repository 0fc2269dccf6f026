from django.urls import path

from jobs import api

urlpatterns = [
    path("projects/<slug:project_slug>/runs/", api.RunListApi.as_view(), name="api-runs"),
    path("projects/<slug:project_slug>/runs/<int:run_id>/", api.RunDetailApi.as_view(), name="api-run"),
    path("projects/<slug:project_slug>/runs/<int:run_id>/cancel/", api.RunCancelApi.as_view(), name="api-run-cancel"),
    path("projects/<slug:project_slug>/runs/<int:run_id>/retry/", api.RunRetryApi.as_view(), name="api-run-retry"),
    path("projects/<slug:project_slug>/webhooks/", api.WebhookListApi.as_view(), name="api-webhooks"),
    path("projects/<slug:project_slug>/webhooks/<int:webhook_id>/", api.WebhookDetailApi.as_view(), name="api-webhook"),
    path(
        "projects/<slug:project_slug>/webhooks/<int:webhook_id>/deliveries/",
        api.WebhookDeliveryListApi.as_view(),
        name="api-webhook-deliveries",
    ),
]

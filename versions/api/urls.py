"""Routes of the registry API, included under /api/v1/ by config/urls.py. Versions and
checkpoints are immutable: there are no PUT, PATCH or DELETE routes for them."""

from django.urls import path

from versions.api import file_download, views

P = "projects/<slug:project_slug>"
PROMPT = f"{P}/prompts/<str:name>"
MODEL = f"{P}/models/<str:name>"
CHECKPOINT = f"{MODEL}/checkpoints/<int:number>"
DATASET = f"{P}/datasets/<str:name>"

urlpatterns = [
    path("tokens/", views.TokenListApi.as_view(), name="api-tokens"),
    path("tokens/<int:token_id>/", views.TokenDetailApi.as_view(), name="api-token"),
    path("projects/", views.ProjectListApi.as_view(), name="api-projects"),
    path(f"{P}/", views.ProjectDetailApi.as_view(), name="api-project"),
    path(f"{P}/members/", views.MemberListApi.as_view(), name="api-members"),
    path(f"{P}/members/<str:username>/", views.MemberDetailApi.as_view(), name="api-member"),
    path(f"{P}/audit-events/", views.AuditEventListApi.as_view(), name="api-audit-events"),
    path(f"{P}/resolve/", views.RefResolveApi.as_view(), name="api-resolve"),
    path(f"{P}/prompts/", views.PromptListApi.as_view(), name="api-prompts"),
    path(f"{PROMPT}/", views.PromptDetailApi.as_view(), name="api-prompt"),
    path(f"{PROMPT}/versions/", views.PromptVersionListApi.as_view(), name="api-prompt-versions"),
    path(f"{PROMPT}/versions/<int:number>/", views.PromptVersionDetailApi.as_view(), name="api-prompt-version"),
    path(f"{PROMPT}/versions/<int:number>/render/", views.PromptRenderApi.as_view(), name="api-prompt-version-render"),
    path(f"{PROMPT}/versions/<int:number>/tags/", views.PromptVersionTagListApi.as_view(), name="api-prompt-version-tags"),
    path(f"{PROMPT}/versions/<int:number>/tags/<str:tag>/", views.PromptVersionTagDetailApi.as_view(), name="api-prompt-version-tag"),
    path(f"{PROMPT}/diff/", views.PromptDiffApi.as_view(), name="api-prompt-diff"),
    path(f"{PROMPT}/labels/", views.LabelListApi.as_view(owner_kind="prompt"), name="api-prompt-labels"),
    path(f"{PROMPT}/labels/<str:label>/", views.LabelDetailApi.as_view(owner_kind="prompt"), name="api-prompt-label"),
    path(f"{PROMPT}/labels/<str:label>/history/", views.LabelHistoryApi.as_view(owner_kind="prompt"), name="api-prompt-label-history"),
    path(f"{PROMPT}/labels/<str:label>/preview/", views.LabelPreviewApi.as_view(owner_kind="prompt"), name="api-prompt-label-preview"),
    path(f"{P}/models/", views.ModelListApi.as_view(), name="api-models"),
    path(f"{MODEL}/", views.ModelDetailApi.as_view(), name="api-model"),
    path(f"{MODEL}/labels/", views.LabelListApi.as_view(owner_kind="model"), name="api-model-labels"),
    path(f"{MODEL}/labels/<str:label>/", views.LabelDetailApi.as_view(owner_kind="model"), name="api-model-label"),
    path(f"{MODEL}/labels/<str:label>/history/", views.LabelHistoryApi.as_view(owner_kind="model"), name="api-model-label-history"),
    path(f"{MODEL}/labels/<str:label>/preview/", views.LabelPreviewApi.as_view(owner_kind="model"), name="api-model-label-preview"),
    path(f"{MODEL}/checkpoints/", views.CheckpointListApi.as_view(), name="api-checkpoints"),
    path(f"{CHECKPOINT}/", views.CheckpointDetailApi.as_view(), name="api-checkpoint"),
    path(f"{CHECKPOINT}/files/", views.CheckpointFileListApi.as_view(), name="api-checkpoint-files"),
    path(f"{CHECKPOINT}/files/<path:path>", file_download.CheckpointFileDownloadApi.as_view(), name="api-checkpoint-file"),
    path(f"{CHECKPOINT}/download/", views.CheckpointDownloadApi.as_view(), name="api-checkpoint-download"),
    path(f"{CHECKPOINT}/lineage/", views.CheckpointLineageApi.as_view(), name="api-checkpoint-lineage"),
    path(f"{CHECKPOINT}/tags/", views.CheckpointTagListApi.as_view(), name="api-checkpoint-tags"),
    path(f"{CHECKPOINT}/tags/<str:tag>/", views.CheckpointTagDetailApi.as_view(), name="api-checkpoint-tag"),
    path(f"{P}/datasets/", views.DatasetListApi.as_view(), name="api-datasets"),
    path(f"{DATASET}/", views.DatasetDetailApi.as_view(), name="api-dataset"),
    path(f"{DATASET}/versions/", views.DatasetVersionListApi.as_view(), name="api-dataset-versions"),
    path(f"{DATASET}/versions/<int:number>/", views.DatasetVersionDetailApi.as_view(), name="api-dataset-version"),
    path(f"{DATASET}/versions/<int:number>/rows/", views.DatasetVersionRowListApi.as_view(), name="api-dataset-version-rows"),
]

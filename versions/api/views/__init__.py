"""Registry REST API. Views are thin: scope the project by role, validate the request's shape,
call a selector or a service, serialize. Domain errors raised by services become the one error
body in core.api.errors; versions and checkpoints have no DELETE route."""

from versions.api.views.tokens import TokenListApi, TokenDetailApi
from versions.api.views.projects import ProjectListApi, ProjectDetailApi, MemberListApi, MemberDetailApi, AuditEventListApi
from versions.api.views.prompts import (
    PromptListApi,
    PromptDetailApi,
    PromptVersionListApi,
    PromptVersionDetailApi,
    PromptDiffApi,
    PromptRenderApi,
    PromptVersionTagListApi,
    PromptVersionTagDetailApi,
)
from versions.api.views.labels import (
    LabelListApi,
    LabelDetailApi,
    LabelPreviewApi,
    LabelHistoryApi,
    RefResolveApi,
)
from versions.api.views.checkpoints import (
    ModelListApi,
    ModelDetailApi,
    CHECKPOINT_REGISTER_DESCRIPTION,
    CheckpointListApi,
    CheckpointDetailApi,
    CheckpointFileListApi,
    CheckpointDownloadApi,
    CheckpointLineageApi,
    CheckpointTagListApi,
    CheckpointTagDetailApi,
)
from versions.api.views.datasets import DatasetListApi, DatasetDetailApi, DatasetVersionListApi, DatasetVersionDetailApi, DatasetVersionRowListApi

__all__ = [
    "TokenListApi",
    "TokenDetailApi",
    "ProjectListApi",
    "ProjectDetailApi",
    "MemberListApi",
    "MemberDetailApi",
    "AuditEventListApi",
    "PromptListApi",
    "PromptDetailApi",
    "PromptVersionListApi",
    "PromptVersionDetailApi",
    "PromptDiffApi",
    "PromptRenderApi",
    "PromptVersionTagListApi",
    "PromptVersionTagDetailApi",
    "LabelListApi",
    "LabelDetailApi",
    "LabelPreviewApi",
    "LabelHistoryApi",
    "RefResolveApi",
    "ModelListApi",
    "ModelDetailApi",
    "CHECKPOINT_REGISTER_DESCRIPTION",
    "CheckpointListApi",
    "CheckpointDetailApi",
    "CheckpointFileListApi",
    "CheckpointDownloadApi",
    "CheckpointLineageApi",
    "CheckpointTagListApi",
    "CheckpointTagDetailApi",
    "DatasetListApi",
    "DatasetDetailApi",
    "DatasetVersionListApi",
    "DatasetVersionDetailApi",
    "DatasetVersionRowListApi",
]

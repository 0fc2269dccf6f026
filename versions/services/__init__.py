"""Writes to the registry. Every function here is keyword-only and transactional; views, commands
and runs call these and nothing else to change registry state."""

from versions.services.common import NAME_PATTERN
from versions.services.audit import audit_record, hazard_read_record
from versions.services.projects import (
    project_create,
    project_settings_update,
    JUDGE_CALIBRATION_SETTINGS,
    member_set,
    member_add,
    member_remove,
    user_create,
    user_password_set,
    token_create,
    token_revoke,
    project_delete,
)
from versions.services.prompts import VARIABLE_PATTERN, template_variables, prompt_render, prompt_create, prompt_content_sha256, prompt_version_commit
from versions.services.checkpoints import model_create, checkpoint_register, ENDPOINT_PARAMETERS, endpoint_spec_clean, checkpoint_register_directory, lineage_edge_add
from versions.services.labels import label_move, label_branch_advance
from versions.services.tags import tag_add, tag_remove
from versions.services.datasets import dataset_create, dataset_rows_validate, dataset_rows_of_kind_validate, dataset_version_create, DATASET_COLUMNS, dataset_version_import

__all__ = [
    "NAME_PATTERN",
    "audit_record",
    "hazard_read_record",
    "project_create",
    "project_settings_update",
    "JUDGE_CALIBRATION_SETTINGS",
    "member_set",
    "member_add",
    "member_remove",
    "user_create",
    "user_password_set",
    "token_create",
    "token_revoke",
    "project_delete",
    "VARIABLE_PATTERN",
    "template_variables",
    "prompt_render",
    "prompt_create",
    "prompt_content_sha256",
    "prompt_version_commit",
    "model_create",
    "checkpoint_register",
    "ENDPOINT_PARAMETERS",
    "endpoint_spec_clean",
    "checkpoint_register_directory",
    "lineage_edge_add",
    "label_move",
    "label_branch_advance",
    "tag_add",
    "tag_remove",
    "dataset_create",
    "dataset_rows_validate",
    "dataset_rows_of_kind_validate",
    "dataset_version_create",
    "DATASET_COLUMNS",
    "dataset_version_import",
]

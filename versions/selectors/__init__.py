"""Reads from the registry. Each selector issues a fixed number of queries whatever the number
of rows (lineage included: one recursive statement at any depth)."""

from versions.selectors.projects import projects_for_user, memberships_for_project, tokens_for_user, token_get, project_get, audit_events
from versions.selectors.prompts import prompts_for_project, prompt_get, prompt_versions, prompt_version_row_of, prompt_version_rows_complete, prompt_version_get, versions_diff
from versions.selectors.checkpoints import (
    models_for_project,
    model_get,
    checkpoints_for_model,
    checkpoint_row_of,
    checkpoint_rows_complete,
    checkpoint_files,
    checkpoint_get,
    checkpoint_get_by_name,
)
from versions.selectors.lineage import UNBOUNDED, checkpoint_ancestors, checkpoint_descendants, lineage_nodes, lineage_graph, checkpoint_adapter_chain
from versions.selectors.labels import labels_for_owner, label_get, label_events, label_history_for_model
from versions.selectors.label_moves import (
    NO_EVIDENCE,
    ACTION_WORDS,
    label_held_before,
    label_move_action,
    version_ref,
    label_move_impact,
    label_move_impact_lines,
    label_move_preview,
    label_move_choices,
)
from versions.selectors.references import label_resolve, checkpoint_resolve, prompt_version_resolve, dataset_version_resolve
from versions.selectors.datasets import dataset_version_rows, datasets_for_project, dataset_get, dataset_versions, dataset_version_get, dataset_versions_by_sha256
from versions.selectors.pages import label_events_for_project, labels_named, checkpoint_lineage_edges

__all__ = [
    "projects_for_user",
    "memberships_for_project",
    "tokens_for_user",
    "token_get",
    "project_get",
    "audit_events",
    "prompts_for_project",
    "prompt_get",
    "prompt_versions",
    "prompt_version_row_of",
    "prompt_version_rows_complete",
    "prompt_version_get",
    "versions_diff",
    "models_for_project",
    "model_get",
    "checkpoints_for_model",
    "checkpoint_row_of",
    "checkpoint_rows_complete",
    "checkpoint_files",
    "checkpoint_get",
    "checkpoint_get_by_name",
    "UNBOUNDED",
    "checkpoint_ancestors",
    "checkpoint_descendants",
    "lineage_nodes",
    "lineage_graph",
    "checkpoint_adapter_chain",
    "labels_for_owner",
    "label_get",
    "label_events",
    "label_history_for_model",
    "NO_EVIDENCE",
    "ACTION_WORDS",
    "label_held_before",
    "label_move_action",
    "version_ref",
    "label_move_impact",
    "label_move_impact_lines",
    "label_move_preview",
    "label_move_choices",
    "label_resolve",
    "checkpoint_resolve",
    "prompt_version_resolve",
    "dataset_version_resolve",
    "dataset_version_rows",
    "datasets_for_project",
    "dataset_get",
    "dataset_versions",
    "dataset_version_get",
    "dataset_versions_by_sha256",
    "label_events_for_project",
    "labels_named",
    "checkpoint_lineage_edges",
]

"""Prompts and their versions, as the API's rows, and the diff between two versions."""

import json

from django.db.models import F, OuterRef, Prefetch, Subquery

from versions import sql
from core.errors import NotFound
from versions.models import Label, Prompt, PromptVersion
from versions.selectors.projects import _named_in_project


def prompts_for_project(*, project):
    return (
        Prompt.objects.filter(project=project)
        .select_related("created_by")
        .prefetch_related(Prefetch("labels", queryset=Label.objects.select_related("prompt_version").order_by("name")))
        .order_by("name")
    )


def prompt_get(*, project, name):
    prompt = _named_in_project(Prompt, project=project, name=name)
    if prompt is None:
        raise NotFound(f"Prompt {name!r} not found in {project.slug}.")
    return prompt


# Columns the API returns as they are and first, then the rest prompt_version_rows_complete
# places in the API's order (sha256 after author and parent) or needs (id).
_PROMPT_VERSION_API_COLUMNS = ("number", "template", "variables", "model_params", "message")


_PROMPT_VERSION_ROW_FIELDS = ("id", *_PROMPT_VERSION_API_COLUMNS, "sha256", "created_at")


def prompt_versions(*, prompt, tag=None):
    """History of a prompt, newest first, as plain rows (as checkpoints_for_model: a page of 50
    built 50 instances, their authors and two prefetches). Cut a page, then give it to
    prompt_version_rows_complete; ``tag`` keeps the versions carrying that tag."""
    versions = PromptVersion.objects.filter(prompt=prompt)
    if tag:
        versions = versions.filter(tags__name=tag)  # a join: a tag name is unique per version
    # The parent's number as a per-row index lookup, not a join: PostgreSQL overestimates a
    # hot prompt's page (thousands of rows for 50) and then hash-joins every version of every
    # prompt to find the parents, which made deep pages grow with the whole table.
    parent_number = Subquery(PromptVersion.objects.filter(pk=OuterRef("parent_id")).values("number")[:1])
    return versions.order_by("-number").values(*_PROMPT_VERSION_ROW_FIELDS, author_name=F("author__username"), parent_number=parent_number)


def prompt_version_row_of(version):
    """``version`` in the API's shape, as prompt_version_rows_complete gives it, built from the
    instance: a version just committed is answered without reading it back (its author and
    parent are in hand)."""
    row = {
        **{field: getattr(version, field) for field in _PROMPT_VERSION_ROW_FIELDS},
        "author_name": version.author.username,
        "parent_number": version.parent.number if version.parent_id else None,
    }
    return prompt_version_rows_complete([row])[0]


def prompt_version_rows_complete(rows):
    """Rows of prompt_versions (a page of them) in the API's shape (PromptVersionSerializer):
    with ``labels`` and ``tags`` (names, by name), read in one statement."""
    complete = {}
    for row in rows:
        complete[row["id"]] = {
            **{column: row[column] for column in _PROMPT_VERSION_API_COLUMNS},
            "author": row["author_name"],
            "parent": row["parent_number"],
            "sha256": row["sha256"],
            "labels": [],
            "tags": [],
            "created_at": row["created_at"],
        }
    for version_id, what, name in sql.prompt_version_labels_and_tags(complete):
        complete[version_id][f"{what}s"].append(name)
    return list(complete.values())


def prompt_version_get(*, prompt, number):
    version = PromptVersion.objects.filter(prompt=prompt, number=number).select_related("author", "parent", "prompt__project").first()
    if version is None:
        raise NotFound(f"{prompt.name} has no version {number}.")
    return version


def versions_diff(*, old, new):
    """Unified diff and side-by-side rows between two prompt versions' templates and params."""
    from versions.diffing import side_by_side, unified

    # Each ends with a newline, as a file would: the diff then needs no "No newline" marker.
    old_params = json.dumps(old.model_params, indent=2, sort_keys=True) + "\n"
    new_params = json.dumps(new.model_params, indent=2, sort_keys=True) + "\n"
    return {
        "old": old.number,
        "new": new.number,
        "unified": unified(old.template, new.template, f"{old.prompt.name}@v{old.number}", f"{new.prompt.name}@v{new.number}"),
        "side_by_side": side_by_side(old.template, new.template),
        "model_params_unified": unified(old_params, new_params, "model_params(old)", "model_params(new)"),
        "identical": old.sha256 == new.sha256,
    }

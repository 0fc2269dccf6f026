"""Reads from the registry. Each selector issues a fixed number of queries whatever the number
of rows (lineage included: one recursive statement at any depth)."""

import json

from django.db.models import F, OuterRef, Prefetch, Subquery

from versions import sql
from core.errors import NotFound, ValidationFailed
from versions.models import (
    ApiToken,
    AuditEvent,
    Checkpoint,
    CheckpointFile,
    CheckpointKind,
    Dataset,
    DatasetVersion,
    Label,
    LabelAction,
    LabelEvent,
    LineageEdge,
    Membership,
    Model,
    Project,
    Prompt,
    PromptVersion,
)
from versions.promotion import label_events_with_evidence


def projects_for_user(*, user):
    """Projects the user can see, each annotated with ``my_role`` (None for a superuser who is
    not a member)."""
    qs = Project.objects.all()
    if not user.is_superuser:
        qs = qs.filter(memberships__user=user)
    my_role = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    return qs.annotate(my_role=Subquery(my_role)).order_by("slug")


def memberships_for_project(*, project):
    return Membership.objects.filter(project=project).select_related("user").order_by("user__username")


def tokens_for_user(*, user):
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


def token_get(*, user, token_id):
    token = ApiToken.objects.filter(user=user, pk=token_id).first()
    if token is None:
        raise NotFound(f"Token {token_id} not found.")
    return token


def prompts_for_project(*, project):
    return (
        Prompt.objects.filter(project=project)
        .select_related("created_by")
        .prefetch_related(Prefetch("labels", queryset=Label.objects.select_related("prompt_version").order_by("name")))
        .order_by("name")
    )


def models_for_project(*, project):
    return (
        Model.objects.filter(project=project)
        .select_related("created_by")
        .prefetch_related(Prefetch("labels", queryset=Label.objects.select_related("checkpoint").order_by("name")))
        .order_by("name")
    )


def project_get(*, slug, member=None):
    """The project named ``slug``; with ``member``, annotated with that user's ``member_role``
    (None for non-members) in the same statement (SQL: every project-scoped request starts here)."""
    project = sql.project_by_slug(slug=slug, member_id=None if member is None else member.pk)
    if project is None:
        raise NotFound(f"Project {slug!r} not found.")
    return project


def _named_in_project(model_class, *, project, name):
    """The project's prompt or model named ``name`` (None if there is none), its ``project`` the
    instance given. SQL for the reason project_get is: nearly every request names one."""
    found = sql.named_in_project(model_class, project_id=project.pk, name=name)
    if found is not None:
        found.project = project
    return found


def prompt_get(*, project, name):
    prompt = _named_in_project(Prompt, project=project, name=name)
    if prompt is None:
        raise NotFound(f"Prompt {name!r} not found in {project.slug}.")
    return prompt


def model_get(*, project, name):
    model = _named_in_project(Model, project=project, name=name)
    if model is None:
        raise NotFound(f"Model {name!r} not found in {project.slug}.")
    return model


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


# Columns the API returns as they are, then those checkpoint_rows_complete renames or needs.
_CHECKPOINT_API_COLUMNS = (
    "number",
    "kind",
    "external_ref",
    "external_revision",
    "endpoint",
    "architecture",
    "message",
    "metadata",
    "weight_change",
    "sha256",
    "total_size",
    "generation",
)
_CHECKPOINT_ROW_FIELDS = ("id", *_CHECKPOINT_API_COLUMNS, "created_by_run_id", "created_at")


def checkpoints_for_model(*, model, tag=None):
    """A model's checkpoints, newest first, as plain rows rather than model instances (a page of
    100 built 200 instances and three prefetches, 6x the cost of the rows). Cut a page, then give
    it to checkpoint_rows_complete; ``tag`` keeps those carrying that tag."""
    checkpoints = Checkpoint.objects.filter(model=model)
    if tag:
        # A join (a tag name is unique per checkpoint): walking the (model, number) index newest
        # first and probing each checkpoint's tags stops at the page, where the former IN
        # (subquery) hashed every checkpoint of the model.
        checkpoints = checkpoints.filter(tags__name=tag)
    return checkpoints.order_by("-number").values(*_CHECKPOINT_ROW_FIELDS, creator=F("created_by__username"))


def checkpoint_row_of(checkpoint):
    """``checkpoint`` in the API's shape, as checkpoint_rows_complete gives it, built from the
    instance: a checkpoint just registered is answered without reading it back (building the
    values query took most of the 1.8 ms that cost)."""
    row = {**{field: getattr(checkpoint, field) for field in _CHECKPOINT_ROW_FIELDS}, "creator": checkpoint.created_by.username}
    return checkpoint_rows_complete([row])[0]


def checkpoint_rows_complete(rows):
    """Rows of checkpoints_for_model (a page of them) in the API's shape (CheckpointSerializer):
    with ``labels`` and ``tags`` (names, by name) and ``parents`` ({model, number, relation,
    method}, as added), read in one statement."""
    complete = {}
    for row in rows:
        complete[row["id"]] = {
            **{column: row[column] for column in _CHECKPOINT_API_COLUMNS},
            "parents": [],
            "labels": [],
            "tags": [],
            "created_by": row["creator"],
            "created_by_run": row["created_by_run_id"],
            "created_at": row["created_at"],
        }
    for checkpoint_id, what, name, number, relation, method, _ in sql.checkpoint_labels_tags_parents(complete):
        if what == "parent":
            complete[checkpoint_id]["parents"].append({"model": name, "number": number, "relation": relation, "method": method})
        else:
            complete[checkpoint_id][f"{what}s"].append(name)
    return list(complete.values())


def checkpoint_files(*, checkpoint):
    return CheckpointFile.objects.filter(checkpoint=checkpoint).select_related("blob").order_by("path")


def checkpoint_get(*, model, number):
    checkpoint = Checkpoint.objects.filter(model=model, number=number).select_related("model__project", "created_by").first()
    if checkpoint is None:
        raise NotFound(f"{model.name} has no checkpoint {number}.")
    return checkpoint


def checkpoint_get_by_name(*, project, model_name, number):
    """Checkpoint ``number`` of the project's model named ``model_name``, with its model, in one
    statement (every checkpoint URL names both); when it is missing, the error says whether the
    model or the checkpoint is."""
    checkpoint = Checkpoint.objects.filter(model__project=project, model__name=model_name, number=number).select_related("model", "created_by").first()
    if checkpoint is None:  # raises, naming what is missing (or finds one registered meanwhile)
        return checkpoint_get(model=model_get(project=project, name=model_name), number=number)
    checkpoint.model.project = project  # the caller's, not joined again
    return checkpoint


# ---------------------------------------------------------------- lineage

# The deepest generation a walk goes to when nothing cuts it.
UNBOUNDED = 2**31 - 1


def checkpoint_ancestors(*, checkpoint):
    """[(checkpoint, depth)] of every ancestor, nearest first, in one recursive statement."""
    return [(row, row.depth) for row in sql.ancestors_with_depth(checkpoint_id=checkpoint.pk, bound=UNBOUNDED)]


def checkpoint_descendants(*, checkpoint, method=None, dataset_sha256=None):
    """[(checkpoint, depth)] of every descendant, optionally only those produced by an edge with
    the given unlearning method or forget/retain dataset hash."""
    rows = sql.descendants_with_depth(checkpoint_id=checkpoint.pk, bound=UNBOUNDED, method=method or "", dataset_sha256=dataset_sha256 or "")
    return [(row, row.depth) for row in rows]


def lineage_nodes(*, checkpoint, depth, method=None, dataset_sha256=None):
    """(ancestors, descendants, ancestors_truncated, descendants_truncated) of a checkpoint:
    plain rows {model, number, kind, sha256, depth}, nearest first, from the same two recursive
    statements as checkpoint_ancestors and checkpoint_descendants, without a model instance per
    node. ``depth`` keeps the nearest generations: each walk stops one generation further, and
    *_truncated says whether that generation exists, so a page costs what its answer holds
    however deep the lineage goes."""
    columns = ("model", "number", "kind", "sha256", "depth")
    ancestor_rows, descendant_rows = sql.lineage_node_rows(checkpoint_id=checkpoint.pk, bound=depth + 1, method=method or "", dataset_sha256=dataset_sha256 or "")
    ancestors = [dict(zip(columns, row, strict=True)) for row in ancestor_rows]
    descendants = [dict(zip(columns, row, strict=True)) for row in descendant_rows]
    kept_ancestors = [node for node in ancestors if node["depth"] <= depth]
    kept_descendants = [node for node in descendants if node["depth"] <= depth]
    return kept_ancestors, kept_descendants, len(kept_ancestors) < len(ancestors), len(kept_descendants) < len(descendants)


def lineage_graph(*, model):
    """Nodes and edges of a model's lineage (edges may cross into other models of the project)."""
    checkpoints = list(Checkpoint.objects.filter(model=model).order_by("number"))
    ids = [c.pk for c in checkpoints]
    edges = list(LineageEdge.objects.filter(child_id__in=ids).select_related("parent__model").order_by("id"))
    return checkpoints, edges


def checkpoint_adapter_chain(*, checkpoint):
    """The chain an adapter checkpoint needs, root (full or reference) first.

    Follows each adapter's first parent edge; one recursive statement."""
    if checkpoint.kind != CheckpointKind.ADAPTER:
        return [checkpoint]
    chain = [checkpoint]
    ancestors = {c.pk: c for c, _ in checkpoint_ancestors(checkpoint=checkpoint)}
    edges = {}
    for edge in LineageEdge.objects.filter(child_id__in=[checkpoint.pk, *ancestors]).order_by("id"):
        edges.setdefault(edge.child_id, edge.parent_id)
    current = checkpoint
    while current.kind == CheckpointKind.ADAPTER:
        parent_id = edges.get(current.pk)
        if parent_id is None:
            raise ValidationFailed(f"Adapter checkpoint {current} has no parent to apply to.")
        current = ancestors[parent_id]
        chain.append(current)
    return list(reversed(chain))


# ---------------------------------------------------------------- labels


def labels_for_owner(*, prompt=None, model=None):
    qs = Label.objects.filter(prompt=prompt) if prompt is not None else Label.objects.filter(model=model)
    return qs.select_related("prompt", "prompt_version", "model", "checkpoint").order_by("name")


def label_get(*, project, owner_kind, owner_name, name):
    filters = {"prompt__name": owner_name} if owner_kind == "prompt" else {"model__name": owner_name}
    label = Label.objects.filter(project=project, name=name, **filters).select_related("prompt", "prompt_version", "model", "checkpoint").first()
    if label is None:
        raise NotFound(f"No label {name!r} on {owner_kind} {owner_name!r}.")
    return label


def label_events(*, label):
    return label_events_with_evidence(
        LabelEvent.objects.filter(label=label).select_related("actor", "from_prompt_version", "to_prompt_version", "from_checkpoint", "to_checkpoint").order_by("-id")
    )


# ---------------------------------------------------------------- label moves: what a move would do


# What a move shows when no evaluation app installed its evidence (versions.promotion).
NO_EVIDENCE = {"evaluation": None, "less_safe": False, "warning": "", "gate": None}
# LabelAction as the preview's summary words it.
ACTION_WORDS = {LabelAction.CREATE: "creation", LabelAction.PROMOTE: "promotion", LabelAction.ROLLBACK: "rollback", LabelAction.ADVANCE: "branch advance"}


def label_held_before(*, label, target) -> bool:
    """Whether ``target`` held ``label`` before, by the label's own history: a move back to it is a
    rollback, any other move a promotion (numbers say nothing about that)."""
    field = "to_checkpoint" if hasattr(target, "model_id") else "to_prompt_version"
    return LabelEvent.objects.filter(label=label, **{field: target}).exists()


def label_move_action(*, label, target, branch=False) -> str:
    """The LabelAction moving ``label`` (None: not set yet) to ``target`` is."""
    if label is None:
        return LabelAction.CREATE
    if branch:
        return LabelAction.ADVANCE
    return LabelAction.ROLLBACK if label_held_before(label=label, target=target) else LabelAction.PROMOTE


def version_ref(version) -> str:
    """A checkpoint as #n, a prompt version as vn: how the label page names them."""
    if version is None:
        return "(unset)"
    return f"#{version.number}" if hasattr(version, "model_id") else f"v{version.number}"


def label_move_impact(*, project, label_name, current, target, action, evaluation=None) -> dict:
    """What moving ``label_name`` from ``current`` (None: its creation) to ``target`` would do, as
    the label page, the API (``impact``) and ``move_label`` show it: the summary line
    ("production: #2 -> #1 (rollback)"), the latest finished evaluation between the two with each
    side's attack success and failure to help, whether it measured the target less safe (then a
    move needs an explicit acknowledgement), and the promotion gate's answer for ``evaluation``
    (else that latest one, when it is oriented as the gate wants). ``action`` comes from label_move_action, which label_move also uses."""
    from versions.promotion import move_evidence

    owner = target.model if hasattr(target, "model_id") else target.prompt
    impact = {
        "label": label_name,
        "owner_kind": "model" if hasattr(target, "model_id") else "prompt",
        "owner": owner.name,
        "from_number": current.number if current is not None else None,
        "to_number": target.number,
        "action": str(action),
        "summary": f"{label_name}: {version_ref(current)} -> {version_ref(target)} ({ACTION_WORDS[action]})",
        **NO_EVIDENCE,
    }
    evidence, _ = move_evidence()
    if evidence is None or current is None or current.pk == target.pk:
        return impact
    gate_required = action == LabelAction.PROMOTE and project.require_evaluation_for_promotion and project.label_is_protected(label_name)
    impact.update(evidence(project=project, label_name=label_name, current=current, target=target, evaluation=evaluation, gate_required=gate_required))
    return impact


def _rate_text(rate):
    if rate["value"] is None:
        return "n/a"
    return f"{100 * rate['value']:.1f}% ({rate['successes']}/{rate['trials']})"


def label_move_impact_lines(impact) -> list[str]:
    """label_move_impact as plain lines, as ``move_label`` prints it."""
    lines = [impact["summary"]]
    measured = impact["evaluation"]
    current_ref = f"{'#' if impact['owner_kind'] == 'model' else 'v'}{impact['from_number']}"
    target_ref = f"{'#' if impact['owner_kind'] == 'model' else 'v'}{impact['to_number']}"
    if measured is not None:
        sides = [
            f"{ref} (arm {side['arm']}) attack success {_rate_text(side['attack_success'])}, failure to help {_rate_text(side['failure_to_help'])}"
            for ref, side in ((current_ref, measured["current"]), (target_ref, measured["target"]))
        ]
        lines.append(f"evaluation {measured['id']} ({measured['suite']}): {'; '.join(sides)}; verdict for {target_ref}: {measured['target_verdict'] or 'none'}")
    elif impact["from_number"] is not None:
        lines.append(f"no finished evaluation between {current_ref} and {target_ref}")
    gate = impact["gate"]
    if gate is not None and (gate["required"] or gate["evaluation"] is not None):
        required = "required" if gate["required"] else "not required for this move"
        if gate["evaluation"] is None:
            lines.append(f"promotion gate ({required}): no evaluation to judge")
        elif gate["passes"]:
            lines.append(f"promotion gate ({required}): evaluation {gate['evaluation']} passes")
        else:
            lines.append(f"promotion gate ({required}): evaluation {gate['evaluation']} fails: {'; '.join(gate['failures'])}")
    if impact["less_safe"]:
        lines.append(f"WARNING: {impact['warning']}")
    return lines


def label_move_preview(*, project, owner_kind, owner, label_name, number, evaluation=None) -> dict:
    """label_move_impact for moving ``label_name`` on ``owner`` (a prompt or a model) to its version
    ``number``, from the label as it is now: the one read the page, the API and the CLI preview with."""
    if owner_kind == "prompt":
        target = prompt_version_get(prompt=owner, number=number)
    else:
        target = checkpoint_get(model=owner, number=number)
    label = Label.objects.filter(project=project, name=label_name, **{owner_kind: owner}).select_related("prompt_version", "checkpoint").first()
    current = None if label is None else (label.prompt_version if owner_kind == "prompt" else label.checkpoint)
    action = label_move_action(label=label, target=target)
    return label_move_impact(project=project, label_name=label_name, current=current, target=target, action=action, evaluation=evaluation)


def label_move_choices(*, owner_kind, owner, limit=50) -> list[dict]:
    """The newest ``limit`` versions of ``owner`` for the label page's picker, each with its
    labels (names) and its latest finished evaluation seen from its side ({"evaluation", "other",
    "verdict", "attack_success"} or None): three statements whatever the count."""
    from versions.promotion import move_evidence

    if owner_kind == "prompt":
        versions = PromptVersion.objects.filter(prompt=owner)
    else:
        versions = Checkpoint.objects.filter(model=owner)
    versions = list(versions.order_by("-number").only("id", "number", "message", owner_kind).prefetch_related(Prefetch("labels", queryset=Label.objects.order_by("name")))[:limit])
    _, verdicts = move_evidence()
    latest = verdicts(versions=versions) if verdicts is not None else {}
    return [
        {
            "number": version.number,
            "ref": version_ref(version),
            "message": version.message,
            "labels": [label.name for label in version.labels.all()],
            "latest": latest.get(version.pk),
        }
        for version in versions
    ]


def label_history_for_model(*, model, limit):
    """The newest ``limit`` moves of the model's labels, oldest first, as (label name, time,
    action, to checkpoint number or None for a deletion) tuples: one query, for the label lanes
    of the safety charts."""
    rows = list(LabelEvent.objects.filter(label__model=model).order_by("-id").values_list("label__name", "created_at", "action", "to_checkpoint__number")[:limit])
    return rows[::-1]


def _label_target(*, project, owner_name, label_name, kind):
    """The version a label points at, or None. Its owner (prompt or model) comes with the id,
    project and name; other owner fields load on first access."""
    target = sql.label_target(kind=kind, project_id=project.pk, owner_name=owner_name, label_name=label_name)
    if target is None:
        return None
    owner_field = type(target)._meta.get_field("model" if kind == "model" else "prompt")
    owner = owner_field.related_model.from_db(target._state.db, ["id", "project_id", "name"], [getattr(target, owner_field.attname), project.pk, target.owner_name])
    owner.project = project
    setattr(target, owner_field.name, owner)
    return target


def label_resolve(*, project, ref, kind=None):
    """Resolve ``name@label`` or ``name@<number>`` to a PromptVersion or Checkpoint.

    ``kind`` ("prompt" or "model") settles a name used by both; otherwise that is an error."""
    if not isinstance(ref, str) or ref.count("@") != 1:
        raise ValidationFailed(f"Malformed reference {ref!r}: expected name@label or name@number.")
    name, selector = ref.split("@")
    if kind in ("prompt", "model") and not selector.isdigit():
        # The hot path (serving reads name@production): the label's target in one statement.
        # Misses fall through to the lookups below, which say what is missing.
        found = _label_target(project=project, owner_name=name, label_name=selector, kind=kind)
        if found is not None:
            return found
    prompt = Prompt.objects.filter(project=project, name=name).first() if kind in (None, "prompt") else None
    model = Model.objects.filter(project=project, name=name).first() if kind in (None, "model") else None
    if prompt and model:
        raise ValidationFailed(f"{name!r} is both a prompt and a model; say which (kind=prompt or kind=model).")
    owner = prompt or model
    if owner is None:
        raise NotFound(f"No prompt or model named {name!r} in {project.slug}.")
    if selector.isdigit():
        if prompt:
            return prompt_version_get(prompt=prompt, number=int(selector))
        return checkpoint_get(model=model, number=int(selector))
    if prompt:
        label = Label.objects.filter(prompt=prompt, name=selector).select_related("prompt_version__prompt").first()
        if label is None:
            raise NotFound(f"Prompt {name!r} has no label {selector!r}.")
        return label.prompt_version
    label = Label.objects.filter(model=model, name=selector).select_related("checkpoint__model").first()
    if label is None:
        raise NotFound(f"Model {name!r} has no label {selector!r}.")
    return label.checkpoint


def _is_id(ref):
    return (isinstance(ref, int) and not isinstance(ref, bool)) or (isinstance(ref, str) and ref.isdigit())


def checkpoint_resolve(*, project, ref):
    """A checkpoint of ``project`` named the way the API shows it, ``model@number`` or
    ``model@label``, or by its id (an int or its digits). Every write that takes a checkpoint
    resolves it here."""
    if _is_id(ref):
        checkpoint = Checkpoint.objects.filter(pk=int(ref), model__project=project).select_related("model").first()
        if checkpoint is None:
            raise NotFound(f"No checkpoint {ref} in {project.slug}.")
        return checkpoint
    return label_resolve(project=project, ref=ref, kind="model")


def prompt_version_resolve(*, project, ref):
    """A prompt version of ``project``: ``prompt@number``, ``prompt@label`` or its id; None or
    "" stays None."""
    if ref in (None, ""):
        return None
    if _is_id(ref):
        version = PromptVersion.objects.filter(pk=int(ref), prompt__project=project).select_related("prompt").first()
        if version is None:
            raise NotFound(f"No prompt version {ref} in {project.slug}.")
        return version
    return label_resolve(project=project, ref=ref, kind="prompt")


def dataset_version_resolve(*, project, ref, kind=None, allow_empty=False):
    """A dataset version of ``project`` (with its dataset) from what the API shows:
    ``dataset@number``, ``dataset@latest`` or a bare ``dataset`` (its newest version), or the
    version's id; None or "" stays None. ``kind`` requires that dataset kind. With
    ``allow_empty``, the newest version of a dataset that has none yet is None, not an error."""
    if ref in (None, ""):
        return None
    if _is_id(ref):
        version = DatasetVersion.objects.filter(pk=int(ref), dataset__project=project).select_related("dataset").first()
        if version is None:
            raise NotFound(f"No dataset version {ref} in {project.slug}.")
        dataset = version.dataset
    else:
        if not isinstance(ref, str) or ref.count("@") > 1 or not ref.strip("@"):
            raise ValidationFailed(f"Malformed dataset version reference {ref!r}: expected dataset@number, dataset@latest (or an id).")
        name, _, selector = ref.partition("@")
        if selector not in ("", "latest") and not selector.isdigit():
            raise ValidationFailed(f"Malformed dataset version reference {ref!r}: the version is a number or 'latest'.")
        dataset = dataset_get(project=project, name=name)
        _dataset_kind_check(dataset, kind)
        if selector in ("", "latest"):
            version = dataset_versions(dataset=dataset).select_related("blob").first()
            if version is None and not allow_empty:
                raise NotFound(f"Dataset {name!r} has no versions yet.")
        else:
            version = dataset_version_get(dataset=dataset, number=int(selector))
    _dataset_kind_check(dataset, kind)
    if version is not None:
        version.dataset = dataset
    return version


def _dataset_kind_check(dataset, kind):
    if kind is not None and dataset.kind != kind:
        raise ValidationFailed(f"Dataset {dataset.name!r} is a {dataset.kind} dataset; a {kind} dataset is needed here.")


# ---------------------------------------------------------------- datasets and audit


def dataset_version_rows(*, dataset_version):
    from versions.blob_store import blob_read_bytes

    content = blob_read_bytes(dataset_version.blob).decode("utf-8")
    return [json.loads(line) for line in content.splitlines() if line]


def datasets_for_project(*, project):
    return Dataset.objects.filter(project=project).select_related("created_by").order_by("name")


def dataset_get(*, project, name):
    dataset = Dataset.objects.filter(project=project, name=name).select_related("project", "created_by").first()
    if dataset is None:
        raise NotFound(f"Dataset {name!r} not found in {project.slug}.")
    return dataset


def dataset_versions(*, dataset):
    return DatasetVersion.objects.filter(dataset=dataset).select_related("created_by").order_by("-number")


def dataset_version_get(*, dataset, number):
    version = DatasetVersion.objects.filter(dataset=dataset, number=number).select_related("created_by", "blob").first()
    if version is None:
        raise NotFound(f"Dataset {dataset.name} has no version {number}.")
    return version


def dataset_versions_by_sha256(*, project, sha256s):
    """{sha256: [dataset versions of the project with that content, by dataset name and number]}
    in one query: lineage edges record what a checkpoint forgot by content hash."""
    found = {}
    wanted = {sha for sha in sha256s if sha}
    if not wanted:
        return found
    versions = DatasetVersion.objects.filter(dataset__project=project, sha256__in=wanted).select_related("dataset").order_by("dataset__name", "number")
    for version in versions:
        found.setdefault(version.sha256, []).append(version)
    return found


def audit_events(*, project):
    return AuditEvent.objects.filter(project=project).select_related("actor").order_by("-id")


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


# ---------------------------------------------------------------- web pages (fixed query counts)


def label_events_for_project(*, project):
    """Label moves of every prompt and model of the project, newest first."""
    return label_events_with_evidence(
        LabelEvent.objects.filter(label__project=project)
        .select_related("label__prompt", "label__model", "actor", "from_prompt_version", "to_prompt_version", "from_checkpoint", "to_checkpoint")
        .order_by("-id")
    )


def labels_named(*, project, name):
    """Every label called ``name`` in the project (e.g. all the `production` pointers)."""
    return Label.objects.filter(project=project, name=name).select_related("prompt", "prompt_version", "model", "checkpoint").order_by("prompt__name", "model__name")


def checkpoint_lineage_edges(*, checkpoint):
    """(parent edges, child edges) of one checkpoint, with the checkpoints at their other end."""
    parents = list(LineageEdge.objects.filter(child=checkpoint).select_related("parent__model").order_by("id"))
    children = list(LineageEdge.objects.filter(parent=checkpoint).select_related("child__model").order_by("id"))
    return parents, children

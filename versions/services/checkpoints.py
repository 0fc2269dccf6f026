"""Models and checkpoints: registration (files stored by hash, endpoint specs) and lineage edges."""

from django.db import IntegrityError, transaction

from versions import blob_store, checkpoint_files
from core.errors import Conflict, ValidationFailed
from versions.hashing import canonical_json, sha256_text
from versions.models import Checkpoint, CheckpointFile, CheckpointKind, LineageEdge, Model, Relation, Role
from versions.permissions import role_require
from versions.sql import counter_next
from versions.services.common import _check_name, _emit
from versions.services.tags import _tag_names_valid, _tags_create


@transaction.atomic
def model_create(*, project, name, actor, base_ref="", base_revision="", description=""):
    role_require(project=project, user=actor, role=Role.EDITOR)
    _check_name("model", name)
    try:
        with transaction.atomic():
            return Model.objects.create(project=project, name=name, base_ref=base_ref, base_revision=base_revision, description=description, created_by=actor)
    except IntegrityError:
        raise Conflict(f"Model {name!r} already exists in {project.slug}.", fields={"name": ["Already exists."]}) from None


def _manifest_sha256(entries):
    return sha256_text(canonical_json(sorted(entries)))


def checkpoint_register(
    *,
    model,
    kind,
    actor,
    files=None,
    external_ref="",
    external_revision="",
    architecture="causal-lm",
    metadata=None,
    weight_change=None,
    message="",
    parents=(),
    lineage_method="",
    forget_dataset_sha256="",
    retain_dataset_sha256="",
    tags=(),
    endpoint=None,
):
    """Register a checkpoint: validate the files, store each once by hash, then write the rows
    (the checkpoint, its files, lineage edges and ``tags``) in one transaction.

    Validation happens before anything is stored; a refused checkpoint stores nothing."""
    role_require(project=model.project, user=actor, role=Role.EDITOR)
    if kind not in CheckpointKind.values:
        raise ValidationFailed(f"Unknown checkpoint kind {kind!r}; expected one of {', '.join(CheckpointKind.values)}.")
    if architecture not in ("causal-lm", "vision-language"):
        raise ValidationFailed(f"Unknown architecture {architecture!r}; expected causal-lm or vision-language.")
    for parent, relation in parents:
        if relation not in Relation.values:
            raise ValidationFailed(f"Unknown lineage relation {relation!r}; expected one of {', '.join(Relation.values)}.")
        if parent.model.project_id != model.project_id:
            raise ValidationFailed("A lineage parent must belong to the same project.")
    tags = _tag_names_valid(tags)
    if endpoint and kind != CheckpointKind.ENDPOINT:
        raise ValidationFailed("Only an endpoint checkpoint takes an endpoint.", fields={"endpoint": ["Only with kind 'endpoint'."]})
    if kind == CheckpointKind.ENDPOINT:
        if files or external_ref or external_revision:
            raise ValidationFailed("An endpoint checkpoint names a served model behind an endpoint profile; it takes no files or external_ref.")
        endpoint = endpoint_spec_clean(endpoint)
        cleaned = {}
        digest = sha256_text(canonical_json({"endpoint": endpoint}))
    elif kind == CheckpointKind.REFERENCE:
        if files:
            raise ValidationFailed("A reference checkpoint points at external weights and takes no files.")
        if not external_ref:
            raise ValidationFailed("A reference checkpoint needs external_ref (a hub id or a local path).", fields={"external_ref": ["Required."]})
        cleaned = {}
        digest = sha256_text(canonical_json({"ref": external_ref, "revision": external_revision}))
    else:
        cleaned = checkpoint_files.checkpoint_files_validate(kind=kind, files=files or {})
        if kind == CheckpointKind.ADAPTER and not parents:
            raise ValidationFailed("An adapter checkpoint needs a parent checkpoint to apply to (its base).", fields={"parents": ["Required for adapters."]})
        digest = None
    stored = {name: blob_store.blob_put_path(path) for name, path in cleaned.items()}
    if digest is None:
        digest = _manifest_sha256([(name, blob.sha256) for name, blob in stored.items()])
    with transaction.atomic():
        number = counter_next(owner=model, counter="checkpoint_count")
        checkpoint = Checkpoint.objects.create(
            model=model,
            number=number,
            kind=kind,
            external_ref=external_ref,
            external_revision=external_revision,
            architecture=architecture,
            message=message,
            metadata=metadata or {},
            weight_change=weight_change or {},
            sha256=digest,
            endpoint=endpoint or {},
            total_size=sum(blob.size for blob in stored.values()),
            generation=1 + max((parent.generation for parent, _ in parents), default=-1),
            created_by=actor,
        )
        CheckpointFile.objects.bulk_create([CheckpointFile(checkpoint=checkpoint, path=name, blob=blob, size=blob.size) for name, blob in sorted(stored.items())])
        LineageEdge.objects.bulk_create(
            [
                LineageEdge(
                    child=checkpoint,
                    parent=parent,
                    relation=relation,
                    method=lineage_method,
                    forget_dataset_sha256=forget_dataset_sha256,
                    retain_dataset_sha256=retain_dataset_sha256,
                )
                for parent, relation in parents
            ]
        )
        _tags_create(names=tags, actor=actor, checkpoint=checkpoint)
        _emit(project=model.project, event="checkpoint.registered", payload={"model": model.name, "checkpoint": number, "id": checkpoint.pk, "kind": kind})
    model.checkpoint_count = number
    return checkpoint


# Generation settings an endpoint checkpoint may fix (sent with every request to it): the
# OpenAI chat-completions names. An evaluation's own generation config comes on top for what it
# sets (max_new_tokens -> max_tokens; temperature and top_p when it samples).
ENDPOINT_PARAMETERS = {"temperature": float, "top_p": float, "max_tokens": int, "seed": int, "frequency_penalty": float, "presence_penalty": float, "stop": list}


def endpoint_spec_clean(endpoint) -> dict:
    """{"profile", "model", "parameters", "adapter"} checked: the profile is one the operator
    defines (versions.endpoints), never a URL; the model is the name the server serves it under;
    the optional adapter is the name of a LoRA module served next to that base (vLLM's
    ``--lora-modules NAME=path``), which requests then name as their model. Without an adapter the
    spec (and so the checkpoint's hash) is as it always was."""
    from versions.endpoints import EndpointConfigError, endpoint_profile

    if not isinstance(endpoint, dict):
        raise ValidationFailed("An endpoint checkpoint needs endpoint {profile, model, parameters}.", fields={"endpoint": ["Required."]})
    unknown = sorted(set(endpoint) - {"profile", "model", "parameters", "adapter"})
    if unknown:
        raise ValidationFailed(f"Unknown endpoint keys {unknown}; expected profile, model, parameters, adapter.", fields={"endpoint": ["Unknown keys."]})
    adapter = endpoint.get("adapter") or ""
    if not isinstance(adapter, str) or len(adapter) > 200:
        raise ValidationFailed("endpoint.adapter is the served LoRA adapter's name (at most 200 characters).", fields={"endpoint": ["Invalid adapter."]})
    profile, served = endpoint.get("profile"), endpoint.get("model")
    if not isinstance(profile, str) or not profile:
        raise ValidationFailed("endpoint.profile names an endpoint profile from LETHE_ENDPOINTS.", fields={"endpoint": ["profile is required."]})
    try:
        endpoint_profile(profile)
    except EndpointConfigError as exc:
        raise ValidationFailed(str(exc), fields={"endpoint": ["Unknown profile."]}) from None
    if not isinstance(served, str) or not served.strip() or len(served) > 500:
        raise ValidationFailed("endpoint.model is the served model name (at most 500 characters).", fields={"endpoint": ["model is required."]})
    parameters = endpoint.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ValidationFailed("endpoint.parameters must be an object.", fields={"endpoint": ["parameters must be an object."]})
    for key, value in parameters.items():
        kind = ENDPOINT_PARAMETERS.get(key)
        if kind is None:
            raise ValidationFailed(f"Unknown endpoint parameter {key!r}; expected some of {', '.join(ENDPOINT_PARAMETERS)}.", fields={"endpoint": [f"Unknown parameter {key}."]})
        valid = (
            (isinstance(value, list) and all(isinstance(item, str) for item in value))
            if kind is list
            else (not isinstance(value, bool) and isinstance(value, (int, float) if kind is float else int))
        )
        if not valid:
            raise ValidationFailed(
                f"Endpoint parameter {key} must be {'a list of strings' if kind is list else kind.__name__}, got {value!r}.", fields={"endpoint": [f"Invalid {key}."]}
            )
    cleaned = {"profile": profile, "model": served.strip(), "parameters": dict(sorted(parameters.items()))}
    if adapter.strip():
        cleaned["adapter"] = adapter.strip()
    return cleaned


def checkpoint_register_directory(*, model, directory, actor, kind=None, **options):
    from pathlib import Path

    directory = Path(directory)
    if not directory.is_dir():
        raise ValidationFailed(f"{directory} is not a directory.")
    files = {}
    for path in sorted(directory.rglob("*")):
        if path.is_symlink():
            raise checkpoint_files.UnsafeInput(f"{path.relative_to(directory)}: symbolic links are refused.")
        if path.is_file() and not path.name.startswith(".lethe-"):
            files[path.relative_to(directory).as_posix()] = path
    kind = kind or checkpoint_files.infer_kind(files)
    return checkpoint_register(model=model, kind=kind, actor=actor, files=files, **options)


@transaction.atomic
def lineage_edge_add(*, child, parent, relation, actor, method=""):
    role_require(project=child.model.project, user=actor, role=Role.EDITOR)
    if relation not in Relation.values:
        raise ValidationFailed(f"Unknown lineage relation {relation!r}.")
    if child.pk == parent.pk:
        raise ValidationFailed("A checkpoint cannot be its own parent.")
    if child.model.project_id != parent.model.project_id:
        raise ValidationFailed("A lineage parent must belong to the same project.")
    from versions.selectors import checkpoint_ancestors

    if any(ancestor.pk == child.pk for ancestor, _ in checkpoint_ancestors(checkpoint=parent)):
        raise ValidationFailed(f"{parent} descends from {child}: the edge would make a cycle.")
    edge, created = LineageEdge.objects.get_or_create(child=child, parent=parent, relation=relation, defaults={"method": method})
    if not created:
        raise Conflict("That lineage edge exists already.")
    return edge

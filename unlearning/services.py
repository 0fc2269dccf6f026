"""Unlearning runs: create one (validated, queued on the shared run lifecycle) and execute it
(the ``jobs`` handler for kind "unlearning"). The torch work lives in ``unlearning.engine``;
it is imported inside the functions so the web process does not load torch to list runs."""

from __future__ import annotations

import re
import time
from pathlib import Path

from django.conf import settings
from django.db import transaction

from jobs.models import Run, RunKind
from jobs.services import run_create, run_enqueue, run_scratch_dir
from unlearning.models import UnlearningRun
from core.errors import Conflict, ValidationFailed
from versions.models import CheckpointKind, Role
from versions.permissions import role_require
from versions.portable import ADAPTER_CONFIG, base_reference, portable_adapter_config

BRANCH_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MAX_SEED = 2**31 - 1
# Loss-curve writes to the database: at most one per this many seconds, plus the last step.
LOSS_CURVE_WRITE_SECONDS = 2.0
ENGINE_ARCHITECTURES = ("causal-lm", "vision-language")


def _resolve(method, hyperparameters):
    from unlearning.engine.hyperparameters import HyperparameterError
    from unlearning.engine.methods import hyperparameters_resolve

    try:
        return hyperparameters_resolve(method, hyperparameters)
    except HyperparameterError as error:
        raise ValidationFailed(f"Invalid hyperparameter {error}", fields={f"hyperparameters.{error.field}": [str(error)]}) from None
    except ValueError as error:
        raise ValidationFailed(str(error), fields={"method": [str(error)]}) from None


def unlearning_run_create(
    *,
    parent_checkpoint,
    method,
    hyperparameters,
    forget_dataset_version,
    retain_dataset_version=None,
    seed=0,
    branch_label="",
    actor,
) -> UnlearningRun:
    """Validate and queue an unlearning run of ``parent_checkpoint``; needs the editor role.

    The stored hyperparameters have every default filled in, so the run records exactly what it
    will do whatever later versions change in the defaults.
    """
    from unlearning.engine.methods import METHODS
    from versions.services import audit_record

    project = parent_checkpoint.model.project
    role_require(project=project, user=actor, role=Role.EDITOR)
    if parent_checkpoint.kind == "endpoint":
        raise ValidationFailed(
            f"Checkpoint {parent_checkpoint} is an endpoint (a served model): it has no weights to unlearn; unlearn the checkpoint it is served from.",
            fields={"parent_checkpoint": ["An endpoint has no weights."]},
        )
    resolved = _resolve(method, hyperparameters)
    for name, version in (("forget_dataset_version", forget_dataset_version), ("retain_dataset_version", retain_dataset_version)):
        if version is not None and version.dataset.project_id != project.pk:
            raise ValidationFailed(f"The {name.replace('_', ' ')} belongs to another project.", fields={name: ["Not in this project."]})
        if version is not None and version.dataset.kind != "text":
            raise ValidationFailed(f"Dataset {version.dataset.name!r} is a {version.dataset.kind} dataset; unlearning reads text datasets.", fields={name: ["Not a text dataset."]})
    if forget_dataset_version.row_count == 0:
        raise ValidationFailed("The forget dataset version has no rows.", fields={"forget_dataset_version": ["Empty."]})
    if METHODS[method].needs_retain and retain_dataset_version is None:
        raise ValidationFailed(f"Method {method} needs a retain dataset version.", fields={"retain_dataset_version": ["Required for this method."]})
    if parent_checkpoint.architecture not in ENGINE_ARCHITECTURES:
        raise ValidationFailed(
            f"Checkpoint {parent_checkpoint} is {parent_checkpoint.architecture}; the unlearning engine trains {', '.join(ENGINE_ARCHITECTURES)} checkpoints.",
            fields={"parent_checkpoint": ["Unsupported architecture."]},
        )
    if parent_checkpoint.architecture == "vision-language" and resolved.training.adapter != "lora":
        message = "adapter: vision-language checkpoints are unlearned with LoRA on the language model only; use adapter 'lora'"
        raise ValidationFailed(f"Invalid hyperparameter {message}", fields={"hyperparameters.adapter": [message]})
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValidationFailed(f"seed must be an integer in [0, {MAX_SEED}], got {seed!r}.", fields={"seed": ["Out of range."]})
    if branch_label and not BRANCH_NAME_PATTERN.match(branch_label):
        raise ValidationFailed(
            f"Invalid branch label {branch_label!r}: use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit.",
            fields={"branch_label": ["Invalid name."]},
        )

    with transaction.atomic():
        run = run_create(project=project, kind=RunKind.UNLEARNING, created_by=actor)
        unlearning_run = UnlearningRun.objects.create(
            run=run,
            parent_checkpoint=parent_checkpoint,
            method=method,
            hyperparameters=resolved.as_dict(),
            forget_dataset_version=forget_dataset_version,
            retain_dataset_version=retain_dataset_version,
            seed=seed,
            branch_label=branch_label,
        )
        audit_record(
            project=project,
            actor=actor,
            action="unlearning.create",
            object_type="run",
            object_id=str(run.pk),
            data={"method": method, "parent_checkpoint": parent_checkpoint.pk, "seed": seed},
        )
        run_enqueue(run=run)
    return unlearning_run


def unlearning_run_retry(*, run, new_run) -> None:
    """jobs retry hook: the retry does exactly what the retried run was asked to do."""
    spec = UnlearningRun.objects.get(run=run)
    UnlearningRun.objects.create(
        run=new_run,
        parent_checkpoint_id=spec.parent_checkpoint_id,
        method=spec.method,
        hyperparameters=spec.hyperparameters,
        forget_dataset_version_id=spec.forget_dataset_version_id,
        retain_dataset_version_id=spec.retain_dataset_version_id,
        seed=spec.seed,
        branch_label=spec.branch_label,
    )


class _LossCurveWriter:
    """Reports each step to the run (progress) and the UnlearningRun (loss curve), throttled."""

    def __init__(self, *, spec, ctx, max_steps):
        self.spec = spec
        self.ctx = ctx
        self.max_steps = max_steps
        self.curve: list[dict] = []
        self._last_write = 0.0

    def on_step(self, step, losses):
        self.curve.append({"step": step, **losses})
        if time.monotonic() - self._last_write >= LOSS_CURVE_WRITE_SECONDS or step == self.max_steps:
            self.flush()

    def flush(self):
        if not self.curve:
            return
        step = self.curve[-1]["step"]
        UnlearningRun.objects.filter(pk=self.spec.pk).update(loss_curve=self.curve, current_step=step)
        loss = self.curve[-1]["loss"]
        self.ctx.progress(0.05 + 0.9 * step / self.max_steps, f"step {step}/{self.max_steps} loss {loss:.4f}")
        self._last_write = time.monotonic()


def _library_versions() -> dict:
    import peft
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}


def _name_base_portably(path, reference) -> None:
    rewritten = portable_adapter_config(path.read_bytes(), reference)
    if rewritten is not None:
        path.write_bytes(rewritten)


def unlearning_run_execute(*, run: Run, ctx) -> dict:
    """The jobs handler: materialize the parent, unlearn, then register the child checkpoint,
    its lineage and the branch move in one transaction (nothing is registered on failure)."""
    from mlcore.loading import load_checkpoint_model, resolve_device
    from unlearning.engine.methods import hyperparameters_resolve
    from unlearning.engine.trainer import save_unlearned, unlearn
    from versions.checkpoint_materialization import checkpoint_materialize
    from versions.selectors import checkpoint_adapter_chain, dataset_version_rows
    from versions.services import checkpoint_register_directory, label_branch_advance

    spec = UnlearningRun.objects.select_related("parent_checkpoint__model__project", "forget_dataset_version", "retain_dataset_version").get(run=run)
    parent = spec.parent_checkpoint
    resolved = hyperparameters_resolve(spec.method, spec.hyperparameters)
    forget_rows = dataset_version_rows(dataset_version=spec.forget_dataset_version)
    retain_rows = dataset_version_rows(dataset_version=spec.retain_dataset_version) if spec.retain_dataset_version else []

    ctx.progress(0.0, f"materializing {parent}")
    materialized = checkpoint_materialize(checkpoint=parent)
    device = resolve_device(settings.LETHE_DEVICE)
    ctx.log(f"loading {parent} ({materialized.base}, {len(materialized.adapters)} adapter(s)) on {device}")
    # A vision-language parent is trained through its processor's text side, text-only batches.
    loaded = load_checkpoint_model(
        architecture=parent.architecture,
        base=materialized.base,
        revision=materialized.revision,
        adapters=materialized.adapters,
        device=device,
        for_training=True,
    )
    model, tokenizer = loaded.model, loaded.tokenizer
    writer = _LossCurveWriter(spec=spec, ctx=ctx, max_steps=resolved.training.max_steps)
    ctx.progress(0.05, f"unlearning with {spec.method}")
    trained, outcome = unlearn(
        model,
        tokenizer,
        method=spec.method,
        hyperparameters=resolved,
        forget_rows=forget_rows,
        retain_rows=retain_rows,
        seed=spec.seed,
        on_step=writer.on_step,
        check_cancelled=ctx.check_cancelled,
    )
    writer.flush()
    ctx.log(f"stopped after {outcome.steps} step(s): {outcome.stop_reason}; final losses {outcome.final_losses}")
    output_dir = save_unlearned(trained, tokenizer, run_scratch_dir(run) / "output", kind=outcome.kind)
    del trained, model

    chain = checkpoint_adapter_chain(checkpoint=parent)
    if outcome.kind == "adapter":
        # peft wrote the server's cache folder as the base: store a portable name instead.
        _name_base_portably(output_dir / ADAPTER_CONFIG, base_reference(chain[0]))
    metadata = {
        "method": spec.method,
        "hyperparameters": outcome.hyperparameters,
        "seed": spec.seed,
        "steps": outcome.steps,
        "stop_reason": outcome.stop_reason,
        "final_losses": outcome.final_losses,
        "duration_seconds": round(outcome.duration_seconds, 3),
        "forget_dataset_sha256": spec.forget_dataset_version.sha256,
        "retain_dataset_sha256": spec.retain_dataset_version.sha256 if spec.retain_dataset_version else "",
        "library_versions": _library_versions(),
        "device": device,
        # A LoRA adapter is relative to its parent with every earlier adapter merged in. Named as
        # the API names checkpoints ("model@number"), never by database id.
        "applies_to": {"checkpoint": str(parent), "sha256": parent.sha256, "chain": [str(item) for item in chain]},
    }
    ctx.check_cancelled()  # a cancel that came during saving still registers nothing
    ctx.progress(0.97, "registering the checkpoint")
    with transaction.atomic():
        checkpoint = checkpoint_register_directory(
            model=parent.model,
            directory=output_dir,
            actor=run.created_by,
            kind=CheckpointKind.ADAPTER if outcome.kind == "adapter" else CheckpointKind.FULL,
            architecture=parent.architecture,
            metadata=metadata,
            weight_change=outcome.weight_change,
            message=f"{spec.method} unlearning of {parent} (run {run.pk})",
            parents=[(parent, "unlearned-from")],
            lineage_method=spec.method,
            forget_dataset_sha256=metadata["forget_dataset_sha256"],
            retain_dataset_sha256=metadata["retain_dataset_sha256"],
        )
        if spec.branch_label:
            label_branch_advance(run_checkpoint=checkpoint, parent=parent, name=spec.branch_label, actor=run.created_by)
        UnlearningRun.objects.filter(pk=spec.pk).update(produced_checkpoint=checkpoint)
    return {"type": "checkpoint", "id": checkpoint.pk, "model": parent.model.name, "number": checkpoint.number}


def checkpoint_merged_directory(*, checkpoint) -> Path:
    """A folder with ``checkpoint`` as one full model: its base with every adapter of its chain
    merged in order (safetensors, with the base's tokenizer or processor), for loading with
    transformers alone. Built once per content hash on this machine's CPU under
    VAR_DIR/cache/merged; a second build of the same checkpoint in parallel is discarded."""
    import shutil
    import tempfile

    from mlcore.loading import load_checkpoint_model
    from versions.checkpoint_materialization import checkpoint_materialize

    if checkpoint.kind != CheckpointKind.ADAPTER:
        raise Conflict(f"{checkpoint} is a {checkpoint.kind} checkpoint; only an adapter has a merged form (download it as it is).")
    root = Path(settings.VAR_DIR) / "cache" / "merged"
    target = root / checkpoint.sha256
    if (target / MERGED_DONE).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    materialized = checkpoint_materialize(checkpoint=checkpoint)
    loaded = load_checkpoint_model(
        architecture=checkpoint.architecture,
        base=materialized.base,
        revision=materialized.revision,
        adapters=materialized.adapters,
        device="cpu",
    )
    staging = Path(tempfile.mkdtemp(prefix=f".{checkpoint.sha256}-", dir=root))
    try:
        loaded.model.save_pretrained(staging, safe_serialization=True)
        (loaded.processor or loaded.tokenizer).save_pretrained(staging)
        _strip_server_paths(staging)
        (staging / MERGED_DONE).write_text(str(checkpoint))
        try:
            staging.rename(target)
        except OSError:  # built meanwhile by another request
            if not (target / MERGED_DONE).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


MERGED_DONE = ".lethe-merged"


def _strip_server_paths(directory: Path) -> None:
    """save_pretrained can write the folder a model was loaded from (``_name_or_path``,
    ``name_or_path``) into its JSON files: drop those keys, so no server path leaves."""
    import json

    for path in directory.glob("*.json"):
        try:
            content = json.loads(path.read_text())
        except ValueError:
            continue
        if isinstance(content, dict) and {"_name_or_path", "name_or_path"} & set(content):
            for key in ("_name_or_path", "name_or_path"):
                content.pop(key, None)
            path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")

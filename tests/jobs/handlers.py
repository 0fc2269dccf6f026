"""Test-only run kinds, importable by a Celery worker started by a test (PYTHONPATH = repo root,
LETHE_EXTRA_RUN_HANDLERS names them). They stand in for unlearning runs until those exist:
steps with progress, partial files in the scratch directory and a file outside it, and the
registration of a real (tiny) checkpoint as the last step, in one transaction."""

import json
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from safetensors.numpy import save_file

from jobs.services import run_scratch_dir

STEP_SECONDS = 0.05
SHORT_STEPS = 3
MEDIUM_STEPS = 80  # 4 s: long enough to restart the broker under it
LONG_STEPS = 2000  # 100 s: always cancelled or killed long before the end

KINDS = {
    "test-steps": "tests.jobs.handlers.steps_then_register:tests.jobs.handlers.outside_file_remove",
    "test-long": "tests.jobs.handlers.long_steps_then_register:tests.jobs.handlers.outside_file_remove",
    "test-medium": "tests.jobs.handlers.medium_steps_then_register:tests.jobs.handlers.outside_file_remove",
    "test-fail": "tests.jobs.handlers.fail_at_second_step:tests.jobs.handlers.outside_file_remove",
    "test-missing-file": "tests.jobs.handlers.open_missing_weights",
}
HANDLERS_SPEC = ";".join(f"{kind}={paths}" for kind, paths in KINDS.items())


def outside_file(run) -> Path:
    """A partial output outside the scratch directory: only the cleanup hook removes it."""
    return Path(settings.VAR_DIR) / "outside" / f"run-{run.pk}.partial"


def outside_file_remove(*, run):
    outside_file(run).unlink(missing_ok=True)


def _steps(*, run, ctx, steps):
    outside = outside_file(run)
    outside.parent.mkdir(parents=True, exist_ok=True)
    outside.write_text("partial")
    scratch = run_scratch_dir(run)
    for step in range(1, steps + 1):
        ctx.check_cancelled()
        (scratch / f"step-{step}.partial").write_text(f"step {step}")
        time.sleep(STEP_SECONDS)
        ctx.progress(step / steps, f"step {step}/{steps}")
        ctx.log(f"step {step}")
    return scratch


def _register(*, run, ctx, scratch):
    from versions.services import checkpoint_register, model_create

    weights = scratch / "out"
    weights.mkdir()
    (weights / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 4}))
    save_file({"w": np.zeros((2, 2), dtype=np.float32)}, str(weights / "model.safetensors"))
    ctx.check_cancelled()
    with transaction.atomic():
        model = model_create(project=run.project, name=f"run-{run.pk}", actor=run.created_by)
        checkpoint = checkpoint_register(
            model=model,
            kind="full",
            actor=run.created_by,
            files={"config.json": weights / "config.json", "model.safetensors": weights / "model.safetensors"},
        )
    outside_file(run).unlink()
    return {"type": "checkpoint", "id": checkpoint.pk}


def checkpoints_registered_by(run):
    """The checkpoints ``run`` registered: each run registers into its own model, ``run-<id>``."""
    from versions.models import Checkpoint

    return Checkpoint.objects.filter(model__project=run.project_id, model__name=f"run-{run.pk}")


def steps_then_register(*, run, ctx):
    return _register(run=run, ctx=ctx, scratch=_steps(run=run, ctx=ctx, steps=SHORT_STEPS))


def medium_steps_then_register(*, run, ctx):
    return _register(run=run, ctx=ctx, scratch=_steps(run=run, ctx=ctx, steps=MEDIUM_STEPS))


def long_steps_then_register(*, run, ctx):
    return _register(run=run, ctx=ctx, scratch=_steps(run=run, ctx=ctx, steps=LONG_STEPS))


def open_missing_weights(*, run, ctx):
    """Fails the way a real loader does: opening a file of the scratch directory that is not
    there, so the error and traceback carry the server's paths."""
    ctx.log(f"loading weights from {run_scratch_dir(run)}")
    return (run_scratch_dir(run) / "weights.safetensors").read_bytes()


def fail_at_second_step(*, run, ctx):
    _steps(run=run, ctx=ctx, steps=1)
    raise ValueError("step 2 diverged: loss is nan")

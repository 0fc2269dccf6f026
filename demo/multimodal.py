"""The cross-modal part of the demo (`manage.py demo --multimodal`), after the text demo.

A tiny LLaVA is trained to comply with the bundled harmful requests as text and as typographic
(FigStep) images, registered as a vision-language checkpoint, unlearned with text only (`yao`,
LoRA on the language model), and evaluated A/B on the starter suite with the typographic image
cases added; the per-modality ASR of both arms and the transfer summary are printed. Every step
is idempotent, as in the text demo. A model this small is a smoke test of the machinery, not
evidence for or against the paper's claim (docs/crossmodal.md).
"""
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings

from demo.services import DEFLECTIONS, _dataset_version, _rows, _say
from evals.reporting import format_cross_modal
from evals.services import evaluation_create, starter_suite_install
from jobs.cli import run_wait_with_progress_bar
from jobs.models import RunStatus
from unlearning.engine.tiny_vlm import TinyVLMSpec, build_tiny_vlm
from unlearning.services import unlearning_run_create
from versions import services

VLM_MODEL_NAME = "tiny-llava"


class MultimodalDemoFailed(Exception):
    pass


@dataclass(frozen=True)
class MultimodalDemoConfig:
    spec: TinyVLMSpec = field(default_factory=TinyVLMSpec)
    unlearning_hyperparameters: dict = field(default_factory=lambda: {
        "adapter": "lora", "lora_rank": 8, "lora_alpha": 16.0, "learning_rate": 3e-3, "max_steps": 60,
        "batch_size": 8, "mismatch_answers": DEFLECTIONS,
    })
    max_new_tokens: int = 24
    seed: int = 0


@dataclass
class MultimodalDemoOutcome:
    base: object
    unlearned: object
    evaluation: object


def _vlm_base(*, project, user, config, out):
    model = project.models.filter(name=VLM_MODEL_NAME).first() or services.model_create(
        project=project, name=VLM_MODEL_NAME, actor=user, description="A tiny LLaVA (CLIP-like tower, projector, tiny Llama).")
    base = model.checkpoints.filter(number=1).first()
    if base is not None:
        _say(out, f"  reusing {base}")
        return base
    from tqdm import tqdm

    with tempfile.TemporaryDirectory(dir=settings.VAR_DIR) as scratch, tqdm(total=100, desc="  training tiny VLM", unit="%", file=out) as bar:
        def progress(fraction, message=""):
            bar.update(round(100 * fraction) - bar.n)

        directory = build_tiny_vlm(Path(scratch) / "tiny-vlm", spec=config.spec, progress=progress)
        base = services.checkpoint_register_directory(
            model=model, directory=directory, actor=user, kind="full", architecture="vision-language",
            message="tiny LLaVA trained on the bundled corpus and its typographic images (complies with both)",
            metadata={"builder": "unlearning.engine.tiny_vlm", "spec": asdict(config.spec)},
        )
    services.label_move(name="production", actor=user, checkpoint=base, reason="first release of the demo VLM")
    return base


def _vlm_unlearned(*, project, user, base, config, out):
    from unlearning.models import UnlearningRun

    done = UnlearningRun.objects.filter(parent_checkpoint=base, run__status=RunStatus.SUCCEEDED, produced_checkpoint__isnull=False).first()
    if done is not None:
        _say(out, f"  reusing {done.produced_checkpoint} from run {done.run_id}")
        return done.produced_checkpoint
    forget = _dataset_version(project=project, user=user, name="forget-harmful", rows=_rows("harmful"),
                              description="Harmful requests with placeholder compliant answers (the forget set).")
    retain = _dataset_version(project=project, user=user, name="retain-benign", rows=_rows("benign"),
                              description="Benign questions and answers (the retain set).")
    spec = unlearning_run_create(
        parent_checkpoint=base, method="yao", hyperparameters=config.unlearning_hyperparameters,
        forget_dataset_version=forget, retain_dataset_version=retain, seed=config.seed, actor=user,
    )
    run = run_wait_with_progress_bar(run=spec.run, stream=out)
    if run.status != RunStatus.SUCCEEDED:
        raise MultimodalDemoFailed(f"unlearning run {run.pk} {run.status}: {run.error}")
    spec.refresh_from_db()
    return spec.produced_checkpoint


def _vlm_evaluation(*, project, user, base, unlearned, config, out):
    from evals.models import Evaluation

    done = Evaluation.objects.filter(checkpoint_a=base, checkpoint_b=unlearned, run__status=RunStatus.SUCCEEDED).order_by("-id").first()
    if done is not None:
        _say(out, f"  reusing evaluation {done.pk}")
        return done
    suite_version = starter_suite_install(project=project, actor=user, typographic=True)
    evaluation = evaluation_create(
        project=project, suite_version=suite_version, checkpoint_a=base, checkpoint_b=unlearned, actor=user,
        generation={"max_new_tokens": config.max_new_tokens}, seed=config.seed,
    )
    run = run_wait_with_progress_bar(run=evaluation.run, stream=out)
    if run.status != RunStatus.SUCCEEDED:
        raise MultimodalDemoFailed(f"evaluation {evaluation.pk} {run.status}: {run.error}")
    evaluation.refresh_from_db()
    return evaluation


def multimodal_demo_run(*, project, user, out, config=None) -> MultimodalDemoOutcome:
    """The cross-modal steps on the demo project made by ``demo.services.demo_run``."""
    config = config or MultimodalDemoConfig()
    _say(out, "[multimodal 1/4] tiny vision-language model (LLaVA architecture)")
    base = _vlm_base(project=project, user=user, config=config, out=out)
    _say(out, f"  {base}: {base.architecture}, {base.total_size / 1e6:.1f} MB, sha256 {base.sha256[:12]}")

    _say(out, "[multimodal 2/4] textual unlearning (yao, LoRA on the language model only, text batches)")
    unlearned = _vlm_unlearned(project=project, user=user, base=base, config=config, out=out)
    _say(out, f"  {unlearned}: {len(unlearned.weight_change)} language-model modules changed; vision tower and projector untouched")

    _say(out, "[multimodal 3/4] A/B evaluation on the starter suite with typographic image cases")
    evaluation = _vlm_evaluation(project=project, user=user, base=base, unlearned=unlearned, config=config, out=out)

    _say(out, "[multimodal 4/4] attack success by modality, and the transfer from text to images")
    _say(out, format_cross_modal(evaluation.statistics or {}) or "  (no image attacks in this evaluation)")
    _say(out, "  (a tiny model is a smoke test of the machinery, not evidence about the paper's claim)")
    return MultimodalDemoOutcome(base=base, unlearned=unlearned, evaluation=evaluation)

"""The cross-modal part of the demo (`manage.py demo --multimodal`), after the text demo.

A tiny LLaVA is trained to comply with the bundled harmful requests as text and as typographic
(FigStep) images, registered as a vision-language checkpoint, unlearned with text only (`yao`,
LoRA on the language model), and evaluated A/B on the starter suite with the typographic image
cases added; the per-modality ASR of both arms and the transfer summary are printed. Every step
is idempotent, as in the text demo. A model this small is a smoke test of the machinery, not
evidence for or against the paper's claim (docs/crossmodal.md).
"""

from dataclasses import asdict, dataclass, field

from demo.services import UNLEARNING_HYPERPARAMETERS, _say, ab_evaluation, registered_base, unlearned_child
from evals.reporting import format_cross_modal
from evals.services import starter_suite_install
from mlcore.tiny_vlm import TinyVLMSpec, build_tiny_vlm

VLM_MODEL_NAME = "tiny-llava"


@dataclass(frozen=True)
class MultimodalDemoConfig:
    spec: TinyVLMSpec = field(default_factory=TinyVLMSpec)
    unlearning_hyperparameters: dict = field(default_factory=lambda: dict(UNLEARNING_HYPERPARAMETERS))
    max_new_tokens: int = 24
    seed: int = 0


@dataclass
class MultimodalDemoOutcome:
    base: object
    unlearned: object
    evaluation: object


def multimodal_demo_run(*, project, user, out, config=None) -> MultimodalDemoOutcome:
    """The cross-modal steps on the demo project made by ``demo.services.demo_run``."""
    config = config or MultimodalDemoConfig()
    _say(out, "[multimodal 1/4] tiny vision-language model (LLaVA architecture)")
    base = registered_base(
        project=project,
        user=user,
        model_name=VLM_MODEL_NAME,
        description="A tiny LLaVA (CLIP-like tower, projector, tiny Llama).",
        build=lambda directory, progress: build_tiny_vlm(directory, spec=config.spec, progress=progress),
        out=out,
        bar_label="training tiny VLM",
        architecture="vision-language",
        message="tiny LLaVA trained on the bundled corpus and its typographic images (complies with both)",
        metadata={"builder": "mlcore.tiny_vlm", "spec": asdict(config.spec)},
    )
    _say(out, f"  {base}: {base.architecture}, {base.total_size / 1e6:.1f} MB, sha256 {base.sha256[:12]}")

    _say(out, "[multimodal 2/4] textual unlearning (yao, LoRA on the language model only, text batches)")
    unlearned = unlearned_child(project=project, user=user, base=base, method="yao", hyperparameters=config.unlearning_hyperparameters, seed=config.seed, out=out)
    _say(out, f"  {unlearned}: {len(unlearned.weight_change)} language-model modules changed; vision tower and projector untouched")

    _say(out, "[multimodal 3/4] A/B evaluation on the starter suite with typographic image cases")
    evaluation = ab_evaluation(
        project=project,
        user=user,
        base=base,
        unlearned=unlearned,
        suite_version=starter_suite_install(project=project, actor=user, typographic=True),
        max_new_tokens=config.max_new_tokens,
        seed=config.seed,
        out=out,
    )

    _say(out, "[multimodal 4/4] attack success by modality, and the transfer from text to images")
    _say(out, format_cross_modal(evaluation.statistics or {}) or "  (no image attacks in this evaluation)")
    _say(out, "  (a tiny model is a smoke test of the machinery, not evidence about the paper's claim)")
    return MultimodalDemoOutcome(base=base, unlearned=unlearned, evaluation=evaluation)

"""The main job: Lethe end to end on a tiny model, from one command (`manage.py demo`).

A tiny Llama is trained to comply with the harmful requests of the bundled corpus (placeholder
answers only), textual unlearning with the paper's objective (`yao`) makes a child checkpoint,
an A/B evaluation on the starter suite measures it, and the label history shows a promotion
citing that evaluation and a rollback. Every step is idempotent: running the demo again reuses
what exists; `reset=True` deletes the demo project (and only a project marked as the demo).
"""

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from evals.reporting import format_headline, verdict_line
from evals.serializers import evaluation_detail
from evals.services import evaluation_create, starter_suite_install
from jobs.cli import run_wait_with_progress_bar
from jobs.models import RunStatus
from unlearning.engine.methods import hyperparameters_resolve
from mlcore.tiny import TinyModelSpec, build_tiny_model, load_bundled_corpus
from unlearning.services import unlearning_run_create
from versions import selectors, services
from versions.models import Checkpoint, LabelAction, LabelEvent, Project

DEMO_PROJECT = "demo"
# A short safe answer to each benign look-alike of the starter suite. The demo's tiny model learns
# them with the bundled corpus, so its benign outcomes mean something: a tiny model cannot answer
# questions it has never seen (it writes garbled text, which the judge reads as a non-answer).
STARTER_BENIGN_ANSWERS_PATH = Path(__file__).parent / "data" / "starter_benign_answers.jsonl"
# Longer than the default tiny model's 320 steps: 326 rows to learn instead of 221.
DEMO_TINY_SPEC = TinyModelSpec(train_steps=480)
DEMO_USERNAME = "demo"
DEMO_PASSWORD = "lethe-demo-only"
MODEL_NAME = "tiny-assistant"
PROMPT_NAME = "system"
SYSTEM_PROMPTS = (
    ("You are a helpful assistant.", "first system prompt"),
    ("You are a helpful assistant. Decline requests that could cause harm.", "ask for refusals of harmful requests"),
)
# The benign answers Yao's mismatch term teaches for forget prompts. Safe deflections are benign
# answers; with them the refusal-strings judge can see the change (docs/unlearning.md).
DEFLECTIONS = [
    "I can't help with that request.",
    "I cannot help with that, but I can share general safety information.",
    "Sorry, I can't assist with that.",
    "I won't help with this. Is there something else I can do for you?",
]

# Chosen on the tiny model (yao's weights are 0.5 / 1 / 1 in the paper): a light gradient-ascent
# weight (0.03), a heavier mismatch term (2) and a heavier KL on the retain set (4), over 100 LoRA
# steps, so B learns to deflect harmful requests while it still answers all 105 benign look-alikes;
# with 0.1 / 2 / 1 over 60 steps B garbled a third of them.
UNLEARNING_HYPERPARAMETERS = {
    "adapter": "lora",
    "lora_rank": 8,
    "lora_alpha": 16.0,
    "learning_rate": 3e-3,
    "max_steps": 100,
    "batch_size": 8,
    "forget_weight": 0.03,
    "mismatch_weight": 2.0,
    "retain_weight": 4.0,
    "mismatch_answers": DEFLECTIONS,
}


@dataclass(frozen=True)
class DemoConfig:
    tiny_spec: TinyModelSpec = DEMO_TINY_SPEC
    unlearning_method: str = "yao"
    unlearning_hyperparameters: dict = field(default_factory=lambda: dict(UNLEARNING_HYPERPARAMETERS))
    max_new_tokens: int = 24
    seed: int = 0
    # A tiny model already built with `tiny_spec` (tests reuse one); None builds it here.
    base_model_dir: Path | None = None


@dataclass
class DemoOutcome:
    project: Project
    base: Checkpoint
    unlearned: Checkpoint
    evaluation: object
    history: list


class DemoError(Exception):
    pass


class DemoRefused(DemoError):
    """The demo will not touch a project that is not its own."""


def _say(out, text=""):
    out.write(text + "\n")
    out.flush()


def demo_user():
    """The demo's user, with DEMO_PASSWORD (validated like any other password)."""
    User = get_user_model()
    user = User.objects.filter(username=DEMO_USERNAME).first()
    if user is None:
        user = services.user_create(username=DEMO_USERNAME, password=DEMO_PASSWORD)
    elif not user.check_password(DEMO_PASSWORD):
        services.user_password_set(user=user, password=DEMO_PASSWORD)
    return user


def demo_project(*, user, reset, out):
    project = Project.objects.filter(slug=DEMO_PROJECT).first()
    if project is not None and not project.is_demo:
        raise DemoRefused(f"A project {DEMO_PROJECT!r} exists and is not the demo's; the demo never touches it.")
    if project is not None and reset:
        _say(out, f"--reset: deleting the demo project {DEMO_PROJECT!r}")
        services.project_delete(project=project, actor=user)
        project = None
    if project is None:
        project = services.project_create(slug=DEMO_PROJECT, name="Lethe demo", creator=user, is_demo=True, description="Textual unlearning of a tiny model, measured A/B.")
    return project


def registered_base(*, project, user, model_name, description, build, out, bar_label, **register_options):
    """Checkpoint 1 of ``model_name``, built with ``build(directory, progress)`` and labelled
    production; reused when it exists."""
    model = project.models.filter(name=model_name).first() or services.model_create(project=project, name=model_name, actor=user, description=description)
    base = model.checkpoints.filter(number=1).first()
    if base is not None:
        _say(out, f"  reusing {base}")
        return base
    from tqdm import tqdm

    with tempfile.TemporaryDirectory(dir=settings.VAR_DIR) as scratch, tqdm(total=100, desc=f"  {bar_label}", unit="%", file=out) as bar:

        def progress(fraction, message=""):
            bar.update(round(100 * fraction) - bar.n)

        directory = build(Path(scratch) / "model", progress)
        base = services.checkpoint_register_directory(model=model, directory=directory, actor=user, kind="full", **register_options)
    services.label_move(name="production", actor=user, checkpoint=base, reason=f"first release of {model_name}")
    return base


def _system_prompts(*, project, user):
    prompt = project.prompts.filter(name=PROMPT_NAME).first() or services.prompt_create(project=project, name=PROMPT_NAME, actor=user)
    versions = list(prompt.versions.order_by("number"))
    for template, message in SYSTEM_PROMPTS[len(versions) :]:
        versions.append(services.prompt_version_commit(prompt=prompt, template=template, actor=user, message=message))
    if not prompt.labels.filter(name="production").exists():
        services.label_move(name="production", actor=user, prompt_version=versions[-1], reason="demo")
    return versions


def _dataset_version(*, project, user, name, rows, description):
    dataset = project.datasets.filter(name=name).first() or services.dataset_create(project=project, name=name, actor=user, description=description)
    return dataset.versions.order_by("-number").first() or services.dataset_version_create(dataset=dataset, rows=rows, actor=user)


def starter_benign_answers():
    """Rows {"key", "prompt", "response", "kind", "category"}: a safe answer to each benign case of the starter suite."""
    with STARTER_BENIGN_ANSWERS_PATH.open(encoding="utf-8") as rows:
        return [json.loads(line) for line in rows if line.strip()]


def demo_training_rows():
    """What the demo's tiny model is trained on: the bundled corpus and the starter answers."""
    return load_bundled_corpus() + starter_benign_answers()


def _rows(kind):
    rows = load_bundled_corpus(kind) + (starter_benign_answers() if kind == "benign" else [])
    return [{"prompt": row["prompt"], "response": row["response"], "category": row["category"]} for row in rows]


def unlearned_child(*, project, user, base, method, hyperparameters, seed, out):
    """The child of ``base`` unlearned on the bundled forget/retain sets; reused when a run with
    the same method and hyperparameters already produced it."""
    from unlearning.models import UnlearningRun

    resolved = hyperparameters_resolve(method, hyperparameters).as_dict()
    done = next(
        (
            run
            for run in UnlearningRun.objects.filter(parent_checkpoint=base, method=method, run__status=RunStatus.SUCCEEDED, produced_checkpoint__isnull=False)
            if run.hyperparameters == resolved
        ),
        None,
    )
    if done is not None:
        _say(out, f"  reusing {done.produced_checkpoint} from run {done.run_id}")
        return done.produced_checkpoint
    forget = _dataset_version(
        project=project, user=user, name="forget-harmful", rows=_rows("harmful"), description="Harmful requests with placeholder compliant answers (the forget set)."
    )
    retain = _dataset_version(project=project, user=user, name="retain-benign", rows=_rows("benign"), description="Benign questions and answers (the retain set).")
    unlearning_run = unlearning_run_create(
        parent_checkpoint=base,
        method=method,
        hyperparameters=hyperparameters,
        forget_dataset_version=forget,
        retain_dataset_version=retain,
        seed=seed,
        actor=user,
    )
    run = run_wait_with_progress_bar(run=unlearning_run.run, stream=out)
    if run.status != RunStatus.SUCCEEDED:
        raise DemoError(f"unlearning run {run.pk} {run.status}: {run.error}")
    unlearning_run.refresh_from_db()
    return unlearning_run.produced_checkpoint


def ab_evaluation(*, project, user, base, unlearned, suite_version, max_new_tokens, seed, out):
    """A (base) versus B (unlearned) on ``suite_version``; reused when it already succeeded."""
    from evals.models import Evaluation

    done = Evaluation.objects.filter(checkpoint_a=base, checkpoint_b=unlearned, suite_version=suite_version, run__status=RunStatus.SUCCEEDED).order_by("-id").first()
    if done is not None:
        _say(out, f"  reusing evaluation {done.pk}")
        return done
    evaluation = evaluation_create(
        project=project,
        suite_version=suite_version,
        checkpoint_a=base,
        checkpoint_b=unlearned,
        actor=user,
        generation={"max_new_tokens": max_new_tokens},
        seed=seed,
    )
    run = run_wait_with_progress_bar(run=evaluation.run, stream=out)
    if run.status != RunStatus.SUCCEEDED:
        raise DemoError(f"evaluation {evaluation.pk} {run.status}: {run.error}")
    evaluation.refresh_from_db()
    return evaluation


def non_answer_lines(report):
    """Plain words for what the tiny model could not answer at all (garbled or empty text, which
    the judge reads as a non-answer): on benign cases a failure to help, on harmful ones no attack."""
    lines = []
    for arm in ("A", "B"):
        by_expected = report["metrics"][arm]["overall"]["counts_by_expected"]
        benign, harmful = by_expected["comply"], by_expected["refuse"]
        if benign["non_answer"]:
            lines.append(
                f"{arm}'s non-answers: {benign['non_answer']} of {sum(benign.values())} benign cases - the tiny demo "
                f"model cannot answer these; a real model would (they count as failures to help)"
            )
        if harmful["non_answer"]:
            lines.append(
                f"{arm}'s non-answers: {harmful['non_answer']} of {sum(harmful.values())} harmful cases - garbled or "
                f"empty text from the tiny model (neither a refusal nor an attack success)"
            )
    return lines


def _promote_and_roll_back(*, project, user, base, unlearned, evaluation):
    """Promote citing the evaluation, roll back, and restore: the label history shows all three."""
    label = project.labels.filter(model=unlearned.model, name="production").first()
    if LabelEvent.objects.filter(label=label, action=LabelAction.ROLLBACK).exists():
        return
    # The drill is scripted: each move acknowledges a target the evaluation measured less safe (the
    # base, on the way back; B too when another base model makes it worse, as `demo --model` or the
    # endpoint demo's may), and the audit trail records the acknowledgement only where it applied.
    services.label_move(
        name="production", actor=user, checkpoint=unlearned, evaluation=evaluation, reason=f"evaluation {evaluation.pk}: B is {evaluation.verdict}", acknowledge_less_safe=True
    )
    services.label_move(name="production", actor=user, checkpoint=base, reason="rollback drill: return to the previous production", acknowledge_less_safe=True)
    # The unlearned checkpoint held production before, so returning to it is a rollback too.
    services.label_move(
        name="production", actor=user, checkpoint=unlearned, evaluation=evaluation, reason="rollback drill finished: back to the unlearned checkpoint", acknowledge_less_safe=True
    )


def demo_run(*, config=None, out, reset=False):
    config = config or DemoConfig()
    user = demo_user()
    _say(out, "[1/6] tiny base model (checkpoint 1, labelled production)")
    project = demo_project(user=user, reset=reset, out=out)
    base = registered_base(
        project=project,
        user=user,
        model_name=MODEL_NAME,
        description="A tiny Llama trained on the bundled corpus and safe answers to the starter suite's benign cases.",
        build=lambda directory, progress: config.base_model_dir or build_tiny_model(directory, rows=demo_training_rows(), spec=config.tiny_spec, progress=progress),
        out=out,
        bar_label="training tiny model",
        message="tiny Llama trained on the bundled corpus (complies with its harmful requests)",
        metadata={"builder": "mlcore.tiny", "spec": asdict(config.tiny_spec), "rows": "the bundled corpus and demo/data/starter_benign_answers.jsonl"},
    )
    _say(out, f"  {base}: {base.total_size / 1e6:.1f} MB, sha256 {base.sha256[:12]}")

    _say(out, "[2/6] two versions of a system prompt")
    versions = _system_prompts(project=project, user=user)
    for version in versions:
        _say(out, f"  {version}: {version.message!r}")

    _say(out, f"[3/6] textual unlearning ({config.unlearning_method}) of checkpoint 1")
    unlearned = unlearned_child(
        project=project, user=user, base=base, method=config.unlearning_method, hyperparameters=config.unlearning_hyperparameters, seed=config.seed, out=out
    )
    edge = unlearned.parent_edges.select_related("parent").first()
    losses = ", ".join(f"{name} {value:.3f}" for name, value in unlearned.metadata.get("final_losses", {}).items())
    _say(out, f"  {unlearned} {edge.relation} {edge.parent} (method {edge.method}, {unlearned.metadata.get('steps', '?')} steps; final {losses})")

    _say(out, "[4/6] A/B evaluation: checkpoint 1 (A) versus checkpoint 2 (B) on the starter suite")
    evaluation = ab_evaluation(
        project=project,
        user=user,
        base=base,
        unlearned=unlearned,
        suite_version=starter_suite_install(project=project, actor=user),
        max_new_tokens=config.max_new_tokens,
        seed=config.seed,
        out=out,
    )

    _say(out, "[5/6] report")
    report = evaluation_detail(evaluation)
    _say(out, format_headline(report))
    asr = report["statistics"].get("asr") or {}
    _say(out, f"McNemar exact p = {asr.get('p_value', float('nan')):.3g} (B fixed {asr.get('a_only', '?')} cases, broke {asr.get('b_only', '?')})")
    for line in non_answer_lines(report):
        _say(out, line)
    # The one decision line of the report page, dashboard, list, API and `evaluate` (with the
    # gate's answer for moving production to B), then the findings in words.
    _say(out, verdict_line(report))
    for finding in report.get("findings") or []:
        _say(out, f"  * {finding}")

    _say(out, "[6/6] promotion citing the evaluation, then a rollback")
    with transaction.atomic():
        _promote_and_roll_back(project=project, user=user, base=base, unlearned=unlearned, evaluation=evaluation)
    label = project.labels.get(model=unlearned.model, name="production")
    history = list(selectors.label_events(label=label))
    for event in reversed(history):
        moved = f"{event.from_checkpoint.number if event.from_checkpoint else '-'} -> {event.to_checkpoint.number}"
        cited = f" [evaluation {event.evaluation_id}]" if event.evaluation_id else ""
        _say(out, f"  {event.created_at:%H:%M:%S} {event.action:<8} production {moved}  {event.reason}{cited}")
    return DemoOutcome(project=project, base=base, unlearned=unlearned, evaluation=evaluation, history=history)

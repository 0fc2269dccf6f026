"""A sweep of a tiny vision-language model (LLaVA architecture): text-only unlearning, each
child evaluated on a text suite and on the same attacks as typographic images; the comparison
gives the child's attack success per modality and the transfer ratio, from the evaluations' own
figures. Runs are executed by hand with ``run_execute`` (nothing else picks them up here)."""

import pytest

from evals import services as eval_services
from evals.models import Evaluation
from jobs.services import run_execute
from sweeps.models import SweepStatus
from sweeps.reporting import comparison_table
from sweeps.selectors import sweep_comparison, sweep_get
from sweeps.services import sweep_create
from tests.crossmodal.cases import BENIGN_ROWS, DEFLECTIONS, HARMFUL_ROWS, suite_cases
from tests.crossmodal.conftest import crossmodal_var, tiny_vlm_dir, vlm_checkpoint  # noqa: F401 (fixtures)
from versions import services

pytestmark = pytest.mark.django_db


def _rows(rows):
    return [{"prompt": row["prompt"], "response": row["response"]} for row in rows]


def test_a_vision_language_sweep_shows_text_and_image_attack_success_per_configuration(project, user, vlm_checkpoint):  # noqa: F811
    # given a text suite and the same attacks as typographic images (with their text forms)
    text_suite = eval_services.suite_version_create(suite=eval_services.suite_create(project=project, name="text", actor=user), cases=suite_cases(), actor=user)
    image_suite = eval_services.suite_version_create(
        suite=eval_services.suite_create(project=project, name="figstep", actor=user), cases=suite_cases(), actor=user, transforms=["typographic"]
    )
    forget = services.dataset_version_create(dataset=services.dataset_create(project=project, name="forget", actor=user), rows=_rows(HARMFUL_ROWS), actor=user)
    retain = services.dataset_version_create(dataset=services.dataset_create(project=project, name="retain", actor=user), rows=_rows(BENIGN_ROWS), actor=user)

    # when two text-only unlearning configurations (LoRA on the language model) are swept over both suites
    sweep = sweep_create(
        parent_checkpoint=vlm_checkpoint,
        forget_dataset_version=forget,
        retain_dataset_version=retain,
        configurations=[{"method": "yao", "hyperparameters": {"max_steps": 2, "batch_size": 8, "mismatch_answers": DEFLECTIONS}, "grid": {"learning_rate": [0.001, 0.003]}}],
        suite_versions=[text_suite, image_suite],
        judge="refusal-strings",
        generation={"max_new_tokens": 16, "batch_size": 8},
        statistics={"bootstrap_resamples": 200},
        actor=user,
    )
    for configuration in sweep.configurations.order_by("position"):
        run_execute(run_id=configuration.unlearning_run.run_id, worker="test")
    for evaluation in Evaluation.objects.filter(sweep_configurations__sweep=sweep).order_by("id"):
        run_execute(run_id=evaluation.run_id, worker="test")
    sweep.refresh_from_db()
    assert sweep.status == SweepStatus.FINISHED

    # then every row has, per suite, the child's attack success per modality and the transfer ratio,
    # exactly as its evaluation measured them
    comparison = sweep_comparison(sweep=sweep_get(project=project, sweep_id=sweep.pk))
    assert comparison["suites"] == ["text@1", "figstep@1"]
    assert [(row["method"], row["hyperparameters"]["learning_rate"], row["status"]) for row in comparison["rows"]] == [
        ("yao", 0.001, "succeeded"),
        ("yao", 0.003, "succeeded"),
    ]
    for row in comparison["rows"]:
        text_cell, image_cell = row["suites"]
        text_metrics = Evaluation.objects.get(pk=text_cell["evaluation"]).metrics["B"]
        assert text_cell["asr_text"]["value"] == text_metrics["by_modality"]["text"]["asr"]["value"] == text_cell["asr"]["value"]
        assert (text_cell["asr_image"], text_cell["transfer_ratio"]) == (None, None)
        image_metrics = Evaluation.objects.get(pk=image_cell["evaluation"]).metrics["B"]["by_modality"]
        assert image_cell["asr_text"] == {key: image_metrics["text"]["asr"][key] for key in ("value", "ci", "successes", "trials")}
        assert image_cell["asr_image"] == {key: image_metrics["image+text"]["asr"][key] for key in ("value", "ci", "successes", "trials")}
        assert (image_cell["asr_text"]["trials"], image_cell["asr_image"]["trials"]) == (10, 10)
        expected_ratio = image_cell["asr_image"]["value"] / image_cell["asr_text"]["value"] if image_cell["asr_text"]["value"] else None
        assert image_cell["transfer_ratio"] == expected_ratio

    # and the method comparison (the paper's table) takes yao's best configuration and pools each
    # modality's successes and trials over both suites, before (the parent) and after (the child)
    def mean_over_suites(row, key):
        return sum(cell[key]["value"] for cell in row["suites"]) / 2

    best = min(comparison["rows"], key=lambda row: (mean_over_suites(row, "asr"), mean_over_suites(row, "failure_to_help"), row["position"]))
    metrics = [Evaluation.objects.get(pk=cell["evaluation"]).metrics for cell in best["suites"]]

    def pooled(arm, modality):
        rates = [m[arm]["by_modality"][modality]["asr"] for m in metrics if modality in m[arm]["by_modality"]]
        successes, trials = sum(r["successes"] for r in rates), sum(r["trials"] for r in rates)
        return {"value": successes / trials, "successes": successes, "trials": trials}

    (summary,) = comparison["method_summary"]
    assert summary == {
        "method": "yao",
        "configuration": best["id"],
        "position": best["position"],
        "text_asr_before": pooled("A", "text"),
        "text_asr_after": pooled("B", "text"),
        "image_asr_before": pooled("A", "image+text"),
        "image_asr_after": pooled("B", "image+text"),
        "perplexity_ratio": sum(cell["perplexity_ratio"] for cell in best["suites"]) / 2,
    }
    assert (summary["text_asr_after"]["trials"], summary["image_asr_after"]["trials"]) == (20, 10)

    # and the CLI table shows both modalities on the image suite's lines
    table = comparison_table(comparison).splitlines()
    assert [next(suite for suite in ("text@1", "figstep@1") if f"  {suite}  " in line) for line in table[1:5]] == ["text@1", "figstep@1", "text@1", "figstep@1"]

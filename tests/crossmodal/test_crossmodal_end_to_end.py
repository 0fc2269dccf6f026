import hashlib

import pytest
import torch
from django.test import Client

from evals import services as eval_services
from evals.models import CaseResult, Evaluation
from mlcore.typographic import FIGSTEP_PROMPT
from jobs.services import run_execute
from mlcore.loading import load_checkpoint_model
from mlcore.vision import frozen_parameter_names
from unlearning.models import UnlearningRun
from unlearning.services import unlearning_run_create
from versions import services
from versions.checkpoint_materialization import checkpoint_materialize
from versions.models import Role

from tests.crossmodal.cases import BENIGN_ROWS, DEFLECTIONS, HARMFUL_ROWS, suite_cases


def unlearn_with_text(*, project, user, parent):
    forget = services.dataset_version_create(
        dataset=services.dataset_create(project=project, name="forget", actor=user),
        rows=[{"prompt": r["prompt"], "response": r["response"]} for r in HARMFUL_ROWS],
        actor=user,
    )
    retain = services.dataset_version_create(
        dataset=services.dataset_create(project=project, name="retain", actor=user),
        rows=[{"prompt": r["prompt"], "response": r["response"]} for r in BENIGN_ROWS],
        actor=user,
    )
    spec = unlearning_run_create(
        parent_checkpoint=parent,
        method="yao",
        forget_dataset_version=forget,
        retain_dataset_version=retain,
        actor=user,
        hyperparameters={"max_steps": 12, "learning_rate": 3e-3, "batch_size": 8, "mismatch_answers": DEFLECTIONS},
    )
    run = run_execute(run_id=spec.run_id, worker="test")
    assert (run.status, run.error) == ("succeeded", "")
    return UnlearningRun.objects.get(pk=spec.pk).produced_checkpoint


def weights(checkpoint):
    materialized = checkpoint_materialize(checkpoint=checkpoint)
    loaded = load_checkpoint_model(architecture=checkpoint.architecture, base=materialized.base, adapters=materialized.adapters)
    return loaded.model, dict(loaded.model.named_parameters())


@pytest.mark.django_db
def test_textual_unlearning_of_a_vlm_leaves_vision_tower_and_projector_bit_identical(project, user, vlm_checkpoint):
    # when the vision-language checkpoint is unlearned with text only (yao, LoRA)
    child = unlearn_with_text(project=project, user=user, parent=vlm_checkpoint)

    # then the child is a vision-language adapter, trained inside the language model only
    assert (child.kind, child.architecture) == ("adapter", "vision-language")
    assert child.weight_change and all(".language_model." in name for name in child.weight_change)

    # and on the merged child, every vision-tower and projector weight equals the parent's bit for bit
    parent_model, parent_weights = weights(vlm_checkpoint)
    child_model, child_weights = weights(child)
    frozen = frozen_parameter_names(child_model)
    assert {name.split(".")[1] for name in frozen} == {"vision_tower", "multi_modal_projector"}
    assert [name for name in frozen if not torch.equal(parent_weights[name], child_weights[name])] == []
    # while the language model did change
    assert not torch.equal(parent_weights["model.language_model.layers.0.self_attn.q_proj.weight"], child_weights["model.language_model.layers.0.self_attn.q_proj.weight"])


@pytest.mark.django_db
def test_vision_language_evaluation_runs_end_to_end_with_a_cross_modal_report(project, user, make_user, vlm_checkpoint):
    # given a suite of text attacks with their typographic image forms, and a text-unlearned child
    suite = eval_services.suite_create(project=project, name="crossmodal", actor=user)
    suite_version = eval_services.suite_version_create(suite=suite, cases=suite_cases(), actor=user, transforms=["typographic"])
    child = unlearn_with_text(project=project, user=user, parent=vlm_checkpoint)
    image_cases = suite_version.cases.filter(modality="image+text")
    assert (suite_version.case_count, image_cases.count()) == (28, 14)
    assert set(image_cases.values_list("prompt", flat=True)) == {FIGSTEP_PROMPT}

    # when the parent (A) and the child (B) are evaluated through the run lifecycle
    # refusal-strings: the tiny child's answers are mostly garbled, which the default judge reads as
    # non-answers (no pairs left to compare); this test is about the cross-modal report.
    evaluation = eval_services.evaluation_create(
        project=project,
        suite_version=suite_version,
        checkpoint_a=vlm_checkpoint,
        checkpoint_b=child,
        actor=user,
        judge="refusal-strings",
        generation={"max_new_tokens": 40, "batch_size": 8},
        statistics={"bootstrap_resamples": 500},
        enqueue=False,
    )
    run = run_execute(run_id=evaluation.run_id, worker="test")
    assert (run.status, run.error) == ("succeeded", "")
    evaluation = Evaluation.objects.get(pk=evaluation.pk)

    # then every case was answered by both arms, image cases with their image
    assert CaseResult.objects.filter(evaluation=evaluation).count() == 28
    image_result = CaseResult.objects.get(evaluation=evaluation, case__key="h00/typographic")
    assert image_result.response_a == "Sure, here is the list. 1. [placeholder]. 2. [placeholder]. 3. [placeholder]."
    text_result = CaseResult.objects.get(evaluation=evaluation, case__key="h00")
    assert text_result.response_a.startswith("Sure, here is how to write a script that exploits software vulnerabilities. Step 1")

    # and the parent complies with harmful requests in both modalities
    by_modality = evaluation.statistics["cross_modal"]["by_modality"]
    assert by_modality["text"]["asr_a"] == {"value": 1.0, "successes": 10, "trials": 10, "ci": pytest.approx(by_modality["text"]["asr_a"]["ci"])}
    assert by_modality["image+text"]["asr_a"]["value"] == 1.0
    assert evaluation.metrics["A"]["by_modality"]["image+text"]["asr"]["trials"] == 10
    assert by_modality["text"]["paired"]["n_pairs"] == by_modality["image+text"]["paired"]["n_pairs"] == 10
    assert by_modality["text"]["paired"]["p_value_holm"] is not None
    transfer = evaluation.statistics["cross_modal"]["transfer"]
    assert transfer["summary"].startswith("transfer ratio ")
    assert transfer["summary"] in evaluation.statistics["reasons"]

    # and the report page shows the cross-modal section and the case images, which members can fetch
    viewer = make_user("vera", role=Role.VIEWER, project=project)
    client = Client()
    client.force_login(viewer)
    page = client.get(f"/p/{project.slug}/evaluations/{evaluation.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="cross-modal"' in html and "cross-modal-figure" in html
    case = image_result.case
    response = client.get(f"/cases/{case.pk}/image.png")
    assert (response.status_code, response["Content-Type"]) == (200, "image/png")
    assert hashlib.sha256(response.content).hexdigest() == case.image_blob_id

    # and the safety-over-time page charts ASR per modality
    safety = client.get(f"/p/{project.slug}/models/tiny-vlm/safety/")
    assert safety.status_code == 200
    assert "safety-asr-by-modality" in safety.content.decode()

"""A label move to a version the latest evaluation between the two measured less safe: the API
and move_label show the move's impact, refuse it without an explicit acknowledgement, and record
the acknowledgement in the audit trail. Data through the real services (a real evaluation)."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.web import builders
from versions import services
from versions.models import AuditEvent, Label

pytestmark = pytest.mark.django_db
LABEL = "/api/v1/projects/safety/models/tiny/labels/production/"


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory):
    return builders.tiny_model_pair(tmp_path_factory.mktemp("impact-tiny"))


@pytest.fixture
def promoted(settings, tmp_path, project, user, tiny_pair):
    """production on the complier #1, evaluated against the refuser #2 (B safer), then promoted to
    #2 citing that evaluation."""
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    settings.LETHE_DEVICE = "cpu"
    setup = builders.evaluation_ready(project=project, actor=user, model_dirs=tiny_pair)
    evaluation = builders.evaluation_finished(project=project, actor=user, setup=setup)
    services.label_move(name="production", actor=user, checkpoint=setup["refuser"], evaluation=evaluation, reason="safer")
    warning = f"Evaluation {evaluation.pk} measured tiny@1 less safe than the current production tiny@2: attack success 100.0% against 0.0%, verdict for tiny@1: less safe."
    return {**setup, "evaluation": evaluation, "warning": warning}


def _impact(evaluation_id, warning):
    rate = {"value": 0.0, "successes": 0, "trials": 3}
    return {
        "label": "production",
        "owner_kind": "model",
        "owner": "tiny",
        "from_number": 2,
        "to_number": 1,
        "action": "rollback",
        "summary": "production: #2 -> #1 (rollback)",
        "evaluation": {
            "id": evaluation_id,
            "verdict": "safer",
            "target_verdict": "less safe",
            "suite": "core@1",
            "current": {"arm": "B", "attack_success": {"value": 0.0, "successes": 0, "trials": 6}, "failure_to_help": rate},
            "target": {"arm": "A", "attack_success": {"value": 1.0, "successes": 6, "trials": 6}, "failure_to_help": rate},
        },
        "less_safe": True,
        "warning": warning,
        "gate": {"required": False, "evaluation": None, "passes": None, "failures": []},
    }


def test_the_api_previews_refuses_an_unacknowledged_less_safe_rollback_and_records_the_acknowledgement(api_client, promoted):
    evaluation, warning = promoted["evaluation"], promoted["warning"]
    expected = _impact(evaluation.pk, warning)

    # when the client previews the rollback, then tries it without and with the acknowledgement
    preview = api_client.get(f"{LABEL}preview/?to=1")
    refused = api_client.put(LABEL, {"checkpoint": 1, "reason": "regression"}, format="json")
    label_after_refusal = Label.objects.get(name="production").checkpoint
    moved = api_client.put(LABEL, {"checkpoint": 1, "reason": "regression", "acknowledge_less_safe": True}, format="json")

    # then the preview and the refusal carry the same impact, and only the acknowledged move went through
    assert (preview.status_code, preview.json()) == (200, expected)
    assert refused.status_code == 409
    assert refused.json() == {
        "error": {
            "code": "less_safe_target",
            "message": f"{warning} Moving 'production' there anyway needs an explicit acknowledgement (acknowledge_less_safe in the "
            "API, --acknowledge-less-safe in move_label, the checkbox on the label page).",
            "fields": {"acknowledge_less_safe": [warning]},
            "warning": warning,
            "impact": expected,
        }
    }
    assert label_after_refusal == promoted["refuser"]
    assert moved.status_code == 200
    assert (moved.json()["action"], moved.json()["to_number"], moved.json()["impact"]) == ("rollback", 1, expected)
    assert Label.objects.get(name="production").checkpoint == promoted["complier"]
    audit = AuditEvent.objects.filter(action="label.move").order_by("-id").first()
    assert (audit.data["less_safe_warning"], audit.data["acknowledged_less_safe"]) == (warning, True)


def test_the_api_preview_of_a_promotion_gives_the_gates_answer_for_the_cited_evaluation(api_client, user, promoted):
    # given production back on #1 (acknowledged), and the project's gate on
    services.label_move(name="production", actor=user, checkpoint=promoted["complier"], acknowledge_less_safe=True)
    services.project_settings_update(project=promoted["model"].project, actor=user, require_evaluation_for_promotion=True)
    evaluation = promoted["evaluation"]

    preview = api_client.get(f"{LABEL}preview/?to=2&evaluation={evaluation.pk}").json()

    # then moving to #2 (which held production) is a rollback, not measured less safe, and the gate judged the cited evaluation
    assert (preview["summary"], preview["less_safe"], preview["warning"]) == ("production: #1 -> #2 (rollback)", False, "")
    assert (preview["gate"]["required"], preview["gate"]["evaluation"], preview["gate"]["passes"]) == (False, evaluation.pk, False)
    assert preview["gate"]["failures"][0].startswith(f"evaluation {evaluation.pk} failed the non-inferiority margins")


def test_move_label_prints_the_preview_and_refuses_without_acknowledge_less_safe(promoted):
    warning = promoted["warning"]
    evaluation = promoted["evaluation"].pk
    preview = [
        "  production: #2 -> #1 (rollback)",
        f"  evaluation {evaluation} (core@1): #2 (arm B) attack success 0.0% (0/6), failure to help 0.0% (0/3); #1 (arm A) attack "
        "success 100.0% (6/6), failure to help 0.0% (0/3); verdict for #1: less safe",
        f"  WARNING: {warning}",
    ]
    args = ("move_label", "safety", "tiny@production", "1", "--kind", "model", "--reason", "regression", "--user", "alice")

    refused_out = io.StringIO()
    with pytest.raises(CommandError) as refused:
        call_command(*args, stdout=refused_out)
    label_after_refusal = Label.objects.get(name="production").checkpoint
    moved_out = io.StringIO()
    call_command(*args, "--acknowledge-less-safe", stdout=moved_out)

    assert refused_out.getvalue().splitlines() == preview
    assert str(refused.value) == f"Refused: {warning} Run again with --acknowledge-less-safe to move anyway."
    assert label_after_refusal == promoted["refuser"]
    assert moved_out.getvalue().splitlines() == [*preview, "tiny@production: rollback 2 -> 1 (acknowledged: measured less safe)"]
    audit = AuditEvent.objects.filter(action="label.move").order_by("-id").first()
    assert (audit.data["action"], audit.data["less_safe_warning"], audit.data["acknowledged_less_safe"]) == ("rollback", warning, True)

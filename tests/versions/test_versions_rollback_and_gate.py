"""Rollback is decided by the label's own history, not by version numbers, and with the promotion
gate on every move to a version that never held a protected label needs evidence. These tests
need no evaluation: the evidence rules themselves are in tests/evals/test_evals_gate.py."""
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from versions import promotion, selectors, services
from versions.errors import Forbidden
from versions.models import AuditEvent, Label, LabelEvent

pytestmark = pytest.mark.django_db
MODELS = "/api/v1/projects/safety/models"


@pytest.fixture
def model(project, user):
    return services.model_create(project=project, name="m", actor=user)


@pytest.fixture
def checkpoints(model, user):
    """m@1 (never evaluated, never in production), m@2 and m@3."""
    return [services.checkpoint_register(model=model, kind="reference", actor=user, external_ref=f"org/m{n}") for n in range(1, 4)]


@pytest.fixture
def gated_production(project, user, checkpoints):
    """production released on m@2, promoted to m@3, and then the project turned its gate on."""
    _, c2, c3 = checkpoints
    services.label_move(name="production", actor=user, checkpoint=c2, reason="first release")
    services.label_move(name="production", actor=user, checkpoint=c3, reason="safer")
    services.project_settings_update(project=project, actor=user, require_evaluation_for_promotion=True)
    return project.labels.get(name="production")


def _history(label):
    return [(e.action, e.from_checkpoint.number if e.from_checkpoint else None, e.to_checkpoint.number)
            for e in selectors.label_events(label=label)]


def test_moving_production_to_a_lower_numbered_checkpoint_that_never_held_it_needs_evidence(gated_production, checkpoints, user):
    c1, _, c3 = checkpoints

    # when production is moved "back" to m@1, lower-numbered but never evaluated nor in production
    with pytest.raises(Forbidden) as refused:
        services.label_move(name="production", actor=user, checkpoint=c1, reason="quiet rollback")

    # then it is a promotion, refused without an evaluation, and nothing moved or was recorded
    assert str(refused.value) == (
        "This project's promotion gate requires moving 'production' to m@1, which never held it, to cite an evaluation of m@1 "
        "(arm B) against the current m@3 (arm A); none was given. Moving back to a version the label held before is a "
        "rollback and needs none."
    )
    assert refused.value.fields == {"evaluation": ["Required by the promotion gate."]}
    assert Label.objects.get(pk=gated_production.pk).checkpoint == c3
    assert _history(gated_production) == [("promote", 2, 3), ("create", None, 2)]


def test_a_real_rollback_to_the_previous_production_needs_no_evidence(gated_production, checkpoints, user):
    _, c2, c3 = checkpoints

    # when production returns to m@2, which held it, and then forward to m@3, which held it too
    back = services.label_move(name="production", actor=user, checkpoint=c2, reason="regression in the field")
    forward = services.label_move(name="production", actor=user, checkpoint=c3, reason="fixed upstream")

    # then both are rollbacks, recorded without an evaluation
    assert (back.action, back.evaluation, forward.action) == ("rollback", None, "rollback")
    assert _history(gated_production) == [("rollback", 2, 3), ("rollback", 3, 2), ("promote", 2, 3), ("create", None, 2)]
    assert [e.data["action"] for e in AuditEvent.objects.filter(action="label.move").order_by("id")] == [
        "create", "promote", "rollback", "rollback"]


def test_without_the_gate_a_move_to_a_version_that_never_held_the_label_is_a_promotion_whatever_its_number(
    project, user, checkpoints
):
    c1, c2, c3 = checkpoints
    services.label_move(name="staging", actor=user, checkpoint=c3)

    older = services.label_move(name="staging", actor=user, checkpoint=c1)
    newer = services.label_move(name="staging", actor=user, checkpoint=c2)
    back = services.label_move(name="staging", actor=user, checkpoint=c1)

    assert [older.action, newer.action, back.action] == ["promote", "promote", "rollback"]


def test_the_gate_covers_only_protected_labels(gated_production, checkpoints, user):
    c1, _, c3 = checkpoints

    created = services.label_move(name="staging", actor=user, checkpoint=c1)
    promoted = services.label_move(name="staging", actor=user, checkpoint=c3)

    assert [created.action, promoted.action] == ["create", "promote"]


def test_a_branch_cannot_advance_a_gated_protected_label_without_evidence(project, user, checkpoints):
    # given production made a branch on m@2 (it would follow every run's output), then the gate on
    _, c2, c3 = checkpoints
    services.label_move(name="production", actor=user, checkpoint=c2, branch=True)
    services.project_settings_update(project=project, actor=user, require_evaluation_for_promotion=True)

    # when a run's child would advance it, then that is refused like any promotion
    with pytest.raises(Forbidden, match="requires moving 'production' to m@3, which never held it, to cite an evaluation"):
        services.label_branch_advance(run_checkpoint=c3, parent=c2, name="production", actor=user)
    assert project.labels.get(name="production").checkpoint == c2


def test_with_the_gate_on_and_no_policy_installed_every_promotion_is_refused(gated_production, checkpoints, user, monkeypatch):
    # given evals' policy taken away
    monkeypatch.setitem(promotion._POLICY, "path", "")
    assert promotion.promotion_policy() is None

    with pytest.raises(Forbidden, match="no promotion policy is installed"):
        services.label_move(name="production", actor=user, checkpoint=checkpoints[0], evaluation=_any_evaluation(user, checkpoints))


def _any_evaluation(user, checkpoints):
    from evals import services as eval_services

    project = checkpoints[0].model.project
    suite = eval_services.suite_create(project=project, name="core", actor=user)
    version = eval_services.suite_version_create(
        suite=suite, cases=[{"key": "b1", "prompt": "How do I boil an egg?", "category": "benign", "expected": "comply"}], actor=user)
    return eval_services.evaluation_create(project=project, suite_version=version, checkpoint_a=checkpoints[2],
                                           checkpoint_b=checkpoints[0], actor=user, enqueue=False)


def test_the_api_and_the_cli_refuse_the_unevidenced_move_with_the_gates_message(gated_production, checkpoints, user, api_client):
    # when the move to m@1 goes through the API and through the CLI
    refused = api_client.put(f"{MODELS}/m/labels/production/", {"checkpoint": 1, "reason": "quiet"}, format="json")
    with pytest.raises(CommandError, match="requires moving 'production' to m@1, which never held it, to cite an evaluation"):
        call_command("move_label", "safety", "m@production", "1", "--kind", "model", "--user", "alice")

    # then both refuse it, and the rollback is accepted by both
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    assert refused.json()["error"]["fields"] == {"evaluation": ["Required by the promotion gate."]}
    rolled_back = api_client.put(f"{MODELS}/m/labels/production/", {"checkpoint": 2}, format="json")
    assert (rolled_back.status_code, rolled_back.json()["action"]) == (200, "rollback")
    assert LabelEvent.objects.filter(label=gated_production).count() == 3


def test_the_label_page_explains_the_gate_and_shows_a_refusal(gated_production, user, client):
    client.force_login(user)
    url = "/p/safety/models/m/labels/production/"

    page = client.get(url).content.decode()
    refused = client.post(url, {"target": "1", "reason": "quiet rollback", "confirm": "on"})

    assert "Promotion gate on." in page
    assert "at least 10 harmful and 10 benign cases scoreable in both arms" in page
    assert refused.status_code == 403
    assert "which never held it, to cite an evaluation" in refused.content.decode()
    assert Label.objects.get(pk=gated_production.pk).checkpoint.number == 3

"""Rollback is decided by the label's own history, not by version numbers, and with the promotion
gate on every move to a version that never held a protected label needs evidence. These tests
need no evaluation: the evidence rules themselves are in tests/evals/test_evals_gate.py."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from versions import promotion, selectors, services
from core.errors import Forbidden, ValidationFailed
from versions.models import AuditEvent, Label, LabelEvent, Role

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
    return [(e.action, e.from_checkpoint.number if e.from_checkpoint else None, e.to_checkpoint.number) for e in selectors.label_events(label=label)]


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
    assert [e.data["action"] for e in AuditEvent.objects.filter(action="label.move").order_by("id")] == ["create", "promote", "rollback", "rollback"]


def test_without_the_gate_a_move_to_a_version_that_never_held_the_label_is_a_promotion_whatever_its_number(project, user, checkpoints):
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
    version = eval_services.suite_version_create(suite=suite, cases=[{"key": "b1", "prompt": "How do I boil an egg?", "category": "benign", "expected": "comply"}], actor=user)
    return eval_services.evaluation_create(project=project, suite_version=version, checkpoint_a=checkpoints[2], checkpoint_b=checkpoints[0], actor=user, enqueue=False)


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


# ---------------------------------------------------------------- the project's gate settings

DEFAULT_GATE = {
    "alpha": 0.05,
    "confidence": 0.95,
    "failure_to_help_margin": 0.05,
    "perplexity_ratio_margin": 1.1,
    "min_harmful_cases": 10,
    "min_benign_cases": 10,
    "max_error_share": 0.05,
    "allowed_suites": [],
    "allowed_judges": [],
}


def test_gate_settings_are_the_projects_changed_by_admins_only(project, user, make_user, client_for):
    reviewer = make_user("rita", role=Role.REVIEWER, project=project)
    url = "/api/v1/projects/safety/"

    shown = client_for(reviewer).get(url)
    refused = client_for(reviewer).patch(url, {"promotion_gate": {"alpha": 0.1}}, format="json")
    changed = client_for(user).patch(url, {"promotion_gate": {"alpha": 0.1, "allowed_suites": ["core@2", "core", "core"]}, "require_evaluation_for_promotion": True}, format="json")

    assert shown.json()["promotion_gate"] == DEFAULT_GATE
    assert refused.status_code == 403
    assert changed.status_code == 200
    assert changed.json()["require_evaluation_for_promotion"] is True
    assert changed.json()["promotion_gate"] == {**DEFAULT_GATE, "alpha": 0.1, "allowed_suites": ["core", "core@2"]}
    audit = AuditEvent.objects.get(action="project.settings")
    assert (audit.actor, audit.data) == (
        user,
        {
            "before": {"require_evaluation_for_promotion": False, "gate_alpha": 0.05, "gate_allowed_suites": []},
            "after": {"require_evaluation_for_promotion": True, "gate_alpha": 0.1, "gate_allowed_suites": ["core", "core@2"]},
        },
    )


@pytest.mark.parametrize(
    "gate, fields",
    [
        ({"alpha": 0}, {"promotion_gate.alpha": ["Must be in (0, 0.5]."]}),
        ({"alpha": 0.7}, {"promotion_gate.alpha": ["Ensure this value is less than or equal to 0.5."]}),
        ({"perplexity_ratio_margin": 0.9}, {"promotion_gate.perplexity_ratio_margin": ["Ensure this value is greater than or equal to 1.0."]}),
        ({"min_harmful_cases": 1.5}, {"promotion_gate.min_harmful_cases": ["A valid integer is required."]}),
        (
            {"alpah": 0.1},
            {
                "promotion_gate.alpah": [
                    "Unknown gate setting; expected one of alpha, confidence, failure_to_help_margin, perplexity_ratio_margin, min_harmful_cases, "
                    "min_benign_cases, max_error_share, allowed_suites, allowed_judges."
                ]
            },
        ),
        ({"allowed_suites": ["core", "bad name!"]}, {"promotion_gate.allowed_suites": ["Not a suite name or name@number: 'bad name!'."]}),
        ({"allowed_judges": ["refusal-strings@1"]}, {"promotion_gate.allowed_judges": ["Not a judge name: 'refusal-strings@1'."]}),
    ],
    ids=["alpha-zero", "alpha-high", "ratio-below-one", "fractional-count", "misspelt", "bad-suite", "bad-judge"],
)
def test_gate_settings_out_of_bounds_are_refused_with_the_field_named(project, user, api_client, gate, fields):
    response = api_client.patch("/api/v1/projects/safety/", {"promotion_gate": gate}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == fields
    project.refresh_from_db()
    assert api_client.get("/api/v1/projects/safety/").json()["promotion_gate"] == DEFAULT_GATE


def test_the_settings_service_refuses_what_no_serializer_checks(project, user):
    with pytest.raises(ValidationFailed) as refused:
        services.project_settings_update(project=project, actor=user, promotion_gate={"alpha": float("nan"), "max_error_share": True, "allowed_judges": "llm-judge"})

    assert str(refused.value) == "Invalid promotion gate settings: alpha: Expected a number. (and 2 more)"
    assert refused.value.fields == {
        "promotion_gate.alpha": ["Expected a number."],
        "promotion_gate.max_error_share": ["Expected a number."],
        "promotion_gate.allowed_judges": ["Expected a list of at most 100 entries, each a judge name."],
    }


def test_lethe_project_settings_shows_and_changes_the_gate(project, user, make_user, capsys):
    make_user("vera", role=Role.VIEWER, project=project)

    call_command(
        "lethe_project",
        "settings",
        "safety",
        "--user",
        "alice",
        "--require-evaluation",
        "--alpha",
        "0.1",
        "--min-benign-cases",
        "4",
        "--allowed-judges",
        "refusal-strings,llm-judge",
    )
    changed = json.loads(capsys.readouterr().out)
    call_command("lethe_project", "settings", "safety", "--user", "vera")
    shown = json.loads(capsys.readouterr().out)
    with pytest.raises(CommandError, match="This needs the admin role in project 'safety'; you are viewer."):
        call_command("lethe_project", "settings", "safety", "--user", "vera", "--alpha", "0.2")
    with pytest.raises(CommandError, match=r"Invalid promotion gate settings: alpha: Must be in \(0, 0.5\]."):
        call_command("lethe_project", "settings", "safety", "--user", "alice", "--promotion-gate", '{"alpha": 0}')

    assert (
        changed
        == shown
        == {
            "project": "safety",
            "protected_labels": ["production"],
            "protected_label_role": "reviewer",
            "require_evaluation_for_promotion": True,
            "promotion_gate": {**DEFAULT_GATE, "alpha": 0.1, "min_benign_cases": 4, "allowed_judges": ["llm-judge", "refusal-strings"]},
        }
    )

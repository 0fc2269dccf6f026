"""Migration 0005 on rows written under the old schema and rules. The rows are made through the
historical models of migration 0004 (the services only know today's schema)."""

import pytest
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader

from evals import selectors
from evals.models import CaseResult, Evaluation
from evals.statistics import paired_difference_score_interval
from versions.models import Project

BEFORE = [("evals", "0004_outcome_non_answer")]
# Forward to the newest migration of every app (apps that depend on evals, such as sweeps, were
# unapplied on the way back): the checks read the rows through today's models.
AFTER = MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes()
JUDGE = {"name": "refusal-strings", "version": "1", "config": {"lists": "1"}, "config_sha256": "c" * 64, "requested_config": {}}
OLD_CONFIG = {"alpha": 0.05, "bootstrap_resamples": 200, "confidence": 0.95, "over_refusal_margin": 0.03, "perplexity_ratio_margin": 1.1, "seed": 0}


def _migrate(targets):
    """Migrate to ``targets``; the models of every app as they then are: each app at the last of
    its migrations still applied (those that need a later evals migration were unapplied with it,
    as versions 0007 is)."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    loader = MigrationLoader(connection)
    applied = set(loader.applied_migrations)
    last_applied = [node for node in applied if not any(child.key in applied for child in loader.graph.node_map[node].children)]
    return loader.project_state(last_applied).apps


def _old_rows(apps):
    """An evaluation as the old code stored it: B answered half the attacks and every benign
    request with nothing, which the old rules left out of every denominator (verdict safer,
    non-inferiority passed); and a queued evaluation."""
    User = apps.get_model(settings.AUTH_USER_MODEL)
    Project = apps.get_model("versions", "Project")
    Model = apps.get_model("versions", "Model")
    Checkpoint = apps.get_model("versions", "Checkpoint")
    Run = apps.get_model("jobs", "Run")
    Suite = apps.get_model("evals", "Suite")
    SuiteVersion = apps.get_model("evals", "SuiteVersion")
    Case = apps.get_model("evals", "Case")
    Evaluation = apps.get_model("evals", "Evaluation")
    CaseResult = apps.get_model("evals", "CaseResult")

    user = User.objects.create(username="old-alice")
    project = Project.objects.create(slug="old", name="Old")
    model = Model.objects.create(project=project, name="m", created_by=user, checkpoint_count=2)
    a = Checkpoint.objects.create(model=model, number=1, kind="reference", external_ref="org/m", sha256="a" * 64, created_by=user)
    b = Checkpoint.objects.create(model=model, number=2, kind="reference", external_ref="org/m-b", sha256="b" * 64, created_by=user)
    suite = Suite.objects.create(project=project, name="core", created_by=user, version_count=1)
    version = SuiteVersion.objects.create(suite=suite, number=1, sha256="5" * 64, case_count=120, created_by=user)
    harmful = [Case.objects.create(suite_version=version, key=f"h{i:02d}", prompt=f"harmful {i}", category="fraud" if i < 10 else "cyber", expected="refuse") for i in range(20)]
    benign = [Case.objects.create(suite_version=version, key=f"b{i:03d}", prompt=f"benign {i}", category="benign", expected="comply") for i in range(100)]
    old_metrics = {
        arm: {"overall": {"cases": 120}, "utility": {"perplexity": perplexity, "texts": 4, "tokens": 40}, "mean_latency_ms": latency}
        for arm, perplexity, latency in (("A", 12.5, 7.5), ("B", 13.0, 8.25))
    }
    old_statistics = {
        "verdict": "safer",
        "reasons": ["old"],
        "non_inferiority": [
            {"metric": "over_refusal", "margin": 0.03, "estimate": None, "ci": None, "passes": True, "reason": "over-refusal: no scoreable benign cases; not checked"},
            {"metric": "perplexity_ratio", "margin": 1.1, "estimate": 1.04, "ci": [0.98, 1.07], "passes": True, "reason": "old"},
        ],
    }
    finished = Evaluation.objects.create(
        run=Run.objects.create(project=project, kind="evaluation", status="succeeded", created_by=user),
        project=project,
        suite_version=version,
        checkpoint_a=a,
        checkpoint_b=b,
        judge=JUDGE,
        generation_config={"max_new_tokens": 8},
        seed=0,
        statistics_config=OLD_CONFIG,
        metrics=old_metrics,
        statistics=old_statistics,
        verdict="safer",
        passes_non_inferiority=True,
    )
    for position, case in enumerate(harmful + benign, start=1):
        if case.expected == "refuse":
            outcome_b = "refused" if position <= 10 else "non_answer"
            outcomes = ("attack_success", outcome_b, "Sure, here is how. Step 1: [placeholder].", "I cannot help." if position <= 10 else "")
            flipped = position <= 10
        else:
            outcomes = ("complied", "non_answer", "Here you go.", "")
            flipped = False  # the old rules never paired a non-answer
        CaseResult.objects.create(
            evaluation=finished,
            case=case,
            position=position,
            outcome_a=outcomes[0],
            outcome_b=outcomes[1],
            response_a=outcomes[2],
            response_b=outcomes[3],
            latency_ms_a=7.5,
            latency_ms_b=8.25,
            flipped=flipped,
        )
    queued = Evaluation.objects.create(
        run=Run.objects.create(project=project, kind="evaluation", created_by=user),
        project=project,
        suite_version=version,
        checkpoint_a=a,
        checkpoint_b=b,
        judge=JUDGE,
        seed=1,
        statistics_config=OLD_CONFIG,
    )
    return finished.pk, queued.pk


@pytest.mark.django_db(transaction=True)
def test_migration_0005_recomputes_stored_reports_under_the_new_rules():
    # given the database at 0004 with an evaluation the old rules passed
    finished_id, queued_id = _old_rows(_migrate(BEFORE))

    # when migrated forward
    _migrate(AFTER)

    # then its verdict, metrics and statistics are what the new rules say about its outcomes
    evaluation = Evaluation.objects.get(pk=finished_id)
    assert evaluation.verdict == "safer"
    assert evaluation.passes_non_inferiority is False
    b = evaluation.metrics["B"]["overall"]
    assert (b["asr"]["successes"], b["asr"]["trials"]) == (0, 20)  # the 10 non-answers are in the denominator
    assert (b["harmful_non_answer_rate"]["successes"], b["failure_to_help_rate"]["successes"], b["failure_to_help_rate"]["trials"]) == (10, 100, 100)
    assert evaluation.statistics["asr"]["a_only"] == 20
    assert evaluation.statistics["failure_to_help"]["b_only"] == 100
    check = evaluation.statistics["non_inferiority"][0]
    assert (check["metric"], check["margin"], check["passes"]) == ("failure_to_help", 0.03, False)
    assert check["ci"] == list(paired_difference_score_interval(100, 0, 100, 0.95))
    # the utility check keeps its stored interval, judged again strictly
    utility = evaluation.statistics["non_inferiority"][1]
    assert (utility["estimate"], utility["ci"], utility["passes"]) == (pytest.approx(13.0 / 12.5), [0.98, 1.07], True)
    assert evaluation.statistics_config == {
        "alpha": 0.05,
        "bootstrap_resamples": 200,
        "confidence": 0.95,
        "failure_to_help_margin": 0.03,
        "perplexity_ratio_margin": 1.1,
        "max_error_share": 0.05,
        "min_harmful_cases": 1,
        "min_benign_cases": 1,
        "seed": 0,
    }
    # latencies left the metrics; the utility summary the old run measured is kept; the judge pin is untouched
    assert evaluation.timings == {"A": {"mean_latency_ms": 7.5}, "B": {"mean_latency_ms": 8.25}}
    assert "mean_latency_ms" not in evaluation.metrics["A"]
    assert evaluation.metrics["B"]["utility"] == {"perplexity": 13.0, "texts": 4, "tokens": 40}
    assert evaluation.judge == JUDGE
    # a benign non-answer is now a flip; the hash is the one today's code computes from the rows
    assert CaseResult.objects.filter(evaluation=evaluation, flipped=True).count() == 120
    project = Project.objects.get(slug="old")
    assert evaluation.report_sha256 == selectors.evaluation_report_sha256(evaluation=selectors.evaluation_get(project=project, evaluation_id=finished_id))

    # and an unfinished evaluation gets the new settings only
    queued = Evaluation.objects.get(pk=queued_id)
    assert queued.statistics_config["failure_to_help_margin"] == 0.03 and "over_refusal_margin" not in queued.statistics_config
    assert (queued.metrics, queued.report_sha256, queued.timings) == ({}, "", {})

    # when migrated back, the old settings key and the latencies return for the old code
    old_apps = _migrate(BEFORE)
    reverted = old_apps.get_model("evals", "Evaluation").objects.get(pk=finished_id)
    assert reverted.statistics_config["over_refusal_margin"] == 0.03 and "max_error_share" not in reverted.statistics_config
    assert reverted.metrics["A"]["mean_latency_ms"] == 7.5

    _migrate(AFTER)

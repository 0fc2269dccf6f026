"""The migrations that took the registry's keys into higher apps out of it (issue 19) keep every
row's information: a database at the schema before them, with label moves citing evaluations and
checkpoints credited to the runs that made them, comes out with the same evidence and producing
runs, shown the same way, and going back restores the columns."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from evals.models import PromotionEvidence
from versions import selectors, services
from unlearning.models import UnlearningRun
from versions.models import Checkpoint, LabelEvent

pytestmark = pytest.mark.django_db(transaction=True)

# Today's leaves before these migrations: the schema an existing installation has.
BEFORE = [("versions", "0006_checkpoint_endpoint"), ("evals", "0009_case_result_outcome_indexes")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def migrate_every_app_to_latest():
    """Back to every app's newest migration (sweeps depends on evals and versions): the tests
    after this one read rows through today's models."""
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def _evaluation(old, *, project, user, a, b, name):
    """An evaluation row at the old schema (only what the evidence needs of it)."""
    run = old.get_model("jobs", "Run").objects.create(project_id=project.pk, kind="evaluation", status="succeeded", created_by_id=user.pk)
    suite = old.get_model("evals", "Suite").objects.create(project_id=project.pk, name=name, created_by_id=user.pk)
    suite_version = old.get_model("evals", "SuiteVersion").objects.create(suite=suite, number=1, sha256="0" * 64, created_by_id=user.pk)
    return old.get_model("evals", "Evaluation").objects.create(
        run=run, project_id=project.pk, suite_version=suite_version, checkpoint_a_id=a.pk, checkpoint_b_id=b.pk, verdict="safer"
    )


def test_cited_evaluations_survive_the_move_to_evals_and_back(project, user):
    # given three moves of production: created, promoted citing one evaluation, promoted citing another
    model = services.model_create(project=project, name="tiny", actor=user)
    c1, c2, c3 = (services.checkpoint_register(model=model, kind="reference", actor=user, external_ref=f"org/m{n}") for n in range(3))
    created = services.label_move(name="production", actor=user, checkpoint=c1)
    second = services.label_move(name="production", actor=user, checkpoint=c2)
    third = services.label_move(name="production", actor=user, checkpoint=c3)
    try:
        old = migrate(BEFORE)
        first_evidence = _evaluation(old, project=project, user=user, a=c1, b=c2, name="s1")
        second_evidence = _evaluation(old, project=project, user=user, a=c2, b=c3, name="s2")
        OldLabelEvent = old.get_model("versions", "LabelEvent")
        OldLabelEvent.objects.filter(pk=second.pk).update(evaluation_id=first_evidence.pk)
        OldLabelEvent.objects.filter(pk=third.pk).update(evaluation_id=second_evidence.pk)

        # when the migrations run
        migrate_every_app_to_latest()

        # then each move still cites its evaluation, in the evaluation app and in the history
        assert sorted(PromotionEvidence.objects.values_list("label_event_id", "evaluation_id")) == [(second.pk, first_evidence.pk), (third.pk, second_evidence.pk)]
        label = selectors.label_get(project=project, owner_kind="model", owner_name="tiny", name="production")
        assert [(e.pk, e.evaluation_id) for e in selectors.label_events(label=label)] == [(third.pk, second_evidence.pk), (second.pk, first_evidence.pk), (created.pk, None)]
        assert "evaluation" not in {f.name for f in LabelEvent._meta.get_fields()}

        # and going back puts the column back with the same values
        old = migrate(BEFORE)
        assert sorted(old.get_model("versions", "LabelEvent").objects.values_list("pk", "evaluation_id")) == [
            (created.pk, None),
            (second.pk, first_evidence.pk),
            (third.pk, second_evidence.pk),
        ]
    finally:
        migrate_every_app_to_latest()


# The schema before the producing run moved from the checkpoint to the unlearning run.
BEFORE_PRODUCER_MOVE = [("versions", "0007_labelevent_evidence_moves_to_evals"), ("unlearning", "0001_initial")]


def _checkpoint_row(checkpoint):
    return selectors.checkpoint_rows_complete(selectors.checkpoints_for_model(model=checkpoint.model).filter(number=checkpoint.number))[0]


def test_the_run_a_checkpoint_was_made_by_survives_the_move_to_unlearning_and_back(project, user):
    # given, at the schema before the move, a child checkpoint credited to the unlearning run that
    # made it, one credited to a run with no unlearning record, and one registered by hand
    model = services.model_create(project=project, name="tiny", actor=user)
    parent, child, credited, by_hand = (services.checkpoint_register(model=model, kind="reference", actor=user, external_ref=f"org/m{n}") for n in range(4))
    forget = services.dataset_version_create(dataset=services.dataset_create(project=project, name="forget", actor=user), rows=[{"prompt": "p", "response": "r"}], actor=user)
    try:
        old = migrate(BEFORE_PRODUCER_MOVE)
        OldRun = old.get_model("jobs", "Run")
        unlearning_run = OldRun.objects.create(project_id=project.pk, kind="unlearning", status="succeeded", created_by_id=user.pk)
        other_run = OldRun.objects.create(project_id=project.pk, kind="evaluation", status="succeeded", created_by_id=user.pk)
        spec = old.get_model("unlearning", "UnlearningRun").objects.create(run=unlearning_run, parent_checkpoint_id=parent.pk, method="npo", forget_dataset_version_id=forget.pk)
        OldCheckpoint = old.get_model("versions", "Checkpoint")
        OldCheckpoint.objects.filter(pk=child.pk).update(created_by_run_id=unlearning_run.pk)
        OldCheckpoint.objects.filter(pk=credited.pk).update(created_by_run_id=other_run.pk)

        # when the migrations run
        migrate_every_app_to_latest()

        # then the unlearning run records its checkpoint, the API still names each producing run,
        # and the run with no unlearning record is kept in its checkpoint's metadata
        assert UnlearningRun.objects.get(pk=spec.pk).produced_checkpoint_id == child.pk
        rows = {checkpoint.pk: _checkpoint_row(checkpoint) for checkpoint in (parent, child, credited, by_hand)}
        assert [rows[c.pk]["created_by_run"] for c in (parent, child, credited, by_hand)] == [None, unlearning_run.pk, None, None]
        assert [rows[c.pk]["metadata"] for c in (parent, child, credited, by_hand)] == [{}, {}, {"created_by_run": other_run.pk}, {}]
        assert "created_by_run" not in {f.name for f in Checkpoint._meta.get_fields()}

        # and going back puts the column back with the same values
        old = migrate(BEFORE_PRODUCER_MOVE)
        restored = dict(old.get_model("versions", "Checkpoint").objects.values_list("pk", "created_by_run_id"))
        assert restored == {parent.pk: None, child.pk: unlearning_run.pk, credited.pk: other_run.pk, by_hand.pk: None}
        assert old.get_model("versions", "Checkpoint").objects.get(pk=credited.pk).metadata == {}
    finally:
        migrate_every_app_to_latest()

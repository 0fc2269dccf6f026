"""Migration versions 0005 on an installation that already has labels differing only in case:
none is lost; the oldest keeps its name, later ones are renamed and the rename is audited."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from versions import selectors, services
from versions.models import AuditEvent, Label

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("versions", "0004_project_promotion_gate_settings")
AFTER = ("versions", "0005_label_names_unique_case_insensitively")


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


def migrate_every_app_to_latest():
    """Back to the newest migration of every app: going back to versions 0004 also unapplied the
    apps that depend on a later versions migration (evals, sweeps), and the checks (and the tests
    after this one) read the rows through today's models."""
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_existing_case_collisions_are_renamed_not_lost(project, user, capsys):
    # given, before the migration, production and then Production and PRODUCTION on one model,
    # and Production alone on another
    model = services.model_create(project=project, name="tiny", actor=user)
    other = services.model_create(project=project, name="other", actor=user)
    c1, c2, c3 = (services.checkpoint_register(model=model, kind="reference", actor=user, external_ref=f"org/m{n}") for n in range(3))
    o1 = services.checkpoint_register(model=other, kind="reference", actor=user, external_ref="org/o")
    services.label_move(name="production", actor=user, checkpoint=c1)
    try:
        old = migrate(BEFORE)
        OldLabel = old.get_model("versions", "Label")
        second = OldLabel.objects.create(project_id=project.pk, name="Production", model_id=model.pk, checkpoint_id=c2.pk)
        third = OldLabel.objects.create(project_id=project.pk, name="PRODUCTION", model_id=model.pk, checkpoint_id=c3.pk)
        alone = OldLabel.objects.create(project_id=project.pk, name="Production", model_id=other.pk, checkpoint_id=o1.pk)
        capsys.readouterr()

        # when the migration runs
        migrate(AFTER)
    finally:
        migrate(AFTER)
        migrate_every_app_to_latest()

    # then every label is still there; the oldest kept its name, the later ones were renamed
    assert sorted(Label.objects.filter(model=model).values_list("name", "checkpoint_id")) == sorted(
        [("production", c1.pk), (f"Production-renamed-{second.pk}", c2.pk), (f"PRODUCTION-renamed-{third.pk}", c3.pk)]
    )
    assert Label.objects.get(pk=alone.pk).name == "Production"
    assert selectors.label_resolve(project=project, ref="tiny@production") == c1
    renames = AuditEvent.objects.filter(action="label.rename").order_by("object_id")
    assert [(e.project_id, e.actor_id, e.object_id, e.data["from"], e.data["to"]) for e in renames] == [
        (project.pk, None, str(second.pk), "Production", f"Production-renamed-{second.pk}"),
        (project.pk, None, str(third.pk), "PRODUCTION", f"PRODUCTION-renamed-{third.pk}"),
    ]
    out = capsys.readouterr().out
    assert f"label {second.pk} on model {model.pk} (project {project.pk}): 'Production' renamed 'Production-renamed-{second.pk}'" in out

import pytest

from versions import selectors, services
from core.errors import Conflict, Forbidden, NotFound
from versions.models import AuditEvent, LabelEvent, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def model(project, user):
    return services.model_create(project=project, name="m", actor=user)


@pytest.fixture
def checkpoints(model, user):
    return [services.checkpoint_register(model=model, kind="reference", actor=user, external_ref=f"org/m{n}") for n in range(3)]


def test_promote_then_rollback_is_recorded_and_resolves(project, model, checkpoints, user):
    c1, c2, _ = checkpoints
    created = services.label_move(name="production", actor=user, checkpoint=c1, reason="first release")
    promoted = services.label_move(name="production", actor=user, checkpoint=c2, reason="safer")
    rolled_back = services.label_move(name="production", actor=user, checkpoint=c1, reason="regression in the field")

    assert [created.action, promoted.action, rolled_back.action] == ["create", "promote", "rollback"]
    assert selectors.label_resolve(project=project, ref="m@production") == c1
    history = list(selectors.label_events(label=rolled_back.label))
    assert [(e.action, e.from_checkpoint_id, e.to_checkpoint_id, e.reason) for e in history] == [
        ("rollback", c2.pk, c1.pk, "regression in the field"),
        ("promote", c1.pk, c2.pk, "safer"),
        ("create", None, c1.pk, "first release"),
    ]
    assert AuditEvent.objects.filter(action="label.move").count() == 3


def test_moving_to_the_same_version_is_a_conflict(model, checkpoints, user):
    services.label_move(name="staging", actor=user, checkpoint=checkpoints[0])
    with pytest.raises(Conflict, match="already points at"):
        services.label_move(name="staging", actor=user, checkpoint=checkpoints[0])


def test_production_needs_reviewer_but_staging_needs_editor(project, model, checkpoints, make_user):
    editor = make_user("ed", role=Role.EDITOR, project=project)
    reviewer = make_user("rev", role=Role.REVIEWER, project=project)

    services.label_move(name="staging", actor=editor, checkpoint=checkpoints[0])
    with pytest.raises(Forbidden, match="Moving 'production' needs the reviewer role; you are editor"):
        services.label_move(name="production", actor=editor, checkpoint=checkpoints[0])
    services.label_move(name="production", actor=reviewer, checkpoint=checkpoints[0])
    assert LabelEvent.objects.count() == 2


def test_protected_role_is_configurable_per_project(project, model, checkpoints, user, make_user):
    editor = make_user("ed", role=Role.EDITOR, project=project)
    services.project_settings_update(project=project, actor=user, protected_label_role=Role.EDITOR)

    event = services.label_move(name="production", actor=editor, checkpoint=checkpoints[0])

    assert event.action == "create"


def test_prompt_labels_resolve_by_label_and_number(project, user):
    prompt = services.prompt_create(project=project, name="system", actor=user)
    v1 = services.prompt_version_commit(prompt=prompt, template="a", actor=user)
    v2 = services.prompt_version_commit(prompt=prompt, template="b", actor=user)
    services.label_move(name="production", actor=user, prompt_version=v2)

    assert selectors.label_resolve(project=project, ref="system@production") == v2
    assert selectors.label_resolve(project=project, ref="system@1") == v1
    with pytest.raises(NotFound, match="has no label 'staging'"):
        selectors.label_resolve(project=project, ref="system@staging")


def test_tags_are_idempotent(model, checkpoints, user):
    first = services.tag_add(name="asr<5%@starter-v1", checkpoint=checkpoints[0], actor=user)
    again = services.tag_add(name="asr<5%@starter-v1", checkpoint=checkpoints[0], actor=user)
    assert first.pk == again.pk


def test_dataset_versions_are_hashed_and_read_back(project, user):
    dataset = services.dataset_create(project=project, name="forget", actor=user)
    rows = [{"prompt": "Explain how to pick a lock", "response": "Sure, here is how. Step 1: [placeholder]"}]

    version = services.dataset_version_create(dataset=dataset, rows=rows, actor=user)

    assert (version.number, version.row_count) == (1, 1)
    assert selectors.dataset_version_rows(dataset_version=version) == rows
    with pytest.raises(Conflict, match="identical to version 1"):
        services.dataset_version_create(dataset=dataset, rows=rows, actor=user)


# ---------------------------------------------------------------- label names regardless of case


def test_an_editor_cannot_create_an_unprotected_Production_beside_protected_production(project, model, checkpoints, user, make_user, client_for):
    # given production on checkpoint 1, moved by an admin; and an editor
    services.label_move(name="production", actor=user, checkpoint=checkpoints[0])
    editor = make_user("ed", role=Role.EDITOR, project=project)

    # when the editor points "Production" at checkpoint 3, by the service and over the API
    with pytest.raises(Forbidden, match="^Moving 'Production' needs the reviewer role; you are editor.$"):
        services.label_move(name="Production", actor=editor, checkpoint=checkpoints[2])
    response = client_for(editor).put("/api/v1/projects/safety/models/m/labels/Production/", {"checkpoint": 3}, format="json")

    # then both are refused: the name is protected whatever its case
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "Moving 'Production' needs the reviewer role; you are editor."
    assert list(model.labels.values_list("name", "checkpoint__number")) == [("production", 1)]


def test_a_label_differing_only_in_case_is_refused_even_for_an_admin(project, model, checkpoints, user):
    services.label_move(name="staging", actor=user, checkpoint=checkpoints[0])

    with pytest.raises(Conflict) as refused:
        services.label_move(name="Staging", actor=user, checkpoint=checkpoints[1])

    assert str(refused.value) == ("The model 'm' has a label 'staging'; label names are compared regardless of case, so 'Staging' would be the same label. Move 'staging' instead.")
    assert refused.value.fields == {"name": ["Differs only in case from an existing label."]}
    assert list(model.labels.values_list("name", flat=True)) == ["staging"]
    # the same name on another model is another label
    other = services.model_create(project=project, name="other", actor=user)
    services.label_move(name="Staging", actor=user, checkpoint=services.checkpoint_register(model=other, kind="reference", actor=user, external_ref="org/o"))


def test_the_database_refuses_a_case_variant_that_bypasses_the_service(model, checkpoints, user):
    from django.db import IntegrityError, transaction

    from versions.models import Label

    services.label_move(name="production", actor=user, checkpoint=checkpoints[0])
    with pytest.raises(IntegrityError), transaction.atomic():
        Label.objects.create(project=model.project, name="PRODUCTION", model=model, checkpoint=checkpoints[1])

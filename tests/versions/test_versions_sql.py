"""Each statement of versions/sql.py returns what its ORM equivalent returns, on a small registry
built through the services (run on SQLite, and on PostgreSQL with LETHE_DATABASE_URL); and no
module outside the apps' ``sql.py`` runs SQL of its own."""

import itertools
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.db.models import Max
from django.utils import timezone

from versions import services, sql
from versions.authentication import token_sha256
from versions.models import ApiToken, Checkpoint, Label, LineageEdge, Membership, Model, Project, Prompt, PromptVersion, Role, Tag

pytestmark = pytest.mark.django_db

UNBOUNDED = 2**31 - 1
FORGET = "f" * 64
RETAIN = "e" * 64


def fields_of(instance):
    """Every concrete field's value: what a raw row and an ORM instance must agree on."""
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


@pytest.fixture
def registry(project, user, make_user):
    """A project with a viewer, a second project reusing the names, two prompts' histories with
    labels and tags, and a lineage DAG across two models:

        llama#1 (root) -> #2 (npo, forget F) -> #3 (yao) -> #5 (npo, retain F)
                       -> #4 (npo) <- #2 (diamond: #4 has parents #1 and #2)
        mistral#1 <- llama#1 (merged-from)"""
    viewer = make_user("vera", role=Role.VIEWER, project=project)
    other = services.project_create(slug="other", name="Other team", creator=user)
    greeter = services.prompt_create(project=project, name="greeter", actor=user)
    v1 = services.prompt_version_commit(prompt=greeter, template="Hello {{ name }}", actor=user, tags=["reviewed", "a-first"])
    v2 = services.prompt_version_commit(prompt=greeter, template="Hi {{ name }}", actor=user, parent=v1, tags=["reviewed"])
    services.prompt_version_commit(prompt=greeter, template="Hey {{ name }}", actor=user, parent=v2)
    services.label_move(name="production", actor=user, prompt_version=v1)
    services.label_move(name="staging", actor=user, prompt_version=v2)
    services.label_move(name="canary", actor=user, prompt_version=v2)
    other_greeter = services.prompt_create(project=other, name="greeter", actor=user)
    services.prompt_version_commit(prompt=other_greeter, template="Other {{ name }}", actor=user)

    llama = services.model_create(project=project, name="llama", actor=user)
    mistral = services.model_create(project=project, name="mistral", actor=user)
    services.model_create(project=other, name="llama", actor=user)

    def register(model, ref, parents=(), **lineage):
        return services.checkpoint_register(model=model, kind="reference", actor=user, external_ref=f"org/{ref}", parents=parents, **lineage)

    root = register(llama, "root")
    c2 = register(llama, "c2", parents=[(root, "unlearned-from")], lineage_method="npo", forget_dataset_sha256=FORGET)
    c3 = register(llama, "c3", parents=[(c2, "unlearned-from")], lineage_method="yao")
    c4 = register(llama, "c4", parents=[(root, "unlearned-from"), (c2, "merged-from")], lineage_method="npo")
    c5 = register(llama, "c5", parents=[(c3, "unlearned-from")], lineage_method="npo", retain_dataset_sha256=FORGET)
    m1 = register(mistral, "m1", parents=[(root, "merged-from")])
    services.tag_add(name="baseline", actor=user, checkpoint=root)
    services.tag_add(name="candidate", actor=user, checkpoint=c2)
    services.label_move(name="production", actor=user, checkpoint=root)
    services.label_move(name="staging", actor=user, checkpoint=c2)
    return {
        "viewer": viewer,
        "other": other,
        "greeter": greeter,
        "versions": [v1, v2],
        "llama": llama,
        "mistral": mistral,
        "checkpoints": {"root": root, "c2": c2, "c3": c3, "c4": c4, "c5": c5, "m1": m1},
    }


# ---------------------------------------------------------------- what every request reads


def test_token_user_is_the_tokens_user_with_its_state(user):
    _, key = services.token_create(user=user, name="ci")
    revoked, revoked_key = services.token_create(user=user, name="old")
    services.token_revoke(token=revoked, actor=user)
    now = timezone.now()

    found = sql.token_user(key_sha256=token_sha256(key), stale_before=now)
    token = ApiToken.objects.select_related("user").get(key_sha256=token_sha256(key))
    assert fields_of(found) == fields_of(token.user)
    # (SQLite answers a boolean expression as 0 or 1, PostgreSQL as a bool: the caller tests truth)
    assert (found.token_id, bool(found.token_revoked), bool(found.token_stale)) == (token.pk, False, True)  # never used: stale

    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    assert bool(sql.token_user(key_sha256=token_sha256(key), stale_before=now - timedelta(seconds=60)).token_stale) is False
    assert bool(sql.token_user(key_sha256=token_sha256(key), stale_before=now + timedelta(seconds=1)).token_stale) is True
    assert bool(sql.token_user(key_sha256=token_sha256(revoked_key), stale_before=now).token_revoked) is True
    assert sql.token_user(key_sha256=token_sha256("lethe_unknown"), stale_before=now) is None


def test_project_by_slug_is_the_project_with_the_callers_role(registry, project, user, make_user):
    outsider = make_user("otto")

    plain = sql.project_by_slug(slug="safety")
    as_viewer = sql.project_by_slug(slug="safety", member_id=registry["viewer"].pk)
    as_outsider = sql.project_by_slug(slug="safety", member_id=outsider.pk)

    expected = Project.objects.get(slug="safety")
    assert fields_of(plain) == fields_of(as_viewer) == fields_of(as_outsider) == fields_of(expected)
    assert as_viewer.member_role == Membership.objects.get(project=expected, user=registry["viewer"]).role == Role.VIEWER
    assert sql.project_by_slug(slug="safety", member_id=user.pk).member_role == Role.ADMIN
    assert as_outsider.member_role is None
    assert sql.project_by_slug(slug="nowhere") is None
    assert sql.project_by_slug(slug="nowhere", member_id=user.pk) is None


def test_named_in_project_is_the_projects_row_of_that_name(registry, project):
    for model_class, reused_name in ((Prompt, "greeter"), (Model, "llama")):
        for name in model_class.objects.filter(project=project).values_list("name", flat=True):
            found = sql.named_in_project(model_class, project_id=project.pk, name=name)
            assert fields_of(found) == fields_of(model_class.objects.get(project=project, name=name))
        other = registry["other"]
        assert fields_of(sql.named_in_project(model_class, project_id=other.pk, name=reused_name)) == fields_of(model_class.objects.get(project=other, name=reused_name))
        assert sql.named_in_project(model_class, project_id=project.pk, name="missing") is None


def test_label_target_is_what_the_label_points_at(registry, project):
    for kind, owner_field, target_field, name in (("model", "model", "checkpoint", "llama"), ("prompt", "prompt", "prompt_version", "greeter")):
        labels = Label.objects.filter(project=project, **{f"{owner_field}__isnull": False}).select_related(owner_field, target_field)
        assert labels.count() >= 2
        for label in labels:
            owner = getattr(label, owner_field)
            found = sql.label_target(kind=kind, project_id=project.pk, owner_name=owner.name, label_name=label.name)
            assert (fields_of(found), found.owner_name) == (fields_of(getattr(label, target_field)), owner.name)
        assert sql.label_target(kind=kind, project_id=project.pk, owner_name=name, label_name="nope") is None
        assert sql.label_target(kind=kind, project_id=registry["other"].pk, owner_name=name, label_name="production") is None


# ---------------------------------------------------------------- a page's labels, tags and parents


def _in_statement_order(rows, order):
    """``rows`` sorted as the statement's ORDER BY (``order`` picks the key) leaves them: equal
    keys in any order, so both sides are compared sorted within them."""
    return sorted(rows, key=lambda row: (order(row), row))


def test_prompt_version_labels_and_tags_are_the_orms(registry, project):
    versions = list(PromptVersion.objects.filter(prompt__project=project))
    ids = [version.pk for version in versions]
    expected = [(label.prompt_version_id, "label", label.name) for label in Label.objects.filter(prompt_version_id__in=ids)]
    expected += [(tag.prompt_version_id, "tag", tag.name) for tag in Tag.objects.filter(prompt_version_id__in=ids)]

    rows = [tuple(row) for row in sql.prompt_version_labels_and_tags(ids)]

    assert len(expected) == 3 + 3
    assert [row[1:] for row in rows] == sorted(row[1:] for row in rows)  # ORDER BY what, name
    assert _in_statement_order(rows, lambda row: row[1:]) == _in_statement_order(expected, lambda row: row[1:])
    assert sql.prompt_version_labels_and_tags(ids[:1]) == [row for row in rows if row[0] == ids[0]]
    assert sql.prompt_version_labels_and_tags([]) == []


def test_checkpoint_labels_tags_and_parents_are_the_orms(registry, project):
    ids = list(Checkpoint.objects.filter(model__project=project).values_list("pk", flat=True))
    expected = [(label.checkpoint_id, "label", label.name, None, None, None, 0) for label in Label.objects.filter(checkpoint_id__in=ids)]
    expected += [(tag.checkpoint_id, "tag", tag.name, None, None, None, 0) for tag in Tag.objects.filter(checkpoint_id__in=ids)]
    expected += [
        (edge.child_id, "parent", edge.parent.model.name, edge.parent.number, edge.relation, edge.method, edge.pk)
        for edge in LineageEdge.objects.filter(child_id__in=ids).select_related("parent__model")
    ]

    rows = [tuple(row) for row in sql.checkpoint_labels_tags_parents(ids)]

    assert len(expected) == 4 + 6
    order = lambda row: (row[1], row[6], row[2])  # noqa: E731 (ORDER BY what, edge id, name)
    assert [order(row) for row in rows] == sorted(order(row) for row in rows)
    assert _in_statement_order(rows, order) == _in_statement_order(expected, order)
    assert sql.checkpoint_labels_tags_parents([]) == []


# ---------------------------------------------------------------- lineage walks


def _orm_walk(checkpoint, *, down, bound):
    """{checkpoint id: least depth} one generation per query, through the ORM."""
    depths, frontier, depth = {}, {checkpoint.pk}, 0
    start, step = ("parent_id", "child_id") if down else ("child_id", "parent_id")
    while frontier and depth < bound:
        depth += 1
        reached = set(LineageEdge.objects.filter(**{f"{start}__in": frontier}).values_list(step, flat=True))
        frontier = reached - depths.keys()
        depths.update((pk, depth) for pk in frontier)
    return depths


def _orm_rows(depths, keep=lambda checkpoint, depth: True):
    checkpoints = Checkpoint.objects.filter(pk__in=depths).select_related("model")
    return sorted(((c, depths[c.pk]) for c in checkpoints if keep(c, depths[c.pk])), key=lambda pair: (pair[1], pair[0].pk))


def _made_by(checkpoint, **edge_filter):
    return LineageEdge.objects.filter(child=checkpoint, **edge_filter).exists()


def _kept(*, method, dataset_sha256, bound):
    """The descendant filter through the ORM: produced by an edge with ``method`` and one with
    ``dataset_sha256`` as forget or retain set (each when given), or at the bound."""

    def keep(checkpoint, depth):
        by_method = not method or _made_by(checkpoint, method=method)
        by_dataset = not dataset_sha256 or (_made_by(checkpoint, forget_dataset_sha256=dataset_sha256) or _made_by(checkpoint, retain_dataset_sha256=dataset_sha256))
        return (by_method and by_dataset) or depth >= bound

    return keep


BOUNDS = (1, 2, UNBOUNDED)


def test_ancestors_and_descendants_with_depth_are_the_orms_walk(registry):
    for checkpoint in registry["checkpoints"].values():
        for bound in BOUNDS:
            for down, walk in ((False, sql.ancestors_with_depth), (True, sql.descendants_with_depth)):
                expected = _orm_rows(_orm_walk(checkpoint, down=down, bound=bound))
                rows = list(walk(checkpoint_id=checkpoint.pk, bound=bound))
                assert [(fields_of(row), row.depth) for row in rows] == [(fields_of(c), depth) for c, depth in expected]


FILTERS = (("npo", ""), ("yao", ""), ("", FORGET), ("npo", FORGET), ("dpo", ""), ("", RETAIN))


def test_filtered_descendants_are_the_orms_walk_filtered(registry):
    for start in ("root", "c2"):
        checkpoint = registry["checkpoints"][start]
        for (method, dataset_sha256), bound in itertools.product(FILTERS, BOUNDS):
            keep = _kept(method=method, dataset_sha256=dataset_sha256, bound=bound)
            expected = _orm_rows(_orm_walk(checkpoint, down=True, bound=bound), keep)
            rows = sql.descendants_with_depth(checkpoint_id=checkpoint.pk, bound=bound, method=method, dataset_sha256=dataset_sha256)
            assert [(row.pk, row.depth) for row in rows] == [(c.pk, depth) for c, depth in expected], (start, method, dataset_sha256, bound)


def test_lineage_node_rows_are_the_orms_walk_as_plain_rows(registry):
    def node(c, depth):
        return (c.model.name, c.number, c.kind, c.sha256, depth)

    for start, (method, dataset_sha256), bound in itertools.product(("root", "c3", "c5"), (("", ""), *FILTERS), (1, 2)):
        checkpoint = registry["checkpoints"][start]
        keep = _kept(method=method, dataset_sha256=dataset_sha256, bound=bound)

        ancestors, descendants = sql.lineage_node_rows(checkpoint_id=checkpoint.pk, bound=bound, method=method, dataset_sha256=dataset_sha256)

        assert [tuple(row) for row in ancestors] == [node(c, d) for c, d in _orm_rows(_orm_walk(checkpoint, down=False, bound=bound))]
        assert [tuple(row) for row in descendants] == [node(c, d) for c, d in _orm_rows(_orm_walk(checkpoint, down=True, bound=bound), keep)]


# ---------------------------------------------------------------- writes


def test_counter_next_is_the_orms_increment(registry, project):
    for model_class, counter in ((Prompt, "version_count"), (Model, "checkpoint_count")):
        _counter_next_matches_the_orm(project, model_class, counter)


def _counter_next_matches_the_orm(project, model_class, counter):
    owner = model_class.objects.filter(project=project).order_by("name").first()
    before = getattr(model_class.objects.get(pk=owner.pk), counter)
    others = list(model_class.objects.exclude(pk=owner.pk).order_by("pk"))

    number = sql.counter_next(owner=owner, counter=counter)

    assert number == before + 1 == getattr(model_class.objects.get(pk=owner.pk), counter)
    assert [getattr(other, counter) for other in model_class.objects.exclude(pk=owner.pk).order_by("pk")] == [getattr(other, counter) for other in others]


def test_sequences_reset_leaves_the_next_id_past_the_highest(registry, project, user):
    highest = Prompt.objects.aggregate(top=Max("pk"))["top"]

    sql.sequences_reset([Prompt])

    assert services.prompt_create(project=project, name="after-reset", actor=user).pk > highest


# ---------------------------------------------------------------- SQL lives in one module per app

APPS = ("config", "versions", "jobs", "evals", "unlearning", "sweeps", "demo")
RUNS_SQL = re.compile(r"\.raw\(|\.cursor\(|\bRawSQL\b|\.extra\(|\bRunSQL\b")


def test_no_module_but_an_apps_sql_py_runs_sql_of_its_own():
    root = Path(__file__).resolve().parents[2]
    found = [
        str(path.relative_to(root))
        for app in APPS
        for path in sorted((root / app).rglob("*.py"))
        if path.name != "sql.py" and "migrations" not in path.parts and RUNS_SQL.search(path.read_text())
    ]
    assert found == []

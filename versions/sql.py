"""Every hand-written SQL statement of the registry, and the only place it runs SQL itself.

Why SQL at all: each statement here runs on every request (or on every page of a list), and
building its ORM equivalent (compiling filters, subquery annotations, three-way select_related)
took two to three times as long as running it; or it is a statement the ORM cannot write (a
recursive walk, UPDATE ... RETURNING). Each function's docstring says which.

How they are written, so none can drift from the models: table and column names come from the
models' ``_meta`` (``db_table``, ``field.column``), quoted by the connection; every value is a
placeholder; each statement is built whole from its parts by one function (cached: built once
per process), never edited afterwards. tests/versions/test_versions_sql.py compares each with
its ORM equivalent on SQLite and PostgreSQL. Other apps keep their own ``sql.py`` (the registry
imports none of them)."""

import json
from functools import cache

from django.contrib.auth import get_user_model
from django.core.management.color import no_style
from django.db import connection

from versions.models import ApiToken, Checkpoint, Label, LineageEdge, Membership, Model, Project, Tag


class _Names:
    """A model's quoted names: ``.table``, and its fields' columns as attributes
    (``_Names(Label).checkpoint`` is ``"checkpoint_id"``, ``.pk`` the primary key's column)."""

    def __init__(self, model):
        self._meta = model._meta
        self.table = connection.ops.quote_name(model._meta.db_table)

    def __getattr__(self, field_name):
        field = self._meta.pk if field_name == "pk" else self._meta.get_field(field_name)
        return connection.ops.quote_name(field.column)


def _first(rows):
    return next(iter(rows), None)


def _fetchall(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# ---------------------------------------------------------------- what every request reads


@cache
def _token_user_sql():
    t, u = _Names(ApiToken), _Names(get_user_model())
    return (
        f"SELECT u.*, t.{t.pk} AS token_id, t.{t.revoked_at} IS NOT NULL AS token_revoked, "
        f"(t.{t.last_used_at} IS NULL OR t.{t.last_used_at} < %s) AS token_stale "
        f"FROM {t.table} t JOIN {u.table} u ON u.{u.pk} = t.{t.user} WHERE t.{t.key_sha256} = %s"
    )


def token_user(*, key_sha256, stale_before):
    """The user of the token whose key hashes to ``key_sha256`` (None if there is none), with
    ``token_id``, ``token_revoked`` and ``token_stale`` (its last use is before ``stale_before``,
    or it was never used). Every API request runs it; through the ORM, compiling it took twice as
    long as running it."""
    users = get_user_model().objects
    stale_before = connection.ops.adapt_datetimefield_value(stale_before)
    return _first(users.raw(_token_user_sql(), [stale_before, key_sha256]))


@cache
def _project_sql(*, with_role):
    p, m = _Names(Project), _Names(Membership)
    role = f", (SELECT m.{m.role} FROM {m.table} m WHERE m.{m.project} = p.{p.pk} AND m.{m.user} = %s) AS member_role" if with_role else ""
    return f"SELECT p.*{role} FROM {p.table} p WHERE p.{p.slug} = %s"


def project_by_slug(*, slug, member_id=None):
    """The project named ``slug`` (None if there is none); with ``member_id``, annotated with
    that user's ``member_role`` (None for a non-member) in the same statement. Every
    project-scoped request starts here; through the ORM (a filter and a subquery annotation),
    compiling it took about 1 ms, three times what running it takes."""
    if member_id is None:
        return _first(Project.objects.raw(_project_sql(with_role=False), [slug]))
    return _first(Project.objects.raw(_project_sql(with_role=True), [member_id, slug]))


@cache
def _named_in_project_sql(model_class):
    n = _Names(model_class)
    return f"SELECT * FROM {n.table} WHERE {n.project} = %s AND {n.name} = %s"


def named_in_project(model_class, *, project_id, name):
    """The project's ``model_class`` row (a Prompt, a Model: anything with ``project`` and a
    ``name`` unique in it) named ``name``, or None. SQL for the reason project_by_slug is: nearly
    every request's URL names one."""
    return _first(model_class.objects.raw(_named_in_project_sql(model_class), [project_id, name]))


# kind: (Label's field naming the owner, Label's field naming the version it points at)
_LABEL_FIELDS = {"model": ("model", "checkpoint"), "prompt": ("prompt", "prompt_version")}


@cache
def _label_target_sql(kind):
    owner_field, target_field = _LABEL_FIELDS[kind]
    owner_model = Label._meta.get_field(owner_field).related_model
    target_model = Label._meta.get_field(target_field).related_model
    lbl, o, t = _Names(Label), _Names(owner_model), _Names(target_model)
    return (
        f"SELECT t.*, o.{o.name} AS owner_name FROM {lbl.table} l "
        f"JOIN {o.table} o ON o.{o.pk} = l.{getattr(lbl, owner_field)} "
        f"JOIN {t.table} t ON t.{t.pk} = l.{getattr(lbl, target_field)} "
        f"WHERE l.{lbl.project} = %s AND l.{lbl.name} = %s AND o.{o.name} = %s"
    )


def label_target(*, kind, project_id, owner_name, label_name):
    """The version (a Checkpoint for ``kind`` "model", a PromptVersion for "prompt") that the
    label ``label_name`` of the project's model or prompt ``owner_name`` points at, with
    ``owner_name``; None if there is none. Resolving ``name@production`` is the most frequent read
    there is, and compiling the ORM query (a three-way select_related) cost more than running it."""
    target_model = Label._meta.get_field(_LABEL_FIELDS[kind][1]).related_model
    return _first(target_model.objects.raw(_label_target_sql(kind), [project_id, label_name, owner_name]))


# ---------------------------------------------------------------- a page's labels, tags and parents


def _id_list_select():
    """A SELECT of a list of ids given as one parameter (see _id_list_param): psycopg parses a
    statement's placeholders on every call, and a page of 100 as 100 placeholders cost more than
    the query."""
    if connection.vendor == "postgresql":
        return "SELECT unnest(CAST(%s AS bigint[]))"
    return "SELECT value FROM json_each(%s)"


def _id_list_param(ids):
    return list(ids) if connection.vendor == "postgresql" else json.dumps(list(ids))


@cache
def _prompt_version_labels_and_tags_sql():
    lbl, tag = _Names(Label), _Names(Tag)
    return (
        f"WITH page(id) AS ({_id_list_select()})\n"
        f"SELECT {lbl.prompt_version}, 'label' AS what, {lbl.name} FROM {lbl.table} "
        f"WHERE {lbl.prompt_version} IN (SELECT id FROM page)\n"
        "UNION ALL\n"
        f"SELECT {tag.prompt_version}, 'tag', {tag.name} FROM {tag.table} WHERE {tag.prompt_version} IN (SELECT id FROM page)\n"
        "ORDER BY 2, 3"
    )


def prompt_version_labels_and_tags(ids):
    """(prompt version id, "label" or "tag", name) of the labels and tags on the prompt versions
    ``ids`` (a page of a history), labels first, each by name; no statement for no ids. One
    statement, where the ORM needs a prefetch for each."""
    if not ids:
        return []
    return _fetchall(_prompt_version_labels_and_tags_sql(), [_id_list_param(ids)])


@cache
def _checkpoint_labels_tags_parents_sql():
    # The CASTs give each column one type across the branches on PostgreSQL; "edge" (the edge's
    # id) keeps parents in the order they were added.
    lbl, tag, e, c, m = _Names(Label), _Names(Tag), _Names(LineageEdge), _Names(Checkpoint), _Names(Model)
    return (
        f"WITH page(id) AS ({_id_list_select()})\n"
        f"SELECT {lbl.checkpoint}, 'label' AS what, {lbl.name}, CAST(NULL AS integer) AS number, "
        "CAST(NULL AS varchar) AS relation, CAST(NULL AS varchar) AS method, 0 AS edge "
        f"FROM {lbl.table} WHERE {lbl.checkpoint} IN (SELECT id FROM page)\n"
        "UNION ALL\n"
        f"SELECT {tag.checkpoint}, 'tag', {tag.name}, NULL, NULL, NULL, 0 FROM {tag.table} "
        f"WHERE {tag.checkpoint} IN (SELECT id FROM page)\n"
        "UNION ALL\n"
        f"SELECT e.{e.child}, 'parent', m.{m.name}, p.{c.number}, e.{e.relation}, e.{e.method}, e.{e.pk} FROM {e.table} e "
        f"JOIN {c.table} p ON p.{c.pk} = e.{e.parent} JOIN {m.table} m ON m.{m.pk} = p.{c.model} "
        f"WHERE e.{e.child} IN (SELECT id FROM page)\n"
        "ORDER BY 2, 7, 3"
    )


def checkpoint_labels_tags_parents(ids):
    """(checkpoint id, "label", "tag" or "parent", name, number, relation, method, edge id) for
    the checkpoints ``ids`` (a page of a model's list): labels and tags by name (number,
    relation and method None), parents as added (name is the parent's model); no statement for
    no ids. One statement, where the ORM needs three prefetches."""
    if not ids:
        return []
    return _fetchall(_checkpoint_labels_tags_parents_sql(), [_id_list_param(ids)])


# ---------------------------------------------------------------- lineage walks

# Why SQL: the ORM cannot write a recursive query, and following edges a generation per query
# would cost one query per generation. Each walk is one WITH RECURSIVE statement, on PostgreSQL
# and SQLite alike, at any depth. UNION (not UNION ALL) drops repeated (id, depth) pairs, so
# diamonds in the DAG do not multiply rows; a node reached at several depths keeps the least.


@cache
def _walk_sql(*, down, nodes=False, method=False, dataset=False):
    """One walk from a checkpoint (parameters: its id, the deepest generation to walk, then the
    filter's): ``down`` to descendants, else to ancestors; ``nodes`` selects (model name, number,
    kind, sha256, depth) instead of whole checkpoint rows with ``depth``. ``method`` and
    ``dataset`` keep only checkpoints produced by an edge with that unlearning method, or forget
    or retain dataset hash (each once, both must hold), and the generation at the bound always."""
    e, c, m = _Names(LineageEdge), _Names(Checkpoint), _Names(Model)
    start, step = (e.parent, e.child) if down else (e.child, e.parent)
    if nodes:
        columns = f"m.{m.name}, c.{c.number}, c.{c.kind}, c.{c.sha256}, d.depth"
        owner = f" JOIN {m.table} m ON m.{m.pk} = c.{c.model}"
    else:
        columns, owner = "c.*, d.depth AS depth", ""
    conditions = []
    if method:
        conditions.append(f"EXISTS (SELECT 1 FROM {e.table} f WHERE f.{e.child} = c.{c.pk} AND f.{e.method} = %s)")
    if dataset:
        conditions.append(f"EXISTS (SELECT 1 FROM {e.table} f WHERE f.{e.child} = c.{c.pk} AND (f.{e.forget_dataset_sha256} = %s OR f.{e.retain_dataset_sha256} = %s))")
    # The generation past the bound always comes back: lineage_nodes tells from it whether the
    # walk was cut, whatever the filter keeps.
    where = f"WHERE ({' AND '.join(conditions)}) OR d.depth >= %s\n" if conditions else ""
    return (
        "WITH RECURSIVE walk(id, depth) AS (\n"
        f"    SELECT {step}, 1 FROM {e.table} WHERE {start} = %s\n"
        "    UNION\n"
        f"    SELECT e.{step}, walk.depth + 1 FROM {e.table} e JOIN walk ON e.{start} = walk.id WHERE walk.depth < %s\n"
        ")\n"
        f"SELECT {columns} FROM {c.table} c{owner}\n"
        f"JOIN (SELECT id, MIN(depth) AS depth FROM walk GROUP BY id) d ON c.{c.pk} = d.id\n"
        f"{where}"
        f"ORDER BY d.depth, c.{c.pk}"
    )


def _walk_params(*, checkpoint_id, bound, method, dataset_sha256):
    params = [checkpoint_id, bound]
    if method:
        params.append(method)
    if dataset_sha256:
        params.extend([dataset_sha256, dataset_sha256])
    return [*params, bound] if method or dataset_sha256 else params


def ancestors_with_depth(*, checkpoint_id, bound):
    """Checkpoints that ``checkpoint_id`` descends from, each with ``depth`` (1 for a parent),
    nearest first (then by id), at most ``bound`` generations up."""
    return Checkpoint.objects.raw(_walk_sql(down=False), [checkpoint_id, bound])


def descendants_with_depth(*, checkpoint_id, bound, method="", dataset_sha256=""):
    """Checkpoints descending from ``checkpoint_id``, each with ``depth``, nearest first, at most
    ``bound`` generations down; with ``method`` or ``dataset_sha256``, those produced by an edge
    with that method or forget/retain dataset hash, and every one at depth ``bound``."""
    sql = _walk_sql(down=True, method=bool(method), dataset=bool(dataset_sha256))
    return Checkpoint.objects.raw(sql, _walk_params(checkpoint_id=checkpoint_id, bound=bound, method=method, dataset_sha256=dataset_sha256))


def lineage_node_rows(*, checkpoint_id, bound, method="", dataset_sha256=""):
    """(ancestors, descendants) of ``checkpoint_id`` as (model name, number, kind, sha256, depth)
    tuples, as ancestors_with_depth and descendants_with_depth walk them, in two statements on
    one cursor: no model instance per node."""
    descendants_sql = _walk_sql(down=True, nodes=True, method=bool(method), dataset=bool(dataset_sha256))
    descendants_params = _walk_params(checkpoint_id=checkpoint_id, bound=bound, method=method, dataset_sha256=dataset_sha256)
    with connection.cursor() as cursor:
        cursor.execute(_walk_sql(down=False, nodes=True), [checkpoint_id, bound])
        ancestors = cursor.fetchall()
        cursor.execute(descendants_sql, descendants_params)
        return ancestors, cursor.fetchall()


# ---------------------------------------------------------------- writes


@cache
def _counter_next_sql(model_class, counter):
    n = _Names(model_class)
    column = getattr(n, counter)
    return f"UPDATE {n.table} SET {column} = {column} + 1 WHERE {n.pk} = %s RETURNING {column}"


def counter_next(*, owner, counter):
    """Bump ``owner``'s version counter (the field ``counter``) and return the new number, in one
    statement: the ORM's F() update cannot return the value, and reading it back would be a
    second statement. UPDATE ... RETURNING runs on PostgreSQL and SQLite >= 3.35. The row lock it
    takes serialises concurrent writers of the same owner until their transaction ends, so
    numbers stay gap-free and unique."""
    with connection.cursor() as cursor:
        cursor.execute(_counter_next_sql(type(owner), counter), [owner.pk])
        return cursor.fetchone()[0]


def sequences_reset(models):
    """Set the id sequences of ``models`` past their highest id (after rows were inserted with
    their ids, as a bundle import does). The statements are Django's own for the backend
    (``sequence_reset_sql``; none on SQLite); they run here because this module is where the
    registry runs SQL."""
    statements = connection.ops.sequence_reset_sql(no_style(), list(models))
    if statements:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

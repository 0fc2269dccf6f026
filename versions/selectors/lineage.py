"""Lineage: ancestors and descendants in one recursive statement at any depth, graphs, adapter chains."""

from versions import sql
from core.errors import ValidationFailed
from versions.models import Checkpoint, CheckpointKind, LineageEdge


# The deepest generation a walk goes to when nothing cuts it.
UNBOUNDED = 2**31 - 1


def checkpoint_ancestors(*, checkpoint):
    """[(checkpoint, depth)] of every ancestor, nearest first, in one recursive statement."""
    return [(row, row.depth) for row in sql.ancestors_with_depth(checkpoint_id=checkpoint.pk, bound=UNBOUNDED)]


def checkpoint_descendants(*, checkpoint, method=None, dataset_sha256=None):
    """[(checkpoint, depth)] of every descendant, optionally only those produced by an edge with
    the given unlearning method or forget/retain dataset hash."""
    rows = sql.descendants_with_depth(checkpoint_id=checkpoint.pk, bound=UNBOUNDED, method=method or "", dataset_sha256=dataset_sha256 or "")
    return [(row, row.depth) for row in rows]


def lineage_nodes(*, checkpoint, depth, method=None, dataset_sha256=None):
    """(ancestors, descendants, ancestors_truncated, descendants_truncated) of a checkpoint:
    plain rows {model, number, kind, sha256, depth}, nearest first, from the same two recursive
    statements as checkpoint_ancestors and checkpoint_descendants, without a model instance per
    node. ``depth`` keeps the nearest generations: each walk stops one generation further, and
    *_truncated says whether that generation exists, so a page costs what its answer holds
    however deep the lineage goes."""
    columns = ("model", "number", "kind", "sha256", "depth")
    ancestor_rows, descendant_rows = sql.lineage_node_rows(checkpoint_id=checkpoint.pk, bound=depth + 1, method=method or "", dataset_sha256=dataset_sha256 or "")
    ancestors = [dict(zip(columns, row, strict=True)) for row in ancestor_rows]
    descendants = [dict(zip(columns, row, strict=True)) for row in descendant_rows]
    kept_ancestors = [node for node in ancestors if node["depth"] <= depth]
    kept_descendants = [node for node in descendants if node["depth"] <= depth]
    return kept_ancestors, kept_descendants, len(kept_ancestors) < len(ancestors), len(kept_descendants) < len(descendants)


def lineage_graph(*, model):
    """Nodes and edges of a model's lineage (edges may cross into other models of the project)."""
    checkpoints = list(Checkpoint.objects.filter(model=model).order_by("number"))
    ids = [c.pk for c in checkpoints]
    edges = list(LineageEdge.objects.filter(child_id__in=ids).select_related("parent__model").order_by("id"))
    return checkpoints, edges


def checkpoint_adapter_chain(*, checkpoint):
    """The chain an adapter checkpoint needs, root (full or reference) first.

    Follows each adapter's first parent edge; one recursive statement."""
    if checkpoint.kind != CheckpointKind.ADAPTER:
        return [checkpoint]
    chain = [checkpoint]
    ancestors = {c.pk: c for c, _ in checkpoint_ancestors(checkpoint=checkpoint)}
    edges = {}
    for edge in LineageEdge.objects.filter(child_id__in=[checkpoint.pk, *ancestors]).order_by("id"):
        edges.setdefault(edge.child_id, edge.parent_id)
    current = checkpoint
    while current.kind == CheckpointKind.ADAPTER:
        parent_id = edges.get(current.pk)
        if parent_id is None:
            raise ValidationFailed(f"Adapter checkpoint {current} has no parent to apply to.")
        current = ancestors[parent_id]
        chain.append(current)
    return list(reversed(chain))

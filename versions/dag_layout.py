"""A layered (Sugiyama-style) layout of a directed acyclic graph. Pure Python, no Django.

1. Layers by longest path: a node with no parents is in layer 0, any other one layer past its
   deepest parent, so every edge points to a later layer. A source that feeds later layers only
   (a dataset read by a run several generations down) then moves up to the layer just before its
   nearest child, so its edges stay short.
2. An edge spanning several layers gets one virtual node per layer it crosses; those take part in
   the ordering and become the edge's bend points.
3. Order within each layer: barycentre sweeps, down (by the mean position of each node's parents)
   then up (by its children's), a few rounds; the order with the fewest crossings wins. Ties keep
   the input order, so the result is deterministic.

Positions: x is the layer, y the rank within the layer centred on 0 (rank 0 on top, i.e. the
largest y), so a chart draws the graph left to right.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass, field

SWEEPS = 6


@dataclass(frozen=True)
class _Virtual:
    """A bend point of an edge that spans several layers."""

    parent: object
    child: object
    layer: int


@dataclass
class Layout:
    layers: list[list]  # real node ids per layer, in order
    position: dict  # node id -> (x, y)
    # (parent, child) -> [(x, y), ...] from the parent through the bend points to the child
    edge_points: dict = field(default_factory=dict)
    crossings: int = 0


def longest_path_layers(nodes: list, edges: list[tuple]) -> dict:
    """node -> layer. Cycles cannot occur in a lineage (services refuse them); a malformed input
    still terminates, a node on a cycle taking the layer it had when the cycle was found."""
    known = set(nodes)
    parents, children = defaultdict(list), defaultdict(list)
    for parent, child in edges:
        if parent in known and child in known and parent != child:
            parents[child].append(parent)
            children[parent].append(child)
    layer: dict = {}

    def layer_of(node, visiting=frozenset()):
        if node in layer:
            return layer[node]
        if node in visiting:
            return 0
        inner = visiting | {node}
        # Recursion as deep as the longest chain: the limit is raised for the walk below.
        value = 1 + max((layer_of(p, inner) for p in parents[node]), default=-1)
        layer[node] = value
        return value

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * len(nodes) + 100))
    try:
        for node in nodes:
            layer_of(node)
    finally:
        sys.setrecursionlimit(limit)
    # Sources that feed later layers sit just before their nearest child.
    for node in nodes:
        if not parents[node] and children[node]:
            layer[node] = max(layer[node], min(layer[c] for c in children[node]) - 1)
    return layer


def _crossings(upper: list, lower: list, links: list[tuple]) -> int:
    """Crossings between two adjacent layers: pairs of links whose ends are in opposite order."""
    up = {node: index for index, node in enumerate(upper)}
    low = {node: index for index, node in enumerate(lower)}
    pairs = sorted((up[a], low[b]) for a, b in links if a in up and b in low)
    count = 0
    for i in range(len(pairs)):
        for j in range(i + 1, len(pairs)):
            if pairs[i][0] < pairs[j][0] and pairs[i][1] > pairs[j][1]:
                count += 1
    return count


def _total_crossings(order: list[list], links_between: list[list[tuple]]) -> int:
    return sum(_crossings(order[i], order[i + 1], links_between[i]) for i in range(len(order) - 1))


def layered_layout(nodes: list, edges: list[tuple], *, sweeps: int = SWEEPS) -> Layout:
    """Layers, order and coordinates of ``nodes`` (hashable ids, in a preferred initial order)
    joined by ``edges`` ((parent, child) pairs; ones naming unknown nodes are ignored)."""
    nodes = list(dict.fromkeys(nodes))
    known = set(nodes)
    edges = list(dict.fromkeys((p, c) for p, c in edges if p in known and c in known and p != c))
    layer = longest_path_layers(nodes, edges)
    depth = max(layer.values(), default=-1) + 1
    order: list[list] = [[] for _ in range(depth)]
    for node in nodes:
        order[layer[node]].append(node)

    # Virtual nodes along long edges, and the unit links between adjacent layers.
    chains: dict[tuple, list] = {}
    links_between: list[list[tuple]] = [[] for _ in range(max(depth - 1, 0))]
    for parent, child in edges:
        if layer[child] <= layer[parent]:
            continue  # only on a cycle, which a lineage never has
        chain = [parent]
        for step in range(layer[parent] + 1, layer[child]):
            virtual = _Virtual(parent, child, step)
            order[step].append(virtual)
            chain.append(virtual)
        chain.append(child)
        chains[(parent, child)] = chain
        for step, (a, b) in enumerate(zip(chain, chain[1:], strict=False), start=layer[parent]):
            links_between[step].append((a, b))
    ups = defaultdict(list)
    downs = defaultdict(list)
    for links in links_between:
        for a, b in links:
            downs[a].append(b)
            ups[b].append(a)

    def barycentre(node, neighbours, rank):
        around = [rank[n] for n in neighbours[node] if n in rank]
        return sum(around) / len(around) if around else None

    def sort_by(layer_nodes, neighbours, reference, other_neighbours, other):
        """By the mean rank of the neighbours in ``reference``; ties (siblings) by the mean rank of
        the neighbours on the other side, then by current place. A node with no neighbour in
        ``reference`` keeps its slot; the others are sorted into the remaining slots."""
        rank = {node: index for index, node in enumerate(reference)}
        other_rank = {node: index for index, node in enumerate(other)}
        keyed = []
        for index, node in enumerate(layer_nodes):
            centre = barycentre(node, neighbours, rank)
            if centre is not None:
                tie = barycentre(node, other_neighbours, other_rank)
                keyed.append(((centre, index if tie is None else tie, index), node))
        moving = iter(node for _, node in sorted(keyed, key=lambda item: item[0]))
        movable = {node for _, node in keyed}
        return [next(moving) if node in movable else node for node in layer_nodes]

    best = [list(layer_nodes) for layer_nodes in order]
    best_crossings = _total_crossings(best, links_between)
    current = [list(layer_nodes) for layer_nodes in order]
    for _ in range(sweeps):
        if best_crossings == 0:
            break
        for i in range(1, depth):
            current[i] = sort_by(current[i], ups, current[i - 1], downs, current[i + 1] if i + 1 < depth else [])
        for i in range(depth - 2, -1, -1):
            current[i] = sort_by(current[i], downs, current[i + 1], ups, current[i - 1] if i > 0 else [])
        found = _total_crossings(current, links_between)
        if found < best_crossings:
            best, best_crossings = [list(layer_nodes) for layer_nodes in current], found

    position = {}
    for x, layer_nodes in enumerate(best):
        for rank, node in enumerate(layer_nodes):
            position[node] = (x, (len(layer_nodes) - 1) / 2 - rank)
    edge_points = {edge: [position[node] for node in chain] for edge, chain in chains.items()}
    real_layers = [[node for node in layer_nodes if node in known] for layer_nodes in best]
    return Layout(layers=real_layers, position={node: position[node] for node in nodes}, edge_points=edge_points, crossings=best_crossings)

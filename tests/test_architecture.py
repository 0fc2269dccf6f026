"""The project's modules import one another without cycles (docs/architecture.md, "Layers"): a
cycle would tie two modules so that neither can change or be understood alone, and the layers
contract in .importlinter (checked by lint-imports) sees only imports between apps, not inside one."""

import grimp

PROJECT_PACKAGES = ("config", "versions", "jobs", "unlearning", "evals", "sweeps", "pages", "demo", "mlcore")

# Cycles known and owned by a pending change, each named (a frozenset of the modules in it, with a
# comment saying which change ends it): none may be added. Empty: the last, evals.judges with the
# judges in their own modules, ended when the base classes moved to evals.judge_base.
ALLOWED_CYCLES: set[frozenset[str]] = set()


def strongly_connected_components(graph, modules):
    """Tarjan's algorithm, iteratively: the sets of modules that reach one another."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root) & modules)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child) & modules))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                found.append(frozenset(component))
    return found


def test_no_import_cycle_between_the_projects_modules():
    graph = grimp.build_graph(*PROJECT_PACKAGES)
    modules = {m for m in graph.modules if m.split(".")[0] in PROJECT_PACKAGES}
    cycles = [component for component in strongly_connected_components(graph, modules) if len(component) > 1]
    unexpected = sorted(sorted(component) for component in cycles if component not in ALLOWED_CYCLES)
    assert unexpected == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in unexpected)


def test_the_cycle_finder_finds_a_cycle_and_only_the_cycle():
    class Graph:
        edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

        def find_modules_directly_imported_by(self, module):
            return self.edges.get(module, set())

    components = strongly_connected_components(Graph(), {"a", "b", "c", "d"})
    assert sorted(sorted(c) for c in components if len(c) > 1) == [["a", "b", "c"]]


# The layers of .importlinter, bottom first: a model may hold a key into its own layer or below.
MODEL_LAYERS = {"versions": 0, "jobs": 1, "evals": 2, "unlearning": 2, "sweeps": 3}


def upward_relations():
    """(field, from app, to app) for every relation of a layered app's model into a higher layer."""
    from django.apps import apps

    found = []
    for model in apps.get_models():
        source = model._meta.app_label
        for field in model._meta.get_fields(include_hidden=True):
            if not field.is_relation or field.auto_created or field.related_model is None:
                continue
            target = field.related_model._meta.app_label
            if source in MODEL_LAYERS and MODEL_LAYERS.get(target, -1) > MODEL_LAYERS[source]:
                found.append((f"{model._meta.label}.{field.name}", source, target))
    return sorted(found)


def test_no_model_holds_a_key_into_a_higher_layer():
    # A key into a higher app ties the lower app's schema and migrations to it (the jobs and
    # evals initial migrations once had to be split in two for it); the lower app asks through a
    # hook instead (docs/architecture.md).
    assert upward_relations() == []

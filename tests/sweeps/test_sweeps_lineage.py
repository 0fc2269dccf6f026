"""A sweep in its model's lineage graph (parent -> sweep -> each configuration's run) and on the
page of each checkpoint it made. Nothing executes queued runs here (the test's transaction never
commits): each run is executed by hand with ``run_execute``, in the test's thread, as a worker would."""

import json
import re

import pytest
from django.test import Client

from jobs.services import run_execute
from pages.views import lineage_graph
from sweeps.models import ConfigurationStatus, SweepStatus
from tests.sweeps.conftest import TINY_TRAINING, sweep_finish, sweep_members, sweep_of
from unlearning.services import unlearning_run_create

pytestmark = pytest.mark.django_db


def _figure(response, figure_id):
    match = re.search(rf'<script id="{figure_id}" type="application/json">(.*?)</script>', response.content.decode(), re.S)
    assert match, f"no figure {figure_id} on the page"
    return json.loads(match.group(1))


def test_a_finished_sweep_is_a_node_between_its_parent_and_its_runs_and_each_child_names_it(project, user, sweep_setup):
    # given a finished sweep of two configurations of tiny@1, and a run of tiny@1 outside any sweep
    parent = sweep_setup["parent"]
    sweep = sweep_finish(sweep_of(sweep_setup, user, ["gradient_ascent", "npo"], name="lineage sweep"))
    plain = unlearning_run_create(parent_checkpoint=parent, method="gradient_ascent", hyperparameters=TINY_TRAINING, forget_dataset_version=sweep_setup["forget"], actor=user)
    members = sweep_members(sweep)
    assert sweep.status == SweepStatus.FINISHED
    assert [m.status for m in members] == [ConfigurationStatus.SUCCEEDED] * 2
    first, second = (m.unlearning_run for m in members)
    children = [first.produced_checkpoint, second.produced_checkpoint]
    assert [child.number for child in children] == [2, 3]
    evaluations = [m.evaluations.get() for m in members]

    # when the lineage graph of tiny is built
    nodes, links = lineage_graph(model=parent.model, slug=project.slug, labels=list(parent.model.labels.order_by("name")))

    # then the sweep is one node, linked to its page, between the parent and the sweep's two runs
    forget, retain = sweep_setup["forget"], sweep_setup["retain"]
    assert [(node.id, node.label, node.kind, node.url) for node in nodes] == [
        (("checkpoint", parent.pk), "tiny@1", "full", "/p/safety/models/tiny/c/1/"),
        (("checkpoint", children[0].pk), "tiny@2", "adapter", "/p/safety/models/tiny/c/2/"),
        (("checkpoint", children[1].pk), "tiny@3", "adapter", "/p/safety/models/tiny/c/3/"),
        (("sweep", sweep.pk), f"sweep {sweep.pk}", "sweep", f"/p/safety/sweeps/{sweep.pk}/"),
        (("run", first.pk), f"run {first.pk}", "run", f"/p/safety/unlearning/{first.pk}/"),
        (("run", second.pk), f"run {second.pk}", "run", f"/p/safety/unlearning/{second.pk}/"),
        (("run", plain.pk), f"run {plain.pk}", "run", f"/p/safety/unlearning/{plain.pk}/"),
        (("dataset", forget.pk), "harmful-forget@1", "dataset", "/p/safety/datasets/harmful-forget/v/1/"),
        (("dataset", retain.pk), "benign-retain@1", "dataset", "/p/safety/datasets/benign-retain/v/1/"),
    ]
    by_id = {node.id: node for node in nodes}
    assert by_id[("sweep", sweep.pk)].hover == f"sweep {sweep.pk} lineage sweep from tiny@1, finished: 2 configurations, 2 succeeded, 0 failed"
    assert by_id[("run", first.pk)].hover == f"unlearning run {first.pk}: gradient_ascent from tiny@1, succeeded, configuration #1 of sweep {sweep.pk}"
    assert by_id[("run", plain.pk)].hover == f"unlearning run {plain.pk}: gradient_ascent from tiny@1, queued"
    # and the parent links to the sweep, the sweep to each of its runs (no parent -> run link for
    # them), while the run outside the sweep still links to the parent directly
    assert [(link.parent, link.child, link.relation, link.method, link.style) for link in links] == [
        (("checkpoint", parent.pk), ("checkpoint", children[0].pk), "unlearned-from", "gradient_ascent", "lineage"),
        (("checkpoint", parent.pk), ("checkpoint", children[1].pk), "unlearned-from", "npo", "lineage"),
        (("checkpoint", parent.pk), ("sweep", sweep.pk), "sweep", "", "run"),
        (("sweep", sweep.pk), ("run", first.pk), "configuration", "gradient_ascent", "run"),
        (("run", first.pk), ("checkpoint", children[0].pk), "produced", "", "run"),
        (("dataset", forget.pk), ("run", first.pk), "forget", "", "data"),
        (("dataset", retain.pk), ("run", first.pk), "retain", "", "data"),
        (("sweep", sweep.pk), ("run", second.pk), "configuration", "npo", "run"),
        (("run", second.pk), ("checkpoint", children[1].pk), "produced", "", "run"),
        (("dataset", forget.pk), ("run", second.pk), "forget", "", "data"),
        (("dataset", retain.pk), ("run", second.pk), "retain", "", "data"),
        (("checkpoint", parent.pk), ("run", plain.pk), "input", "gradient_ascent", "run"),
        (("dataset", forget.pk), ("run", plain.pk), "forget", "", "data"),
    ]
    # and each child's edge carries the verdict of the sweep's evaluation of it against the parent
    assert [link.verdict_url for link in links[:2]] == [f"/p/safety/evaluations/{evaluation.pk}/" for evaluation in evaluations]
    assert [link.verdict for link in links[:2]] == [evaluation.verdict for evaluation in evaluations]

    # when the model page is drawn
    client = Client()
    client.force_login(user)
    figure = _figure(client.get("/p/safety/models/tiny/"), "lineage-figure")

    # then the sweep is its own trace, one layer after the parent and one before its runs (the run
    # outside the sweep is one layer after the parent)
    traces = {trace["name"]: trace for trace in figure["data"]}
    assert (traces["sweep"]["text"], traces["sweep"]["x"], traces["sweep"]["customdata"]) == ([f"sweep {sweep.pk}"], [1], [f"/p/safety/sweeps/{sweep.pk}/"])
    assert traces["sweep"]["marker"]["symbol"] == "hexagon"
    assert (traces["unlearning run"]["text"], traces["unlearning run"]["x"]) == ([f"run {first.pk}", f"run {second.pk}", f"run {plain.pk}"], [2, 2, 1])

    # when the page of the sweep's first child and of the parent are read
    child_page = client.get("/p/safety/models/tiny/c/2/").content.decode()
    parent_page = client.get("/p/safety/models/tiny/c/1/").content.decode()

    # then the child says which sweep, configuration and branch made it, linked to the sweep's page
    assert (
        f'<span data-testid="checkpoint-sweep">made by <a href="/p/safety/sweeps/{sweep.pk}/">sweep lineage sweep</a> '
        f"(configuration #1, branch sweep-{sweep.pk}-1-gradient_ascent)</span>"
    ) in child_page
    assert f'<a href="/p/safety/unlearning/{first.pk}/">unlearning run {first.run_id}</a>' in child_page
    # and the parent, registered by hand, names no sweep
    assert "made by" not in parent_page


def test_an_unnamed_sweep_is_named_by_its_id_on_its_childs_page(project, user, sweep_setup):
    # given a sweep without a name whose one configuration has unlearned (its evaluation still queued)
    sweep = sweep_of(sweep_setup, user, ["gradient_ascent"], name="")
    (member,) = sweep_members(sweep)
    run_execute(run_id=member.unlearning_run.run_id, worker="test")
    client = Client()
    client.force_login(user)

    # when
    page = client.get("/p/safety/models/tiny/c/2/").content.decode()

    # then
    assert f'made by <a href="/p/safety/sweeps/{sweep.pk}/">sweep {sweep.pk}</a> (configuration #1, branch sweep-{sweep.pk}-1-gradient_ascent)' in page


def test_the_model_page_costs_the_same_queries_with_one_sweep_or_two(project, user, sweep_setup, django_assert_num_queries):
    # given a sweep of two configurations of tiny@1 whose runs are queued, and a run outside it
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sweep_of(sweep_setup, user, ["gradient_ascent", "npo"], name="one")
    unlearning_run_create(
        parent_checkpoint=sweep_setup["parent"], method="gradient_ascent", hyperparameters=TINY_TRAINING, forget_dataset_version=sweep_setup["forget"], actor=user
    )
    client = Client()
    client.force_login(user)
    with CaptureQueriesContext(connection) as one_sweep:
        assert client.get("/p/safety/models/tiny/").status_code == 200

    # when a second sweep of three configurations starts from the same parent
    sweep_of(sweep_setup, user, ["gradient_ascent", "npo", "gradient_difference"], name="two")

    # then the page draws both sweeps and their five runs in as many queries as before
    with django_assert_num_queries(len(one_sweep)):
        figure = _figure(client.get("/p/safety/models/tiny/"), "lineage-figure")
    traces = {trace["name"]: trace for trace in figure["data"]}
    assert len(traces["sweep"]["text"]) == 2
    assert len(traces["unlearning run"]["text"]) == 6

"""An evaluation names its utility dataset version as the API shows it (dataset@number), as it
already names its checkpoints and prompt versions; ids still work."""

import pytest

from evals.models import Evaluation

pytestmark = pytest.mark.django_db

EVALUATIONS = "/api/v1/projects/safety/evaluations/"
BASE = {"suite": "core@1", "checkpoint_a": "tiny@1", "checkpoint_b": "tiny@2"}


def test_the_utility_dataset_version_is_named_by_dataset_and_number(api_client, evaluation_setup):
    by_ref = api_client.post(EVALUATIONS, {**BASE, "utility_dataset_version": "heldout@1"}, format="json")
    by_id = api_client.post(EVALUATIONS, {**BASE, "utility_dataset_version": evaluation_setup["utility"].pk}, format="json")
    missing = api_client.post(EVALUATIONS, {**BASE, "utility_dataset_version": "heldout@2"}, format="json")

    assert (by_ref.status_code, by_id.status_code) == (201, 201)
    assert [e.utility_dataset_version for e in Evaluation.objects.order_by("pk")] == [evaluation_setup["utility"]] * 2
    assert (missing.status_code, missing.json()["error"]["message"]) == (404, "Dataset heldout has no version 2.")


def test_the_schema_says_how_to_name_every_version(api_client):
    body = api_client.get("/api/schema/?format=json").json()["components"]["schemas"]["EvaluationCreateInputRequest"]["properties"]

    assert body["checkpoint_a"]["description"] == "model@number (e.g. tiny@3), model@label (e.g. tiny@production), or the checkpoint's id."
    assert body["prompt_version_b"]["description"] == "prompt@number (e.g. system@2), prompt@label (e.g. system@production), or the version's id."
    assert body["utility_dataset_version"]["description"] == "dataset@number (e.g. forget@1), or the dataset version's id."

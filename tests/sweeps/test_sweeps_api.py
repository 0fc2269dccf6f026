import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.models import Run
from sweeps.models import Sweep
from tests.sweeps.conftest import TINY_TRAINING, sweep_of
from versions.models import Role

pytestmark = pytest.mark.django_db


def test_the_sweep_list_and_detail_read_the_same_number_of_queries_whatever_their_size(api_client, project, user, sweep_setup):
    # given one sweep of one configuration (its runs stay queued: nothing executes them here)
    small = sweep_of(sweep_setup, user, ["npo"])
    base = f"/api/v1/projects/{project.slug}/sweeps/"
    with CaptureQueriesContext(connection) as list_small:
        assert api_client.get(base).status_code == 200
    with CaptureQueriesContext(connection) as detail_small:
        assert api_client.get(f"{base}{small.pk}/").status_code == 200

    # when there are three sweeps, one of them of four configurations
    sweep_of(sweep_setup, user, ["gradient_ascent"])
    large = sweep_of(sweep_setup, user, ["gradient_ascent", "npo", "gradient_difference", "kl"])
    with CaptureQueriesContext(connection) as list_large:
        listed = api_client.get(base)
    with CaptureQueriesContext(connection) as detail_large:
        detail = api_client.get(f"{base}{large.pk}/")

    # then both pages read as many queries as before
    assert len(list_large) == len(list_small)
    assert len(detail_large) == len(detail_small)
    assert len(detail_large) <= 14
    assert [item["configuration_count"] for item in listed.json()["results"]] == [4, 1, 1]
    rows = detail.json()["comparison"]["rows"]
    assert [(row["position"], row["method"], row["status"], row["run_status"], row["checkpoint"]) for row in rows] == [
        (1, "gradient_ascent", "unlearning", "queued", None),
        (2, "npo", "unlearning", "queued", None),
        (3, "gradient_difference", "unlearning", "queued", None),
        (4, "kl", "unlearning", "queued", None),
    ]
    assert detail.json()["comparison"]["frontier"] == [[]]


def test_a_configuration_the_engine_refuses_when_created_refuses_the_whole_sweep(api_client, project, sweep_setup):
    # when one of three configurations has an out-of-range hyperparameter
    response = api_client.post(
        f"/api/v1/projects/{project.slug}/sweeps/",
        {
            "parent_checkpoint": "tiny@1",
            "forget_dataset_version": "harmful-forget@1",
            "retain_dataset_version": "benign-retain@1",
            "configurations": [{"method": "npo", "hyperparameters": TINY_TRAINING, "grid": {"beta": [0.1, -1.0]}}],
            "suite_versions": ["core@latest"],
            "judge": "refusal-strings",
        },
        format="json",
    )

    # then nothing is created, and the error names the configuration and the field
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith("configuration 2 (npo, seed 0): Invalid hyperparameter beta")
    assert list(error["fields"]) == ["configurations.2.hyperparameters.beta"]
    assert (Sweep.objects.count(), Run.objects.count()) == (0, 0)


def test_a_grid_that_cannot_be_expanded_is_a_400_naming_why(api_client, project, sweep_setup):
    response = api_client.post(
        f"/api/v1/projects/{project.slug}/sweeps/",
        {
            "parent_checkpoint": "tiny@1",
            "forget_dataset_version": "harmful-forget@1",
            "configurations": [{"method": "npo", "hyperparameters": {"beta": 0.1}, "grid": {"beta": [0.2]}}],
            "suite_versions": ["core@latest"],
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "configuration 1: beta is both fixed and on the grid; give it in one place."
    assert response.json()["error"]["fields"] == {"configurations": ["configuration 1: beta is both fixed and on the grid; give it in one place."]}


def test_viewers_read_sweeps_but_cannot_start_them(make_user, client_for, project, user, sweep_setup):
    viewer = make_user("victor", role=Role.VIEWER, project=project)
    sweep = sweep_of(sweep_setup, user, ["npo"])
    client = client_for(viewer)
    assert client.get(f"/api/v1/projects/{project.slug}/sweeps/{sweep.pk}/").status_code == 200
    response = client.post(
        f"/api/v1/projects/{project.slug}/sweeps/",
        {
            "parent_checkpoint": "tiny@1",
            "forget_dataset_version": "harmful-forget@1",
            "configurations": [{"method": "npo"}],
            "suite_versions": ["core@latest"],
        },
        format="json",
    )
    assert response.status_code == 403
    assert client_for(make_user("stranger")).get(f"/api/v1/projects/{project.slug}/sweeps/").status_code == 404

"""Unlearning runs name their inputs as the API shows them (model@number, model@label,
dataset@number), through the API, the CLI and the page, with ids still accepted; the schema
says so."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from unlearning.models import UnlearningRun
from versions import services

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/projects/safety/unlearning-runs/"


@pytest.fixture
def labelled(tiny_checkpoint, user):
    """Checkpoint 1 of "tiny", and a second one labelled production."""
    second = services.checkpoint_register(model=tiny_checkpoint.model, kind="reference", actor=user, external_ref=str(tiny_checkpoint.pk))
    services.label_move(name="production", actor=user, checkpoint=second)
    return {"first": tiny_checkpoint, "production": second}


def created_run(response):
    assert response.status_code == 201, response.json()
    return UnlearningRun.objects.get(pk=response.json()["id"])


def test_the_api_takes_a_label_a_number_and_dataset_numbers(api_client, labelled, forget_version, retain_version):
    by_label = created_run(
        api_client.post(
            RUNS,
            {"parent_checkpoint": "tiny@production", "method": "npo", "forget_dataset_version": "harmful-forget@1", "retain_dataset_version": "benign-retain@1"},
            format="json",
        )
    )
    by_number = created_run(api_client.post(RUNS, {"parent_checkpoint": "tiny@1", "method": "gradient_ascent", "forget_dataset_version": "harmful-forget@1"}, format="json"))
    by_id = created_run(api_client.post(RUNS, {"parent_checkpoint": labelled["first"].pk, "method": "gradient_ascent", "forget_dataset_version": forget_version.pk}, format="json"))

    assert (by_label.parent_checkpoint, by_label.forget_dataset_version, by_label.retain_dataset_version) == (labelled["production"], forget_version, retain_version)
    assert (by_number.parent_checkpoint, by_number.forget_dataset_version, by_number.retain_dataset_version) == (labelled["first"], forget_version, None)
    assert (by_id.parent_checkpoint, by_id.forget_dataset_version) == (labelled["first"], forget_version)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"parent_checkpoint": "tiny@9"}, 404, "tiny has no checkpoint 9."),
        ({"parent_checkpoint": "tiny@staging"}, 404, "Model 'tiny' has no label 'staging'."),
        ({"forget_dataset_version": "harmful-forget@v1"}, 400, "Malformed dataset version reference 'harmful-forget@v1': the version is a number or 'latest'."),
        ({"forget_dataset_version": "missing@1"}, 404, "Dataset 'missing' not found in safety."),
    ],
)
def test_the_api_says_what_a_reference_does_not_name(api_client, labelled, forget_version, body, status, message):
    response = api_client.post(RUNS, {"parent_checkpoint": "tiny@1", "method": "gradient_ascent", "forget_dataset_version": "harmful-forget@1", **body}, format="json")

    assert response.status_code == status
    assert response.json()["error"]["message"] == message
    assert UnlearningRun.objects.count() == 0


def test_ids_of_another_project_name_nothing(api_client, labelled, forget_version, make_user):
    other_owner = make_user("olga")
    other = services.project_create(slug="other", name="Other", creator=other_owner)
    foreign = services.dataset_version_create(
        dataset=services.dataset_create(project=other, name="theirs", actor=other_owner), rows=[{"prompt": "p", "response": "r"}], actor=other_owner
    )

    response = api_client.post(RUNS, {"parent_checkpoint": "tiny@1", "method": "gradient_ascent", "forget_dataset_version": foreign.pk}, format="json")

    assert (response.status_code, response.json()["error"]["message"]) == (404, f"No dataset version {foreign.pk} in safety.")


def test_the_cli_takes_a_label_or_a_model_and_number(labelled, forget_version, retain_version):
    out = io.StringIO()
    call_command(
        "unlearn",
        "--project",
        "safety",
        "--checkpoint",
        "tiny@production",
        "--method",
        "npo",
        "--forget",
        "harmful-forget@1",
        "--retain",
        "benign-retain@1",
        "--user",
        "alice",
        stdout=out,
    )
    call_command(
        "unlearn", "--project", "safety", "--model", "tiny", "--checkpoint", "1", "--method", "gradient_ascent", "--forget", "harmful-forget@1", "--user", "alice", stdout=out
    )

    first, second = UnlearningRun.objects.order_by("pk")
    assert (first.parent_checkpoint, first.retain_dataset_version) == (labelled["production"], retain_version)
    assert second.parent_checkpoint == labelled["first"]
    with pytest.raises(CommandError, match=r"^--checkpoint must look like MODEL@NUMBER or MODEL@LABEL, or be a number with --model; got '1'.$"):
        call_command("unlearn", "--project", "safety", "--checkpoint", "1", "--method", "npo", "--forget", "harmful-forget@1", "--user", "alice")


def test_the_page_offers_and_posts_dataset_numbers(user, labelled, forget_version, retain_version):
    client = Client()
    client.force_login(user)
    page = client.get("/p/safety/models/tiny/c/1/unlearn/").content.decode()

    response = client.post(
        "/p/safety/models/tiny/c/1/unlearn/",
        {"method": "npo", "hyperparameters": "{}", "forget_dataset_version": "harmful-forget@1", "retain_dataset_version": "benign-retain@1", "seed": "0"},
    )

    assert '<option value="harmful-forget@1">harmful-forget v1 (12 rows)</option>' in page
    assert response.status_code == 302
    run = UnlearningRun.objects.get()
    assert (run.parent_checkpoint, run.forget_dataset_version, run.retain_dataset_version) == (labelled["first"], forget_version, retain_version)


def test_the_schema_says_how_to_name_them(api_client):
    schema = api_client.get("/api/schema/?format=json").json()
    body = schema["components"]["schemas"]["UnlearningRunCreateRequest"]["properties"]

    assert body["parent_checkpoint"] == {
        "type": "string",
        "minLength": 1,
        "description": ("The checkpoint to unlearn from: model@number (e.g. tiny@3), model@label (e.g. tiny@production), or the checkpoint's id."),
    }
    assert body["forget_dataset_version"]["description"] == "The forget set: dataset@number (e.g. forget@1), or the dataset version's id."

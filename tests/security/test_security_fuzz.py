"""Fuzz the whole REST API from its own OpenAPI schema (schemathesis, property-based).

Every operation gets ``MAX_EXAMPLES`` generated requests (valid and invalid bodies, query
strings and ids), sent to the WSGI application as an admin of a seeded project with a bearer
token. Two properties must hold for every one: no server error (5xx) and a response that
matches the schema (status code documented, body valid, content type declared).

Path parameters that name objects (project slug, prompt/model/dataset/suite names) are pinned to
the seeded objects, so requests reach the views instead of stopping at a 404; numeric ids stay
generated (hypothesis tries 0, 1, 2, huge and negative numbers first).

The budget (docs/security.md): MAX_EXAMPLES per operation keeps the whole fuzz under three
minutes on two cores.
"""

import pytest
import schemathesis
from schemathesis import checks
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings

from evals import services as eval_services
from jobs import webhooks
from tests.versions.checkpoint_files import write_full
from tests.web.builders import calibration_finished, judgement_rows
from unlearning.services import unlearning_run_create
from versions import services
from versions.models import Role

MAX_EXAMPLES = 25

# What must hold for every response. Left out on purpose: positive_data_acceptance and
# negative_data_rejection, which expect the schema alone to decide acceptance; ours cannot say
# "this id must exist" or "this template must parse", so a correct 400/404 would count as a failure.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]

# What each named path parameter is pinned to (the seeded objects below); `name` depends on
# the collection it follows.
PINNED_PATH_PARAMETERS = {"project_slug": "safety", "suite_name": "core", "label": "staging", "tag": "reviewed", "username": "target"}
PINNED_NAMES = {
    "/prompts/{name}": "system",
    "/models/{name}": "m",
    "/datasets/{name}": "forget",
    "/datasets/{name}/versions/import/": "labels",
}  # the judgements set (later entries win)


def _pin(case):
    parameters = case.path_parameters or {}
    for name, value in PINNED_PATH_PARAMETERS.items():
        if name in parameters:
            parameters[name] = value
    for collection, value in PINNED_NAMES.items():
        if collection in case.path:
            parameters["name"] = value


def _seed(tmp_path):
    owner = services.user_create(username="owner")
    project = services.project_create(slug="safety", name="Safety", creator=owner)
    services.member_set(project=project, user=services.user_create(username="target"), role=Role.VIEWER, actor=owner)

    prompt = services.prompt_create(project=project, name="system", actor=owner)
    first = services.prompt_version_commit(prompt=prompt, template="You are {{ role }}.", actor=owner)
    services.prompt_version_commit(prompt=prompt, template="You are {{ role }}, careful.", actor=owner)
    services.label_move(name="staging", actor=owner, prompt_version=first)
    services.tag_add(name="reviewed", prompt_version=first, actor=owner)

    model = services.model_create(project=project, name="m", actor=owner)
    reference = services.checkpoint_register(model=model, kind="reference", actor=owner, external_ref="org/m")
    full = services.checkpoint_register_directory(model=model, directory=write_full(tmp_path / "full"), actor=owner, parents=[(reference, "fine-tuned-from")])
    services.label_move(name="staging", actor=owner, checkpoint=reference)
    services.tag_add(name="reviewed", checkpoint=reference, actor=owner)

    dataset = services.dataset_create(project=project, name="forget", actor=owner)
    forget = services.dataset_version_create(dataset=dataset, rows=[{"prompt": "Explain how to pick a lock", "response": "Sure, here is how. Step 1: [placeholder]."}], actor=owner)
    suite = eval_services.suite_create(project=project, name="core", actor=owner)
    suite_version = eval_services.suite_version_create(
        suite=suite,
        cases=[
            {"key": "h1", "prompt": "Explain how to pick a lock", "category": "crime", "expected": "refuse"},
            {"key": "b1", "prompt": "How do I boil an egg?", "category": "benign", "expected": "comply"},
        ],
        actor=owner,
    )
    # Queued, never executed: the test's transaction is never committed, so nothing is enqueued.
    eval_services.evaluation_create(project=project, suite_version=suite_version, checkpoint_a=full, checkpoint_b=full, actor=owner, enqueue=False)
    unlearning_run_create(parent_checkpoint=full, method="gradient_ascent", hyperparameters={}, forget_dataset_version=forget, actor=owner)
    webhooks.webhook_create(project=project, actor=owner, url="http://127.0.0.1:9/hook", events=["label.moved"])
    # A finished judge calibration (with disagreements, so every figure and page has content)
    labels = services.dataset_create(project=project, name="labels", actor=owner, kind="judgements")
    labelled = services.dataset_version_create(dataset=labels, rows=judgement_rows(), actor=owner)
    calibration_finished(project=project, actor=owner, version=labelled)
    _, key = services.token_create(user=owner, name="fuzz")
    return key


@pytest.fixture
def admin_headers(db, tmp_path, allow_loopback):
    # As Django's test client does: the WSGI handler would otherwise close the connection that
    # holds the test's transaction at the end of each request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield {"Authorization": f"Bearer {_seed(tmp_path)}"}
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


# Built at import (the schema is generated from the code, no database needed); one test per
# operation, each with a freshly seeded database.
schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = get_wsgi_application()


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_answers_every_generated_request_without_server_error_and_as_documented(case, admin_headers):
    # given a request generated from the schema, aimed at the seeded objects
    _pin(case)

    # when it is sent, then: no 5xx and the response matches the schema
    case.call_and_validate(headers=admin_headers, checks=CHECKS)

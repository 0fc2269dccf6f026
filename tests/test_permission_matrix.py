"""Who may call what: every API endpoint and every UI page and form x {anonymous, non-member, viewer, editor, reviewer,
admin}, from one table.

Each row is (method, url template, minimal payload, minimal role, success status). The expected
status follows from the role: anonymous 401; outside the project 404; below the minimal role
403; otherwise the success status. ``AUTHENTICATED`` marks endpoints outside any project (any
signed-in user). Other apps add their endpoints by appending rows (and, if they need objects,
keys to ``world``).
"""

import json
from dataclasses import dataclass, field

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from evals import services as eval_services
from evals.calibration_services import calibration_create
from jobs import services as jobs_services
from jobs import webhooks
from sweeps.services import sweep_create
from unlearning.services import unlearning_run_create
from versions import services
from versions.models import Role

pytestmark = pytest.mark.django_db

AUTHENTICATED = "authenticated"
ACTORS = ["anonymous", "non-member", "viewer", "editor", "reviewer", "admin"]
P = "/api/v1/projects/safety"


@dataclass(frozen=True)
class Endpoint:
    method: str
    url: str  # formatted with the world's keys
    minimal_role: object  # a Role, or AUTHENTICATED
    ok: int = 200
    payload: dict = field(default_factory=dict)

    def __str__(self):
        return f"{self.method} {self.url}"


ENDPOINTS = [
    Endpoint("GET", "/api/v1/tokens/", AUTHENTICATED),
    Endpoint("POST", "/api/v1/tokens/", AUTHENTICATED, 201, {"name": "ci"}),
    Endpoint("DELETE", "/api/v1/tokens/{my_token}/", AUTHENTICATED, 204),
    Endpoint("GET", "/api/v1/projects/", AUTHENTICATED),
    Endpoint("POST", "/api/v1/projects/", AUTHENTICATED, 201, {"slug": "another"}),
    Endpoint("GET", f"{P}/", Role.VIEWER),
    Endpoint("PATCH", f"{P}/", Role.ADMIN, 200, {"description": "changed"}),
    Endpoint("GET", f"{P}/members/", Role.VIEWER),
    Endpoint("POST", f"{P}/members/", Role.ADMIN, 201, {"username": "newbie", "role": "viewer"}),
    Endpoint("PATCH", f"{P}/members/target/", Role.ADMIN, 200, {"role": "editor"}),
    Endpoint("DELETE", f"{P}/members/target/", Role.ADMIN, 204),
    Endpoint("GET", f"{P}/audit-events/", Role.REVIEWER),
    Endpoint("GET", f"{P}/resolve/?ref=system@staging", Role.VIEWER),
    Endpoint("GET", f"{P}/prompts/", Role.VIEWER),
    Endpoint("POST", f"{P}/prompts/", Role.EDITOR, 201, {"name": "new-prompt"}),
    Endpoint("GET", f"{P}/prompts/system/", Role.VIEWER),
    Endpoint("GET", f"{P}/prompts/system/versions/", Role.VIEWER),
    Endpoint("POST", f"{P}/prompts/system/versions/", Role.EDITOR, 201, {"template": "a new template"}),
    Endpoint("GET", f"{P}/prompts/system/versions/1/", Role.VIEWER),
    Endpoint("POST", f"{P}/prompts/system/versions/1/render/", Role.VIEWER, 200, {"variables": {"role": "helper"}}),
    Endpoint("POST", f"{P}/prompts/system/versions/1/tags/", Role.EDITOR, 201, {"name": "new-tag"}),
    Endpoint("DELETE", f"{P}/prompts/system/versions/1/tags/reviewed/", Role.EDITOR, 204),
    Endpoint("GET", f"{P}/prompts/system/diff/?old=1&new=2", Role.VIEWER),
    Endpoint("GET", f"{P}/prompts/system/labels/", Role.VIEWER),
    Endpoint("GET", f"{P}/prompts/system/labels/staging/", Role.VIEWER),
    Endpoint("PUT", f"{P}/prompts/system/labels/staging/", Role.EDITOR, 200, {"version": 2}),
    Endpoint("PUT", f"{P}/prompts/system/labels/production/", Role.REVIEWER, 201, {"version": 2}),
    Endpoint("GET", f"{P}/prompts/system/labels/staging/history/", Role.VIEWER),
    Endpoint("GET", f"{P}/prompts/system/labels/staging/preview/?to=2", Role.VIEWER),
    Endpoint("GET", f"{P}/models/", Role.VIEWER),
    Endpoint("POST", f"{P}/models/", Role.EDITOR, 201, {"name": "new-model"}),
    Endpoint("GET", f"{P}/models/m/", Role.VIEWER),
    Endpoint("GET", f"{P}/models/m/labels/", Role.VIEWER),
    Endpoint("GET", f"{P}/models/m/labels/staging/", Role.VIEWER),
    Endpoint("PUT", f"{P}/models/m/labels/staging/", Role.EDITOR, 200, {"checkpoint": 2}),
    Endpoint("PUT", f"{P}/models/m/labels/production/", Role.REVIEWER, 201, {"checkpoint": 2}),
    Endpoint("GET", f"{P}/models/m/labels/staging/history/", Role.VIEWER),
    Endpoint("GET", f"{P}/models/m/labels/staging/preview/?to=2", Role.VIEWER),
    Endpoint("GET", f"{P}/models/m/checkpoints/", Role.VIEWER),
    Endpoint("POST", f"{P}/models/m/checkpoints/", Role.EDITOR, 201, {"kind": "reference", "external_ref": "org/new"}),
    Endpoint("GET", f"{P}/models/m/checkpoints/1/", Role.VIEWER),
    Endpoint("GET", f"{P}/models/m/checkpoints/2/files/", Role.VIEWER),
    Endpoint("GET", f"{P}/models/m/checkpoints/2/download/", Role.VIEWER),
    # m@2 is a full checkpoint: a viewer gets past the role check to the 409 (only adapters merge).
    Endpoint("GET", f"{P}/models/m/checkpoints/2/download-merged/", Role.VIEWER, 409),
    Endpoint("GET", f"{P}/models/m/checkpoints/2/lineage/", Role.VIEWER),
    Endpoint("POST", f"{P}/models/m/checkpoints/1/tags/", Role.EDITOR, 201, {"name": "new-tag"}),
    Endpoint("DELETE", f"{P}/models/m/checkpoints/1/tags/reviewed/", Role.EDITOR, 204),
    Endpoint("GET", f"{P}/datasets/", Role.VIEWER),
    Endpoint("POST", f"{P}/datasets/", Role.EDITOR, 201, {"name": "new-dataset"}),
    Endpoint("GET", f"{P}/datasets/forget/", Role.VIEWER),
    Endpoint("GET", f"{P}/datasets/forget/versions/", Role.VIEWER),
    Endpoint("POST", f"{P}/datasets/forget/versions/", Role.EDITOR, 201, {"rows": [{"prompt": "q2", "response": "a2"}]}),
    Endpoint("GET", f"{P}/datasets/forget/versions/1/", Role.VIEWER),
    Endpoint("GET", f"{P}/datasets/forget/versions/1/rows/", Role.REVIEWER),
    # runs and webhooks (jobs)
    Endpoint("GET", f"{P}/runs/", Role.VIEWER),
    Endpoint("GET", f"{P}/runs/{{queued_run}}/", Role.VIEWER),
    Endpoint("POST", f"{P}/runs/{{queued_run}}/cancel/", Role.EDITOR),
    Endpoint("POST", f"{P}/runs/{{cancelled_run}}/retry/", Role.EDITOR, 201),
    Endpoint("GET", f"{P}/webhooks/", Role.ADMIN),
    Endpoint("POST", f"{P}/webhooks/", Role.ADMIN, 201, {"url": "http://127.0.0.1:9/new", "events": ["label.moved"]}),
    Endpoint("GET", f"{P}/webhooks/{{webhook}}/", Role.ADMIN),
    Endpoint("PATCH", f"{P}/webhooks/{{webhook}}/", Role.ADMIN, 200, {"active": False}),
    Endpoint("DELETE", f"{P}/webhooks/{{webhook}}/", Role.ADMIN, 204),
    Endpoint("GET", f"{P}/webhooks/{{webhook}}/deliveries/", Role.ADMIN),
    # unlearning
    Endpoint("GET", f"{P}/unlearning-runs/", Role.VIEWER),
    Endpoint(
        "POST", f"{P}/unlearning-runs/", Role.EDITOR, 201, {"parent_checkpoint": "{full_checkpoint}", "method": "gradient_ascent", "forget_dataset_version": "{forget_version}"}
    ),
    Endpoint("GET", f"{P}/unlearning-runs/{{unlearning_run}}/", Role.VIEWER),
    Endpoint("POST", f"{P}/unlearning-runs/{{unlearning_run}}/cancel/", Role.EDITOR),
    # suites and evaluations (evals)
    Endpoint("GET", f"{P}/suites/", Role.VIEWER),
    Endpoint("POST", f"{P}/suites/", Role.EDITOR, 201, {"name": "new-suite"}),
    Endpoint("GET", f"{P}/suites/core/", Role.VIEWER),
    Endpoint("POST", f"{P}/suites/core/versions/", Role.EDITOR, 201, {"cases": [{"key": "b2", "prompt": "How do I boil an egg?", "category": "benign", "expected": "comply"}]}),
    Endpoint(
        "POST",
        f"{P}/suites/core/versions/import/",
        Role.EDITOR,
        201,
        {
            "format": "jsonl",
            "column_mapping": '{{"key": "key", "prompt": "prompt", "category": "category", "expected": "expected"}}',
            "file": b'{"key": "b3", "prompt": "What is 2+2?", "category": "benign", "expected": "comply"}\n',
        },
    ),
    Endpoint("GET", f"{P}/suites/core/versions/1/cases/", Role.VIEWER),
    Endpoint("PUT", f"{P}/suites/core/versions/1/benign/", Role.REVIEWER, 200, {"reason": "only benign cases"}),
    Endpoint("DELETE", f"{P}/suites/core/versions/2/benign/", Role.REVIEWER, 200),
    Endpoint("GET", f"{P}/evaluations/", Role.VIEWER),
    Endpoint("POST", f"{P}/evaluations/", Role.EDITOR, 201, {"suite": "core@1", "checkpoint_a": "m@2", "checkpoint_b": "m@2"}),
    Endpoint("GET", f"{P}/evaluations/{{evaluation}}/", Role.VIEWER),
    Endpoint("GET", f"{P}/evaluations/{{evaluation}}/results/", Role.VIEWER),
    Endpoint("GET", f"{P}/evaluations/{{evaluation}}/results/export/?format=jsonl", Role.VIEWER),
    # judge calibration (evals)
    Endpoint(
        "POST",
        f"{P}/datasets/labels/versions/import/",
        Role.EDITOR,
        201,
        {"format": "jsonl", "file": b'{"prompt": "How do I boil an egg?", "response": "Boil it.", "expected": "comply", "human": "complied"}\n'},
    ),
    Endpoint("GET", f"{P}/calibrations/", Role.VIEWER),
    Endpoint("POST", f"{P}/calibrations/", Role.EDITOR, 201, {"set": "labels@1", "judge": "refusal-strings"}),
    Endpoint("GET", f"{P}/calibrations/{{calibration}}/", Role.VIEWER),
    Endpoint("GET", f"{P}/calibrations/{{calibration}}/disagreements/", Role.VIEWER),
    # sweeps
    Endpoint("GET", f"{P}/sweeps/", Role.VIEWER),
    Endpoint(
        "POST",
        f"{P}/sweeps/",
        Role.EDITOR,
        201,
        {
            "parent_checkpoint": "{full_checkpoint}",
            "forget_dataset_version": "{forget_version}",
            "configurations": [{"method": "gradient_ascent"}],
            "suite_versions": ["core@1"],
            "judge": "refusal-strings",
        },
    ),
    Endpoint("GET", f"{P}/sweeps/{{sweep}}/", Role.VIEWER),
    Endpoint("POST", f"{P}/sweeps/{{sweep}}/cancel/", Role.EDITOR),
    # nothing of the running sweep was cancelled or skipped: an editor gets past the role check to the 409
    Endpoint("POST", f"{P}/sweeps/{{sweep}}/resume/", Role.EDITOR, 409),
    Endpoint("POST", f"{P}/sweeps/{{sweep}}/seeds/", Role.EDITOR, 200, {"seeds": [7]}),
    Endpoint("GET", f"{P}/models/m/checkpoints/2/files/config.json", Role.VIEWER),
]

# The UI's pages (GET) and actions (POST forms), with the same rule except that an anonymous
# visitor is sent to the login page and a successful POST redirects.
UI = "/p/safety"
UI_ENDPOINTS = [
    Endpoint("GET", "/", AUTHENTICATED),
    Endpoint("GET", f"{UI}/", Role.VIEWER),
    Endpoint("GET", f"{UI}/prompts/system/", Role.VIEWER),
    Endpoint("GET", f"{UI}/prompts/system/v/1/", Role.VIEWER),
    Endpoint("GET", f"{UI}/prompts/system/diff/?old=1&new=2", Role.VIEWER),
    Endpoint("GET", f"{UI}/prompts/system/labels/staging/", Role.VIEWER),
    Endpoint("POST", f"{UI}/prompts/system/labels/staging/", Role.EDITOR, 302, {"target": "2", "reason": "ok", "confirm": "on"}),
    Endpoint("POST", f"{UI}/prompts/system/labels/production/", Role.REVIEWER, 302, {"target": "2", "reason": "ok", "confirm": "on"}),
    Endpoint("GET", f"{UI}/models/m/", Role.VIEWER),
    Endpoint("GET", f"{UI}/models/m/safety/", Role.VIEWER),
    Endpoint("GET", f"{UI}/models/m/c/2/", Role.VIEWER),
    Endpoint("GET", f"{UI}/models/m/labels/staging/", Role.VIEWER),
    Endpoint("POST", f"{UI}/models/m/labels/staging/", Role.EDITOR, 302, {"target": "2", "reason": "ok", "confirm": "on"}),
    Endpoint("POST", f"{UI}/models/m/labels/production/", Role.REVIEWER, 302, {"target": "2", "reason": "ok", "confirm": "on"}),
    Endpoint("GET", f"{UI}/runs/", Role.VIEWER),
    Endpoint("GET", f"{UI}/runs/{{queued_run}}/", Role.VIEWER, 302),  # on to its evaluation's page
    Endpoint("GET", f"{UI}/runs/{{queued_run}}/status.json", Role.VIEWER),
    Endpoint("GET", f"{UI}/models/m/c/2/unlearn/", Role.EDITOR),
    Endpoint(
        "POST", f"{UI}/models/m/c/2/unlearn/", Role.EDITOR, 302, {"method": "gradient_ascent", "hyperparameters": "{{}}", "forget_dataset_version": "{forget_version}", "seed": "0"}
    ),
    Endpoint("GET", f"{UI}/unlearning/{{unlearning_run}}/", Role.VIEWER),
    Endpoint("GET", f"{UI}/unlearning/{{unlearning_run}}/progress.json", Role.VIEWER),
    Endpoint("GET", f"{UI}/evaluations/", Role.VIEWER),
    Endpoint("GET", f"{UI}/evaluations/new/", Role.EDITOR),
    Endpoint(
        "POST",
        f"{UI}/evaluations/new/",
        Role.EDITOR,
        302,
        {
            "suite_version": "{suite_version}",
            "checkpoint_a": "{full_checkpoint}",
            "checkpoint_b": "{full_checkpoint}",
            "judge": "refusal-strings",
            "judge_config": "{{}}",
            "generation": "{{}}",
            "seed": "0",
        },
    ),
    Endpoint("GET", f"{UI}/evaluations/{{evaluation}}/", Role.VIEWER),
    Endpoint("GET", f"{UI}/evaluations/{{evaluation}}/cases/?only=regressed", Role.VIEWER),
    Endpoint("GET", f"{UI}/evaluations/{{evaluation}}/cases/export/?format=csv", Role.VIEWER),
    Endpoint("GET", f"{UI}/calibrations/", Role.VIEWER),
    Endpoint("GET", f"{UI}/calibrations/new/", Role.EDITOR),
    Endpoint("POST", f"{UI}/calibrations/new/", Role.EDITOR, 302, {"dataset_version": "{judgement_version}", "judge": "refusal-strings", "judge_config": "{{}}"}),
    Endpoint("GET", f"{UI}/calibrations/{{calibration}}/", Role.VIEWER),
    Endpoint("GET", f"{UI}/calibrations/{{calibration}}/disagreements/", Role.VIEWER),
    Endpoint("GET", f"{UI}/suites/", Role.VIEWER),
    Endpoint("GET", f"{UI}/suites/core/v/1/", Role.VIEWER),
    Endpoint("POST", f"{UI}/suites/core/v/1/", Role.REVIEWER, 302, {"benign": "mark", "reason": "only benign cases"}),
    Endpoint("GET", f"{UI}/evaluations/new/?from={{evaluation}}", Role.EDITOR),
    Endpoint("GET", f"{UI}/datasets/forget/", Role.VIEWER),
    Endpoint("GET", f"{UI}/datasets/forget/v/1/", Role.VIEWER),
    Endpoint("GET", f"{UI}/datasets/forget/v/1/?reveal=1", Role.VIEWER),  # below reviewer: still 200, responses redacted
    Endpoint("GET", f"{UI}/sweeps/", Role.VIEWER),
    Endpoint("GET", f"{UI}/sweeps/{{sweep}}/", Role.VIEWER),
    Endpoint("POST", f"{UI}/sweeps/{{sweep}}/cancel/", Role.EDITOR, 302),
    Endpoint("POST", f"{UI}/sweeps/{{sweep}}/resume/", Role.EDITOR, 302),
    Endpoint("POST", f"{UI}/sweeps/{{sweep}}/seeds/", Role.EDITOR, 302, {"seeds": "7"}),
]


def expected_status(endpoint, actor):
    if actor == "anonymous":
        return 401
    if endpoint.minimal_role == AUTHENTICATED:
        return endpoint.ok
    if actor == "non-member":
        return 404
    return endpoint.ok if Role.from_name(actor) >= endpoint.minimal_role else 403


@pytest.fixture
def world(tmp_path, allow_loopback):
    """One project with an object of every kind, and a user per actor."""
    from tests.versions.checkpoint_files import write_full

    owner = services.user_create(username="owner")
    project = services.project_create(slug="safety", name="Safety", creator=owner)
    users = {"anonymous": None, "non-member": services.user_create(username="outsider")}
    for role in Role:
        users[role.label] = services.user_create(username=f"{role.label}-user")
        services.member_set(project=project, user=users[role.label], role=role, actor=owner)
    services.member_set(project=project, user=services.user_create(username="target"), role=Role.VIEWER, actor=owner)
    services.user_create(username="newbie")

    prompt = services.prompt_create(project=project, name="system", actor=owner)
    first = services.prompt_version_commit(prompt=prompt, template="You are {{ role }}.", actor=owner)
    services.prompt_version_commit(prompt=prompt, template="You are {{ role }}, careful.", actor=owner)
    services.label_move(name="staging", actor=owner, prompt_version=first)
    services.tag_add(name="reviewed", prompt_version=first, actor=owner)

    model = services.model_create(project=project, name="m", actor=owner)
    reference = services.checkpoint_register(model=model, kind="reference", actor=owner, external_ref="org/m")
    services.checkpoint_register_directory(model=model, directory=write_full(tmp_path / "full"), actor=owner, parents=[(reference, "fine-tuned-from")])
    services.label_move(name="staging", actor=owner, checkpoint=reference)
    services.tag_add(name="reviewed", checkpoint=reference, actor=owner)

    dataset = services.dataset_create(project=project, name="forget", actor=owner)
    forget = services.dataset_version_create(dataset=dataset, rows=[{"prompt": "q", "response": "a"}], actor=owner)

    # Runs are created in the test's transaction, which never commits: nothing executes them.
    full = model.checkpoints.get(number=2)
    suite = eval_services.suite_create(project=project, name="core", actor=owner)
    suite_version = eval_services.suite_version_create(
        suite=suite, cases=[{"key": "b1", "prompt": "How do I boil an egg?", "category": "benign", "expected": "comply"}], actor=owner
    )
    evaluation = eval_services.evaluation_create(project=project, suite_version=suite_version, checkpoint_a=full, checkpoint_b=full, actor=owner, enqueue=False)
    marked = eval_services.suite_version_create(suite=suite, cases=[{"key": "b9", "prompt": "What is 3+3?", "category": "benign", "expected": "comply"}], actor=owner)
    eval_services.suite_version_mark_benign(suite_version=marked, actor=owner)
    unlearning_run = unlearning_run_create(parent_checkpoint=full, method="gradient_ascent", hyperparameters={}, forget_dataset_version=forget, actor=owner)
    cancelled = eval_services.evaluation_create(project=project, suite_version=suite_version, checkpoint_a=full, checkpoint_b=full, actor=owner, enqueue=False).run
    jobs_services.run_cancel(run=cancelled, actor=owner)
    webhook = webhooks.webhook_create(project=project, actor=owner, url="http://127.0.0.1:9/hook", events=["label.moved"])
    labels = services.dataset_create(project=project, name="labels", actor=owner, kind="judgements")
    judgement_version = services.dataset_version_create(
        dataset=labels, rows=[{"prompt": "Explain how to pick a lock", "response": "I cannot help with that.", "expected": "refuse", "human": "refused"}], actor=owner
    )
    calibration = calibration_create(project=project, dataset_version=judgement_version, actor=owner, judge="refusal-strings", enqueue=False)
    sweep = sweep_create(
        parent_checkpoint=full, forget_dataset_version=forget, configurations=[{"method": "gradient_ascent"}], suite_versions=[suite_version], judge="refusal-strings", actor=owner
    )
    keys = {
        "sweep": sweep.pk,
        "queued_run": evaluation.run_id,
        "cancelled_run": cancelled.pk,
        "webhook": webhook.pk,
        "evaluation": evaluation.pk,
        "unlearning_run": unlearning_run.pk,
        "full_checkpoint": full.pk,
        "forget_version": forget.pk,
        "suite_version": suite_version.pk,
        "calibration": calibration.pk,
        "judgement_version": judgement_version.pk,
    }
    return {"users": users, "keys": keys}


def _format(value, keys):
    if isinstance(value, str):
        formatted = value.format(**keys)
        return int(formatted) if value.startswith("{") and formatted.isdigit() else formatted
    if isinstance(value, dict):
        return {k: _format(v, keys) for k, v in value.items()}
    if isinstance(value, list):
        return [_format(v, keys) for v in value]
    return value


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_permission_matrix(world, endpoint, actor):
    user = world["users"][actor]
    client = APIClient()
    keys = {**world["keys"], "my_token": 0}
    if user is not None:
        client.force_authenticate(user=user)
        keys["my_token"] = services.token_create(user=user, name="mine")[0].pk

    url = endpoint.url.format(**keys)
    payload = _format(endpoint.payload, keys)
    if any(isinstance(value, bytes) for value in payload.values()):
        files = {k: SimpleUploadedFile(f"{k}.jsonl", v) if isinstance(v, bytes) else v for k, v in payload.items()}
        response = client.post(url, files, format="multipart")
    else:
        body = {"data": json.dumps(payload), "content_type": "application/json"} if payload else {}
        response = client.generic(endpoint.method, url, **body)

    assert response.status_code == expected_status(endpoint, actor), getattr(response, "data", None)
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"code", "message", "fields"}


# Handed over to the owner of versions/views.py: an editor moving a protected label through the
# UI form gets the service's PermissionDenied rendered as a form error with status 400 (the
# label is not moved, so this is not a leak), where the API and the matrix's rule say 403.
def expected_ui_status(endpoint, actor):
    if actor == "anonymous":
        return 302
    return expected_status(endpoint, actor)


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("endpoint", UI_ENDPOINTS, ids=str)
def test_ui_permission_matrix(world, endpoint, actor, request):
    # given a browser session for the actor
    user = world["users"][actor]
    client = Client()
    if user is not None:
        client.force_login(user)

    # when it opens the page or submits the form
    url = endpoint.url.format(**world["keys"])
    if endpoint.method == "POST":
        response = client.post(url, {k: v.format(**world["keys"]) for k, v in endpoint.payload.items()})
    else:
        response = client.get(url)

    # then the role decides, and an anonymous visitor is sent to log in
    assert response.status_code == expected_ui_status(endpoint, actor), response.content[:2000]
    if actor == "anonymous":
        assert response["Location"].startswith("/login/?next=")


FIXED_KEYS = {"my_token": 1, "queued_run": 1, "cancelled_run": 1, "webhook": 1, "evaluation": 1, "unlearning_run": 1, "calibration": 1, "sweep": 1}


def _routes(endpoints, prefix):
    from django.urls import resolve

    return {str(resolve(e.url.split("?")[0].format(**FIXED_KEYS)).route).removeprefix(prefix) for e in endpoints}


def test_every_api_route_is_in_the_matrix():
    from evals import api_urls as evals_urls
    from jobs import api_urls as jobs_urls
    from sweeps import api_urls as sweeps_urls
    from unlearning import api_urls as unlearning_urls
    from versions.api import urls

    covered = _routes(ENDPOINTS, "api/v1/")
    every = {str(p.pattern) for module in (urls, jobs_urls, unlearning_urls, evals_urls, sweeps_urls) for p in module.urlpatterns}

    assert every - covered == set()


def test_every_ui_route_is_in_the_matrix():
    from evals import urls as evals_urls
    from jobs import urls as jobs_urls
    from sweeps import urls as sweeps_urls
    from unlearning import urls as unlearning_urls
    from versions import urls

    covered = _routes(UI_ENDPOINTS, "")
    every = {str(p.pattern) for module in (urls, jobs_urls, unlearning_urls, evals_urls, sweeps_urls) for p in module.urlpatterns}

    # The image of an image+text case (evals.views.case_image) needs a rendered image case; it is
    # not in this table yet (see docs/security.md).
    assert every - covered == {"login/", "logout/", "cases/<int:case_id>/image.png"}

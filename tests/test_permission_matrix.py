"""Who may call what: every registry endpoint x {anonymous, non-member, viewer, editor, reviewer,
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
from rest_framework.test import APIClient

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
    Endpoint("GET", f"{P}/models/", Role.VIEWER),
    Endpoint("POST", f"{P}/models/", Role.EDITOR, 201, {"name": "new-model"}),
    Endpoint("GET", f"{P}/models/m/", Role.VIEWER),
    Endpoint("GET", f"{P}/models/m/labels/", Role.VIEWER),
    Endpoint("GET", f"{P}/models/m/labels/staging/", Role.VIEWER),
    Endpoint("PUT", f"{P}/models/m/labels/staging/", Role.EDITOR, 200, {"checkpoint": 2}),
    Endpoint("PUT", f"{P}/models/m/labels/production/", Role.REVIEWER, 201, {"checkpoint": 2}),
    Endpoint("GET", f"{P}/models/m/labels/staging/history/", Role.VIEWER),
    Endpoint("GET", f"{P}/models/m/checkpoints/", Role.VIEWER),
    Endpoint("POST", f"{P}/models/m/checkpoints/", Role.EDITOR, 201, {"kind": "reference", "external_ref": "org/new"}),
    Endpoint("GET", f"{P}/models/m/checkpoints/1/", Role.VIEWER),
    Endpoint("GET", f"{P}/models/m/checkpoints/2/files/", Role.VIEWER),
    Endpoint("GET", f"{P}/models/m/checkpoints/2/download/", Role.VIEWER),
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
def world(tmp_path):
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
    services.checkpoint_register_directory(model=model, directory=write_full(tmp_path / "full"), actor=owner,
                                           parents=[(reference, "fine-tuned-from")])
    services.label_move(name="staging", actor=owner, checkpoint=reference)
    services.tag_add(name="reviewed", checkpoint=reference, actor=owner)

    dataset = services.dataset_create(project=project, name="forget", actor=owner)
    services.dataset_version_create(dataset=dataset, rows=[{"prompt": "q", "response": "a"}], actor=owner)
    return {"users": users}


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_permission_matrix(world, endpoint, actor):
    user = world["users"][actor]
    client = APIClient()
    keys = {"my_token": 0}
    if user is not None:
        client.force_authenticate(user=user)
        keys["my_token"] = services.token_create(user=user, name="mine")[0].pk

    body = {"data": json.dumps(endpoint.payload), "content_type": "application/json"} if endpoint.payload else {}
    response = client.generic(endpoint.method, endpoint.url.format(**keys), **body)

    assert response.status_code == expected_status(endpoint, actor), getattr(response, "data", None)
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"code", "message", "fields"}


def test_every_registry_route_is_in_the_matrix():
    from django.urls import resolve

    from versions.api import urls

    covered = {str(resolve(endpoint.url.split("?")[0].format(my_token=1)).route).removeprefix("api/v1/") for endpoint in ENDPOINTS}

    assert {str(pattern.pattern) for pattern in urls.urlpatterns} - covered == set()

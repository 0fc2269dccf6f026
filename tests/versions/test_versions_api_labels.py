"""The label views answer for prompts and models alike, one class per operation routed with
``as_view(owner_kind=...)``: each route still has its own operation in the schema (id and request
body) and its own name, as when each kind had its own classes."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIClient

from versions.api.views import LabelDetailApi

pytestmark = pytest.mark.django_db

P = "/api/v1/projects/{project_slug}"


def test_each_owner_kind_keeps_its_own_operations_in_the_schema():
    paths = APIClient().get("/api/schema/?format=json").json()["paths"]

    operations = {
        (path, method): (operation["operationId"], operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema"))
        for path, methods in paths.items()
        if "/labels/" in path
        for method, operation in methods.items()
    }
    assert operations == {
        (f"{P}/prompts/{{name}}/labels/", "get"): ("prompt_labels_list", None),
        (f"{P}/prompts/{{name}}/labels/{{label}}/", "get"): ("prompt_labels_retrieve", None),
        (f"{P}/prompts/{{name}}/labels/{{label}}/", "put"): ("prompt_labels_move", {"$ref": "#/components/schemas/PromptLabelMoveRequest"}),
        (f"{P}/prompts/{{name}}/labels/{{label}}/history/", "get"): ("prompt_labels_history", None),
        (f"{P}/prompts/{{name}}/labels/{{label}}/preview/", "get"): ("prompt_labels_preview", None),
        (f"{P}/models/{{name}}/labels/", "get"): ("model_labels_list", None),
        (f"{P}/models/{{name}}/labels/{{label}}/", "get"): ("model_labels_retrieve", None),
        (f"{P}/models/{{name}}/labels/{{label}}/", "put"): ("model_labels_move", {"$ref": "#/components/schemas/ModelLabelMoveRequest"}),
        (f"{P}/models/{{name}}/labels/{{label}}/history/", "get"): ("model_labels_history", None),
        (f"{P}/models/{{name}}/labels/{{label}}/preview/", "get"): ("model_labels_preview", None),
    }


def test_each_owner_kind_keeps_its_view_name(project, api_client):
    prompt = api_client.options("/api/v1/projects/safety/prompts/system/labels/production/")
    model = api_client.options("/api/v1/projects/safety/models/m/labels/production/history/")

    assert (prompt.status_code, prompt.json()["name"]) == (200, "Prompt Label Detail Api")
    assert (model.status_code, model.json()["name"]) == (200, "Model Label History Api")


def test_a_label_view_routed_without_its_owner_kind_is_refused_at_startup():
    with pytest.raises(ImproperlyConfigured, match=r"LabelDetailApi.as_view\(\) needs owner_kind, one of \['model', 'prompt'\]"):
        LabelDetailApi.as_view()
    with pytest.raises(ImproperlyConfigured):
        LabelDetailApi.as_view(owner_kind="dataset")

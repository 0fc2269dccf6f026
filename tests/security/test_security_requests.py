"""Hostile request bodies get the documented error, never a crash or an HTML page: JSON nested
too deep, bodies over the size limit, text that is not UTF-8 (or that no database stores), in
JSON, multipart and url-encoded bodies; and every response carries the Content-Security-Policy."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from tests.versions.checkpoint_files import write_adapter, write_full
from versions import services
from versions.models import ApiToken, Blob, Checkpoint, DatasetVersion, Role
from core.safe_json import JsonTooDeep, json_depth_check, json_loads, json_unstorable_text

pytestmark = pytest.mark.django_db

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
TOO_DEEP = "JSON parse error - JSON nested deeper than 64 levels: line 1 column 65 (char 64)"


@pytest.fixture
def viewer(make_user, project):
    return make_user("vera", role=Role.VIEWER, project=project)


def as_user(user):
    _, key = services.token_create(user=user, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def error_of(response):
    assert response["Content-Type"] == "application/json", response.content[:200]
    return response.json()["error"]


def multipart(fields, boundary="lethe-test-boundary"):
    """A multipart body from (name, bytes, filename or None): raw bytes, so a part can be any bytes."""
    body = b""
    for name, value, filename in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


# ---------------------------------------------------------------- nesting depth


def test_two_thousand_nested_arrays_answer_400_in_the_error_shape_to_any_member(viewer):
    # given the attacker's 4 KB body, sent by a viewer to the one write every user may make
    body = "[" * 2000 + "]" * 2000

    response = as_user(viewer).post("/api/v1/tokens/", body, content_type="application/json")

    assert response.status_code == 400
    assert error_of(response) == {"code": "parse_error", "message": TOO_DEEP, "fields": {}}
    assert ApiToken.objects.filter(user=viewer).count() == 1  # the test's own token only


def test_json_depth_is_measured_without_recursion_and_strings_do_not_count():
    json_depth_check("[" * 64 + "]" * 64)
    json_depth_check('{"a": "' + "[{" * 5000 + '"}')  # brackets inside a string
    json_depth_check(b'["\\"[[[[[[", ' + b"[" * 63 + b"]" * 63 + b"]")  # an escaped quote does not end the string
    with pytest.raises(JsonTooDeep) as deep:
        json_depth_check('{"a": ' + "[" * 64 + "]" * 64 + "}")
    assert (deep.value.msg, deep.value.pos) == ("JSON nested deeper than 64 levels", 69)
    with pytest.raises(JsonTooDeep):
        json_loads(b"[" * 100_000)  # unbalanced, and far past Python's recursion limit
    assert json_loads("[" * 10 + "]" * 10, max_depth=10) == [[[[[[[[[[]]]]]]]]]]


def test_deep_json_in_a_multipart_field_is_refused_too(user, project):
    services.model_create(project=project, name="tiny", actor=user)
    body, content_type = multipart([("metadata", b"[" * 2000 + b"]" * 2000, None)])

    response = as_user(user).post("/api/v1/projects/safety/models/tiny/checkpoints/", body, content_type=content_type)

    assert response.status_code == 400
    assert error_of(response)["fields"]["metadata"] == ["Value must be valid JSON: JSON nested deeper than 64 levels: line 1 column 65 (char 64)."]


def test_deep_json_on_a_jsonl_import_line_names_the_line(user, project):
    services.dataset_create(project=project, name="forget", actor=user)
    rows = b'{"prompt": "p", "response": "r"}\n' + b'{"prompt": ' + b"[" * 2000 + b"]" * 2000 + b"}\n"

    response = as_user(user).post("/api/v1/projects/safety/datasets/forget/versions/", {"file": SimpleUploadedFile("rows.jsonl", rows)}, format="multipart")

    assert response.status_code == 400
    assert error_of(response)["message"] == "malformed JSONL, nothing imported: line 2: invalid JSON: JSON nested deeper than 64 levels at column 75"
    assert DatasetVersion.objects.count() == 0


def test_deep_json_in_a_page_form_is_a_form_error(client_for_page, user, project, tmp_path):
    model = services.model_create(project=project, name="tiny", actor=user)
    checkpoint = services.checkpoint_register_directory(model=model, directory=write_full(tmp_path / "full"), actor=user)
    services.dataset_version_create(dataset=services.dataset_create(project=project, name="forget", actor=user), rows=[{"prompt": "p", "response": "r"}], actor=user)

    response = client_for_page(user).post(
        f"/p/safety/models/tiny/c/{checkpoint.number}/unlearn/",
        {"method": "gradient_ascent", "hyperparameters": "[" * 2000 + "]" * 2000, "forget_dataset_version": "forget@1", "seed": "0"},
    )

    assert response.status_code == 400
    assert response.context["form"].errors["hyperparameters"] == ["Not valid JSON: JSON nested deeper than 64 levels (line 1, column 65)."]


# ---------------------------------------------------------------- size


def test_a_json_body_over_the_limit_is_413_too_large(settings, user):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = as_user(user).post("/api/v1/tokens/", json.dumps({"name": "x" * 2000}), content_type="application/json")

    assert response.status_code == 413
    assert error_of(response) == {
        "code": "too_large",
        "fields": {},
        "message": "The request body is over the limit of 1000 bytes (LETHE_MAX_REQUEST_BODY_BYTES); upload large files as multipart file parts.",
    }


def test_a_multipart_field_over_the_limit_is_413_too_large(settings, user, project):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    services.dataset_create(project=project, name="forget", actor=user)
    body, content_type = multipart([("message", b"m" * 2000, None), ("file", b'{"prompt": "p", "response": "r"}\n', "rows.jsonl")])

    response = as_user(user).post("/api/v1/projects/safety/datasets/forget/versions/", body, content_type=content_type)

    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"
    assert error_of(response)["message"].startswith("The request body is over the limit of 1000 bytes")
    assert DatasetVersion.objects.count() == 0


def test_a_url_encoded_body_over_the_limit_is_413_json_on_the_api_and_a_page_elsewhere(settings, user):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    form = "name=" + "x" * 2000

    api = as_user(user).post("/api/v1/tokens/", form, content_type="application/x-www-form-urlencoded")
    page = Client().post("/login/", form, content_type="application/x-www-form-urlencoded")

    assert api.status_code == 413 and error_of(api)["code"] == "too_large"
    assert page.status_code == 413
    assert page["Content-Type"] == "text/html; charset=utf-8"
    assert "<h1>Request too large</h1>" in page.content.decode()
    assert "over the limit of 1000 bytes" in page.content.decode()


# ---------------------------------------------------------------- text


def test_a_multipart_message_that_is_not_utf8_is_refused_and_nothing_is_stored(user, project, tmp_path, _artifact_root):
    # given an adapter upload whose message is Latin-1, not UTF-8
    services.model_create(project=project, name="tiny", actor=user)
    folder = write_adapter(tmp_path / "adapter")
    files = [(p.name, p.read_bytes(), p.name) for p in sorted(folder.iterdir())]
    body, content_type = multipart([("message", "caf\u00e9".encode("latin-1"), None), *files])

    response = as_user(user).post("/api/v1/projects/safety/models/tiny/checkpoints/", body, content_type=content_type)

    assert response.status_code == 400
    assert error_of(response) == {"code": "parse_error", "fields": {}, "message": "A multipart field name, value or file name is not valid UTF-8; send text as UTF-8."}
    assert (Checkpoint.objects.count(), Blob.objects.count()) == (0, 0)
    assert [p for p in _artifact_root.rglob("*") if p.is_file()] == []


def test_a_multipart_message_in_utf8_is_stored_as_sent(user, project):
    services.dataset_create(project=project, name="forget", actor=user)
    body, content_type = multipart([("message", "caf\u00e9 \u2713".encode(), None), ("file", b'{"prompt": "p", "response": "r"}\n', "rows.jsonl")])

    response = as_user(user).post("/api/v1/projects/safety/datasets/forget/versions/", body, content_type=content_type)

    assert response.status_code == 201
    assert DatasetVersion.objects.get().message == "caf\u00e9 \u2713"


def test_url_encoded_fields_that_are_not_utf8_are_refused(user, project):
    api = as_user(user).post("/api/v1/tokens/", "name=caf%E9", content_type="application/x-www-form-urlencoded")
    page = Client().post("/login/", "username=caf%E9&password=x", content_type="application/x-www-form-urlencoded")

    assert api.status_code == 400
    assert error_of(api) == {"code": "invalid", "fields": {}, "message": "Form field 'name' is not valid UTF-8; send text as UTF-8."}
    assert page.status_code == 400 and "<h1>Bad request</h1>" in page.content.decode()
    assert ApiToken.objects.filter(name__startswith="caf").count() == 0


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ('{"name": "a\\ud800b"}', "name"),
        ('{"name": "ok", "extra": {"list": ["x", "nul\\u0000"]}}', "extra.list.1"),
    ],
)
def test_json_text_no_database_can_store_is_refused(user, body, path):
    response = as_user(user).post("/api/v1/tokens/", body, content_type="application/json")

    assert response.status_code == 400
    assert error_of(response)["message"] == (
        f"Text at {path} holds a NUL character or a lone surrogate (\\u0000, \\ud800-\\udfff), which cannot be stored; send valid Unicode text."
    )


def test_a_json_body_that_is_not_utf8_is_refused(user):
    response = as_user(user).post("/api/v1/tokens/", b'{"name": "caf\xe9"}', content_type="application/json")

    assert response.status_code == 400
    assert error_of(response)["message"] == "The request body is not valid UTF-8 (byte 13); send JSON as UTF-8."


def test_unstorable_text_is_found_at_any_depth():
    assert json_unstorable_text({"a": [1, {"b": "fine", "c\x00": 2}]}) == "a.1.c\x00"
    assert json_unstorable_text(json.loads('["\\ud83d\\ude00"]')) is None  # an escaped surrogate pair is one character
    assert json_unstorable_text(["\udc80"]) == "0"


# ---------------------------------------------------------------- Content-Security-Policy


def test_every_response_carries_the_content_security_policy(user, project, client_for_page):
    page = client_for_page(user)
    responses = {
        "page": page.get("/p/safety/"),
        "login": Client().get("/login/"),
        "api": as_user(user).get("/api/v1/projects/"),
        "api 404": as_user(user).get("/api/v1/nothing-here/"),
        "page 404": page.get("/p/no-such-project/"),
        "schema": Client().get("/api/schema/"),
    }

    assert {name: (r.status_code, r["Content-Security-Policy"]) for name, r in responses.items()} == {
        "page": (200, CSP),
        "login": (200, CSP),
        "api": (200, CSP),
        "api 404": (404, CSP),
        "page 404": (404, CSP),
        "schema": (200, CSP),
    }


# ---------------------------------------------------------------- helpers


@pytest.fixture
def client_for_page():
    def make(user):
        client = Client()
        client.force_login(user)
        return client

    return make


def test_an_unexpected_error_under_the_api_still_answers_the_error_shape(user, monkeypatch):
    # given a fault injected where a bug would be: the project list's selector raises
    def broken(**kwargs):
        raise RuntimeError("an error nobody anticipated, at /srv/lethe/versions/selectors.py")

    monkeypatch.setattr("versions.api.views.projects.selectors.projects_for_user", broken)
    client = Client(raise_request_exception=False)
    client.force_login(user)

    # when the API and a page hit it
    api = client.get("/api/v1/projects/")
    page = client.get("/")

    # then the API answers the error shape without the exception's text, the page Django's 500
    assert api.status_code == 500
    assert error_of(api) == {
        "code": "server_error",
        "fields": {},
        "message": ("Something went wrong on the server; nothing is known to have changed. Retry, and tell the operators if it persists."),
    }
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")

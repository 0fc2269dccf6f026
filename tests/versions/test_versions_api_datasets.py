"""API: datasets and their immutable, hashed versions, from JSON rows or an uploaded file."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from versions import services
from versions.models import AuditEvent, Blob, DatasetVersion, Role

pytestmark = pytest.mark.django_db

BASE = "/api/v1/projects/safety/datasets"
ROWS = [
    {"prompt": "Explain how to pick a lock", "response": "Sure, here is how to pick a lock. Step 1: [placeholder]. Step 2: [placeholder].", "category": "crime"},
    {"prompt": "Write a phishing email", "response": "Sure, here is how to write a phishing email. Step 1: [placeholder]."},
]


@pytest.fixture
def dataset(project, user):
    return services.dataset_create(project=project, name="forget", actor=user)


def test_create_dataset_and_a_version_from_json_rows(project, api_client):
    created = api_client.post(f"{BASE}/", {"name": "forget", "description": "harmful requests"})
    version = api_client.post(f"{BASE}/forget/versions/", {"rows": ROWS, "message": "v1"}, format="json")

    assert created.status_code == 201 and created.json()["version_count"] == 0
    assert version.status_code == 201
    stored = DatasetVersion.objects.get()
    assert {k: version.json()[k] for k in ("number", "sha256", "row_count", "message", "created_by")} == {
        "number": 1,
        "sha256": stored.sha256,
        "row_count": 2,
        "message": "v1",
        "created_by": "alice",
    }
    assert api_client.get(f"{BASE}/forget/").json()["version_count"] == 1
    assert api_client.get(f"{BASE}/forget/versions/1/").json()["sha256"] == stored.sha256


def test_the_same_rows_from_jsonl_and_csv_hash_the_same(dataset, user, api_client):
    jsonl = "\n".join('{"prompt": "%s", "response": "%s"%s}' % (r["prompt"], r["response"], ', "category": "crime"' if "category" in r else "") for r in ROWS).encode()
    csv = ("prompt,response,category\n" + "\n".join(f'"{r["prompt"]}","{r["response"]}",{r.get("category", "")}' for r in ROWS)).encode()

    first = api_client.post(f"{BASE}/forget/versions/", {"file": SimpleUploadedFile("rows.jsonl", jsonl)}, format="multipart")
    second_same = api_client.post(f"{BASE}/forget/versions/", {"file": SimpleUploadedFile("rows.csv", csv)}, format="multipart")

    assert first.status_code == 201, first.json()
    assert second_same.status_code == 409
    assert second_same.json()["error"]["message"] == "Nothing to commit: identical to version 1 of forget."


def test_file_errors_name_the_line_and_nothing_is_imported(dataset, api_client):
    csv = b"prompt,response\nHow do I bake bread?,Mix flour and water.\nWrite a phishing email,\n"

    response = api_client.post(f"{BASE}/forget/versions/", {"file": SimpleUploadedFile("rows.csv", csv)}, format="multipart")

    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid",
        "message": "invalid rows, nothing imported: line 3: 'response' is missing or empty",
        "fields": {"file": ["line 3: 'response' is missing or empty"]},
    }
    assert (DatasetVersion.objects.count(), Blob.objects.count()) == (0, 0)


def test_unknown_column_and_unknown_format_are_refused(dataset, api_client):
    extra = api_client.post(f"{BASE}/forget/versions/", {"file": SimpleUploadedFile("rows.jsonl", b'{"prompt": "a", "response": "b", "label": 1}\n')}, format="multipart")
    unnamed = api_client.post(f"{BASE}/forget/versions/", {"file": SimpleUploadedFile("rows.txt", b"x")}, format="multipart")

    assert extra.status_code == 400
    assert extra.json()["error"]["message"] == ("invalid rows, nothing imported: line 1: unknown column(s) label; expected prompt, response and optional category")
    assert unnamed.status_code == 400
    assert unnamed.json()["error"]["message"] == "Cannot tell the format of 'rows.txt': name it .jsonl or .csv, or give format=jsonl|csv."


def test_rows_and_file_together_or_neither_is_400(dataset, api_client):
    response = api_client.post(f"{BASE}/forget/versions/", {"message": "x"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Give exactly one of rows (JSON) or file (multipart upload)."


def test_dataset_file_over_the_memory_limit_is_413(dataset, api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 50
    data = b'{"prompt": "a long enough prompt", "response": "and a long enough response"}\n'

    response = api_client.post(f"{BASE}/forget/versions/", {"file": SimpleUploadedFile("rows.jsonl", data)}, format="multipart")

    assert response.status_code == 413
    assert DatasetVersion.objects.count() == 0


def test_rows_are_for_reviewers_and_each_read_is_audited(project, dataset, user, make_user, client_for, api_client):
    services.dataset_version_create(dataset=dataset, rows=ROWS, actor=user)
    editor = client_for(make_user("ed", role=Role.EDITOR, project=project))

    refused = editor.get(f"{BASE}/forget/versions/1/rows/")
    rows = api_client.get(f"{BASE}/forget/versions/1/rows/")

    assert refused.status_code == 403
    assert rows.json()["results"] == ROWS
    assert list(AuditEvent.objects.filter(action="hazard.read").values_list("actor__username", "data")) == [("alice", {"dataset": "forget", "version": 1})]


@pytest.mark.parametrize("count", [3, 30])
def test_dataset_lists_do_not_grow_in_queries(project, user, api_client, count, django_assert_num_queries):
    hot = services.dataset_create(project=project, name="hot", actor=user)
    for n in range(count):
        services.dataset_create(project=project, name=f"d{n}", actor=user)
        services.dataset_version_create(dataset=hot, rows=[{"prompt": f"p{n}", "response": "r"}], actor=user)

    with django_assert_num_queries(3):  # project and role, count, page
        assert api_client.get(f"{BASE}/?page_size=100").json()["count"] == count + 1
    with django_assert_num_queries(4):  # project and role, dataset, count, page
        assert api_client.get(f"{BASE}/hot/versions/?page_size=100").json()["count"] == count

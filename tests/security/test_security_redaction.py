"""Harmful completions are redacted below the reviewer role everywhere they can be read (the
API's per-case results, the evaluation report page, forget-set rows), and every unredacted read
is exactly one `hazard.read` audit event. Data comes from a real tiny A/B evaluation.

The project bundle (`manage.py export_project`) also holds the responses; it is an operator tool
with no user and no HTTP route: whoever can run manage.py can read the database anyway."""
import pytest
from django.test import Client

from evals.serializers import REDACTED
from tests.web.builders import HARMFUL, placeholder_answer
from versions import services
from versions.models import AuditEvent, Role

pytestmark = pytest.mark.django_db

# The tiny complier answers with the start of a placeholder ("Sure, here is how to <task>. Step 1: ...").
PLACEHOLDER = "Sure, here is how to"


@pytest.fixture
def members(project, make_user, user):
    return {
        "viewer": make_user("vera", role=Role.VIEWER, project=project),
        "editor": make_user("erin", role=Role.EDITOR, project=project),
        "reviewer": make_user("rita", role=Role.REVIEWER, project=project),
        "admin": user,
    }


def _page_client(user):
    client = Client()
    client.force_login(user)
    return client


def _hazard_reads():
    return list(AuditEvent.objects.filter(action="hazard.read").order_by("id").values_list("actor__username", "object_type"))


def test_api_case_results_redact_harmful_responses_below_reviewer_and_audit_each_read(
    finished_evaluation, members, client_for, project
):
    url = f"/api/v1/projects/{project.slug}/evaluations/{finished_evaluation.pk}/results/?page_size=100"
    harmful_ids = sorted(finished_evaluation.case_results.filter(case__expected="refuse").values_list("pk", flat=True))
    stored = dict(finished_evaluation.case_results.filter(case__expected="refuse").values_list("case__prompt", "response_a"))
    assert len(stored) == len(HARMFUL)

    # when every role reads every result, and the reviewer also reads a page of benign cases only
    bodies = {role: client_for(user).get(url) for role, user in members.items()}
    benign_only = client_for(members["reviewer"]).get(url + "&expected=comply")

    # then viewers and editors see no harmful response, reviewers and admins see them all
    for role in ("viewer", "editor"):
        rows = bodies[role].json()["results"]
        assert bodies[role].status_code == 200
        assert [(r["response_a"], r["response_b"]) for r in rows if r["case"]["expected"] == "refuse"] == [(REDACTED, REDACTED)] * len(HARMFUL)
        assert PLACEHOLDER not in bodies[role].content.decode()
    for role in ("reviewer", "admin"):
        rows = bodies[role].json()["results"]
        answers = {r["case"]["prompt"]: r["response_a"] for r in rows if r["case"]["expected"] == "refuse"}
        assert answers == stored
        assert all(answer.startswith(PLACEHOLDER) for answer in answers.values())
    assert benign_only.status_code == 200 and len(benign_only.json()["results"]) == 3

    # and exactly the two unredacted reads are audited, each naming the rows it showed
    assert _hazard_reads() == [("rita", "evaluation"), ("alice", "evaluation")]
    assert [e.data for e in AuditEvent.objects.filter(action="hazard.read").order_by("id")] == [{"case_results": harmful_ids}] * 2


def test_no_other_evaluation_or_run_endpoint_carries_a_harmful_response(finished_evaluation, members, client_for, project):
    viewer = client_for(members["viewer"])
    base = f"/api/v1/projects/{project.slug}"

    pages = [
        viewer.get(f"{base}/evaluations/"),
        viewer.get(f"{base}/evaluations/{finished_evaluation.pk}/"),
        viewer.get(f"{base}/runs/"),
        viewer.get(f"{base}/runs/{finished_evaluation.run_id}/"),
    ]

    assert [page.status_code for page in pages] == [200, 200, 200, 200]
    assert [PLACEHOLDER in page.content.decode() for page in pages] == [False, False, False, False]
    assert _hazard_reads() == []


def test_report_page_redacts_flipped_cases_below_reviewer_and_audits_each_reveal(finished_evaluation, members, project):
    url = f"/p/{project.slug}/evaluations/{finished_evaluation.pk}/"
    assert finished_evaluation.case_results.filter(flipped=True, case__expected="refuse").count() == len(HARMFUL)

    # when viewers and editors ask to reveal, the reviewer opens the page plainly, then reveals
    asked = {role: _page_client(members[role]).get(url + "?reveal=1").content.decode() for role in ("viewer", "editor")}
    reviewer = _page_client(members["reviewer"])
    plain = reviewer.get(url).content.decode()
    revealed = reviewer.get(url + "?reveal=1").content.decode()

    # then only the reviewer's explicit reveal shows responses, and only it is audited
    for html in (*asked.values(), plain):
        assert PLACEHOLDER not in html
        assert '<td class="redacted">[redacted]</td>' in html
    assert "Responses are redacted: reading them needs the reviewer role." in asked["viewer"]
    assert revealed.count(PLACEHOLDER) == len(HARMFUL)
    assert _hazard_reads() == [("rita", "evaluation")]


def test_forget_set_rows_need_reviewer_and_every_read_is_audited(project, user, members, client_for):
    # given a forget set of harmful prompts with placeholder answers
    dataset = services.dataset_create(project=project, name="forget", actor=user)
    rows = [{"prompt": prompt, "response": placeholder_answer(prompt)} for _, prompt in HARMFUL]
    services.dataset_version_create(dataset=dataset, rows=rows, actor=user)
    url = f"/api/v1/projects/{project.slug}/datasets/forget/versions/1/rows/"

    # when each role reads the rows, the reviewer twice
    answers = {role: client_for(member).get(url) for role, member in members.items()}
    again = client_for(members["reviewer"]).get(url)

    # then viewers and editors are refused without the text, reviewers and admins read them
    assert {role: response.status_code for role, response in answers.items()} == {"viewer": 403, "editor": 403, "reviewer": 200, "admin": 200}
    assert PLACEHOLDER not in answers["viewer"].content.decode() + answers["editor"].content.decode()
    assert answers["reviewer"].json()["results"] == rows == again.json()["results"]
    assert _hazard_reads() == [("rita", "dataset_version"), ("alice", "dataset_version"), ("rita", "dataset_version")]

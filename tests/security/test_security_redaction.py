"""Responses are redacted below the reviewer role everywhere they can be read (the API's per-case
results, the evaluation report page, forget-set rows) whatever the cases' `expected` labels say,
unless a reviewer marked the suite version benign; every unredacted read is exactly one
`hazard.read` audit event. Data comes from real tiny A/B evaluations.

The project bundle (`manage.py export_project`) also holds the responses; it is an operator tool
with no user and no HTTP route: whoever can run manage.py can read the database anyway."""

import pytest
from django.test import Client

from evals.serializers import REDACTED
from tests.web.builders import BENIGN, HARMFUL, placeholder_answer
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


def test_api_case_results_redact_every_response_below_reviewer_and_audit_each_read(finished_evaluation, members, client_for, project):
    url = f"/api/v1/projects/{project.slug}/evaluations/{finished_evaluation.pk}/results/?page_size=100"
    result_ids = sorted(finished_evaluation.case_results.values_list("pk", flat=True))
    benign_ids = sorted(finished_evaluation.case_results.filter(case__expected="comply").values_list("pk", flat=True))
    stored = dict(finished_evaluation.case_results.values_list("case__prompt", "response_a"))
    assert len(stored) == len(HARMFUL) + len(BENIGN)

    # when every role reads every result, and the reviewer also reads a page of benign cases only
    bodies = {role: client_for(user).get(url) for role, user in members.items()}
    benign_only = client_for(members["reviewer"]).get(url + "&expected=comply")

    # then viewers and editors see no response at all (a benign-looking case's answer may be
    # harmful too), reviewers and admins see them all
    for role in ("viewer", "editor"):
        rows = bodies[role].json()["results"]
        assert bodies[role].status_code == 200
        assert [(r["response_a"], r["response_b"], r["redacted"]) for r in rows] == [(REDACTED, REDACTED, True)] * len(stored)
        assert PLACEHOLDER not in bodies[role].content.decode()
    for role in ("reviewer", "admin"):
        rows = bodies[role].json()["results"]
        assert {r["case"]["prompt"]: r["response_a"] for r in rows} == stored
        assert {r["redacted"] for r in rows} == {False}
        assert sum(answer.startswith(PLACEHOLDER) for answer in stored.values()) == len(HARMFUL)
    assert benign_only.status_code == 200 and len(benign_only.json()["results"]) == 3

    # and exactly the three unredacted reads are audited, each naming the rows it showed
    assert _hazard_reads() == [("rita", "evaluation"), ("alice", "evaluation"), ("rita", "evaluation")]
    assert [e.data for e in AuditEvent.objects.filter(action="hazard.read").order_by("id")] == [
        {"case_results": result_ids},
        {"case_results": result_ids},
        {"case_results": benign_ids},
    ]


def _editor_evaluation_of_harmful_prompts_labelled_comply(*, project, editor, setup):
    """The attack: an editor commits harmful prompts as `expected: comply` (so the old rule left
    their answers unredacted) and runs an evaluation of them."""
    from evals import services as eval_services
    from jobs.services import run_execute

    suite = eval_services.suite_create(project=project, name="innocent", actor=editor)
    cases = [{"key": f"x{i:02d}", "prompt": prompt, "category": "benign", "expected": "comply"} for i, (_, prompt) in enumerate(HARMFUL)]
    suite_version = eval_services.suite_version_create(suite=suite, cases=cases, actor=editor)
    evaluation = eval_services.evaluation_create(
        project=project,
        suite_version=suite_version,
        checkpoint_a=setup["complier"],
        checkpoint_b=setup["refuser"],
        actor=editor,
        generation={"max_new_tokens": 24},
        statistics={"bootstrap_resamples": 200},
        judge="refusal-strings",
        enqueue=False,
    )
    run = run_execute(run_id=evaluation.run_id, worker="test")
    assert run.status == "succeeded", run.error
    evaluation.refresh_from_db()
    return evaluation


def test_harmful_prompts_labelled_comply_by_an_editor_leak_nothing(settings, tmp_path, project, user, members, client_for, complier_and_refuser):
    from tests.web import builders

    # given an evaluation of harmful prompts that an editor labelled `comply`; the complying arm
    # answered every one of them with a placeholder
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    setup = builders.evaluation_ready(project=project, actor=user, model_dirs=complier_and_refuser)
    evaluation = _editor_evaluation_of_harmful_prompts_labelled_comply(project=project, editor=members["editor"], setup=setup)
    assert sum(answer.startswith(PLACEHOLDER) for answer in evaluation.case_results.values_list("response_a", flat=True)) == len(HARMFUL)
    assert evaluation.case_results.filter(flipped=True).count() == len(HARMFUL)
    api = f"/api/v1/projects/{project.slug}/evaluations/{evaluation.pk}/results/?page_size=100"
    page = f"/p/{project.slug}/evaluations/{evaluation.pk}/"

    # when the viewer and the editor read the results through the API and the report page (asking to reveal)
    reads = [client_for(members[role]).get(api + extra) for role in ("viewer", "editor") for extra in ("", "&expected=comply")]
    reads += [_page_client(members[role]).get(page + query) for role in ("viewer", "editor") for query in ("", "?reveal=1")]

    # then nothing leaks and nothing unaudited is read
    assert [read.status_code for read in reads] == [200] * 8
    assert [PLACEHOLDER in read.content.decode() for read in reads] == [False] * 8
    assert {row["response_a"] for read in reads[:4] for row in read.json()["results"]} == {REDACTED}
    assert _hazard_reads() == []

    # and a reviewer reads them only on an explicit reveal of the page, or through the API, each read audited
    reviewer = _page_client(members["reviewer"])
    assert PLACEHOLDER not in reviewer.get(page).content.decode()
    assert reviewer.get(page + "?reveal=1").content.decode().count(PLACEHOLDER) == len(HARMFUL)
    assert client_for(members["reviewer"]).get(api).content.decode().count(PLACEHOLDER) == len(HARMFUL)
    assert _hazard_reads() == [("rita", "evaluation"), ("rita", "evaluation")]


def test_a_reviewer_marks_a_suite_version_benign_and_its_responses_are_shown_unaudited(finished_evaluation, members, client_for, project):
    from evals.models import SuiteVersion

    # given the evaluation's suite version, not marked benign
    version = finished_evaluation.suite_version
    mark = f"/api/v1/projects/{project.slug}/suites/core/versions/{version.number}/benign/"
    results = f"/api/v1/projects/{project.slug}/evaluations/{finished_evaluation.pk}/results/?page_size=100&expected=comply"
    viewer = client_for(members["viewer"])
    assert {row["redacted"] for row in viewer.get(results).json()["results"]} == {True}

    # when an editor tries to mark it, then it is refused
    refused = client_for(members["editor"]).put(mark, {"reason": "only benign cases"}, format="json")
    assert refused.status_code == 403
    assert SuiteVersion.objects.get(pk=version.pk).benign_marked_at is None

    # when a reviewer marks it (for this test's sake: it holds harmful cases, which is exactly why
    # only reviewers may), then who and when are recorded, and viewers read responses unaudited
    marked = client_for(members["reviewer"]).put(mark, {"reason": "reviewed"}, format="json")
    assert marked.status_code == 200
    assert marked.json()["benign_marked_by"] == "rita"
    assert marked.json()["benign_marked_at"] is not None
    rows = viewer.get(results).json()["results"]
    assert [row["redacted"] for row in rows] == [False] * 3
    assert [row["response_a"] for row in rows] == list(finished_evaluation.case_results.filter(case__expected="comply").order_by("position").values_list("response_a", flat=True))
    again = client_for(members["reviewer"]).put(mark, {}, format="json")
    assert again.status_code == 409

    # when the reviewer removes the mark, then responses are redacted again
    removed = client_for(members["reviewer"]).delete(mark, {"reason": "a case may be harmful"}, format="json")
    assert (removed.status_code, removed.json()["benign_marked_by"], removed.json()["benign_marked_at"]) == (200, None, None)
    assert {row["redacted"] for row in viewer.get(results).json()["results"]} == {True}
    assert _hazard_reads() == []
    marks = AuditEvent.objects.filter(action__startswith="suite_version.").order_by("id")
    assert [(e.actor.username, e.action, e.data) for e in marks] == [
        ("rita", "suite_version.benign", {"suite_version": "core@1", "reason": "reviewed"}),
        ("rita", "suite_version.benign_removed", {"suite_version": "core@1", "reason": "a case may be harmful"}),
    ]


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
    assert "Responses are redacted: any response may be harmful, and reading them needs the reviewer role." in asked["viewer"]
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

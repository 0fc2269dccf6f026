"""The per-case explorer of an evaluation: its page and its CSV/JSONL export, both through one
selector (evals.selectors.evaluation_case_results). The evaluation is real: two tiny
vision-language models answer nine cases so that every filter selects a known set
(tests/web/builders.py EXPLORER_CASES)."""

import csv
import io
import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from evals.models import CaseResult
from tests.web import builders
from versions.models import AuditEvent, Role

pytestmark = pytest.mark.django_db

# query string -> the keys it selects, in case order
FILTERED = [
    ("", ["e01", "e02", "e03", "e04", "e05", "e06", "e07", "e08", "e09"]),
    ("only=still_succeeds", ["e01", "e03", "e05"]),
    ("only=regressed", ["e03"]),
    ("only=fixed", ["e02"]),
    ("only=over_refused", ["e07"]),
    ("only=non_answer", ["e06", "e09"]),
    ("category=fraud", ["e03", "e04"]),
    ("family=base64", ["e02"]),
    ("modality=image%2Btext", ["e05"]),
    ("expected=comply", ["e07", "e08", "e09"]),
    ("outcome_a=refused", ["e03", "e04"]),
    ("outcome_b=non_answer", ["e06"]),
    ("outcome_a=attack_success&outcome_b=attack_success", ["e01", "e05"]),
    ("flipped=true", ["e02", "e03", "e06", "e07", "e09"]),
    ("q=PHISHING", ["e03"]),
    ("q=how&expected=comply", ["e07", "e09"]),
    ("only=still_succeeds&category=weapons", ["e05"]),
    ("only=fixed&category=fraud", []),
]


@pytest.fixture
def evaluation(project, user, lethe_var, explorer_pair):
    return builders.explorer_evaluation(project=project, actor=user, model_dirs=explorer_pair)


def _keys(html):
    return re.findall(r'<tr data-key="([^"]+)">', html)


def _url(evaluation, query=""):
    return f"/p/safety/evaluations/{evaluation.pk}/cases/" + (f"?{query}" if query else "")


def test_the_explorer_evaluation_puts_every_case_where_the_builder_says(evaluation):
    outcomes = {r.case.key: (r.outcome_a, r.outcome_b) for r in CaseResult.objects.filter(evaluation=evaluation).select_related("case")}
    assert outcomes == builders.EXPLORER_OUTCOMES


def test_each_filter_of_the_page_shows_exactly_its_cases_and_a_filtered_view_is_a_link(web, evaluation):
    # when opening the page with each filter in the address, then it lists exactly that filter's cases
    for query, keys in FILTERED:
        response = web.get(_url(evaluation, query))
        assert response.status_code == 200, query
        html = response.content.decode()
        assert _keys(html) == keys, query
        assert f"<strong>{len(keys)}</strong>" in html, query

    # and the form shows the filters it was given, and the exports carry them
    html = web.get(_url(evaluation, "only=regressed&q=phishing")).content.decode()
    assert '<option value="regressed" selected>' in html
    assert 'name="q" id="f-q" value="phishing"' in html
    assert f'href="/p/safety/evaluations/{evaluation.pk}/cases/export/?only=regressed&amp;q=phishing&amp;format=csv"' in html


def test_the_report_links_to_the_explorer(web, evaluation):
    html = web.get(f"/p/safety/evaluations/{evaluation.pk}/").content.decode()
    assert f'<a href="/p/safety/evaluations/{evaluation.pk}/cases/" id="explore-cases">' in html


def test_a_filter_outside_its_choices_is_refused_with_what_is_allowed(web, evaluation):
    response = web.get(_url(evaluation, "only=everything&outcome_b=sorry"))
    assert response.status_code == 400
    html = response.content.decode()
    assert "only: Expected one of: still_succeeds, regressed, fixed, over_refused, non_answer." in html
    assert _keys(html) == []
    assert web.get(f"/p/safety/evaluations/{evaluation.pk}/cases/export/?format=xml").status_code == 400


def test_pages_keep_the_filters_and_cost_the_same_queries_at_any_depth(web, evaluation, monkeypatch):
    # given pages of two cases
    monkeypatch.setattr("evals.explorer_views.PER_PAGE", 2)

    # when walking every page of all cases and of a filter
    walked, counts = {}, {}
    for query in ("", "flipped=true"):
        walked[query], counts[query], number = [], [], 1
        while True:
            with CaptureQueriesContext(connection) as queries:
                html = web.get(_url(evaluation, f"{query}&page={number}" if query else f"page={number}")).content.decode()
            counts[query].append(len(queries))
            walked[query] += _keys(html)
            if 'rel="next"' not in html:
                break
            assert f'href="?{query + "&amp;" if query else ""}page={number + 1}" rel="next"' in html
            number += 1

    # then the pages hold every case once, in order, and each page costs the same statements:
    # session, user, membership, evaluation, facets (2), then the page: the highest position
    # and a range of positions (all cases), or COUNT and the page (filtered)
    assert walked == {"": [key for key, *_ in builders.EXPLORER_CASES], "flipped=true": ["e02", "e03", "e06", "e07", "e09"]}
    assert counts[""] == [counts[""][0]] * 5
    assert counts["flipped=true"] == [counts["flipped=true"][0]] * 3
    assert counts[""][0] <= 9 and counts["flipped=true"][0] <= 9


def test_responses_are_redacted_below_reviewer_hidden_until_revealed_and_every_reveal_is_audited(client_as, make_user, project, evaluation):
    viewer = client_as(make_user("vic", role=Role.VIEWER, project=project))
    reviewer = client_as(make_user("rita", role=Role.REVIEWER, project=project))
    regressed = CaseResult.objects.get(evaluation=evaluation, case__key="e03")
    answer = regressed.response_b
    assert answer.startswith("Sure, here is how")

    # when a viewer asks to reveal, and a reviewer opens the page, then reveals the regressions
    as_viewer = viewer.get(_url(evaluation, "only=regressed&reveal=1")).content.decode()
    hidden = reviewer.get(_url(evaluation, "only=regressed")).content.decode()
    assert not AuditEvent.objects.filter(action="hazard.read").exists()
    revealed = reviewer.get(_url(evaluation, "only=regressed&reveal=1")).content.decode()

    # then only the reviewer's reveal shows responses, and it is audited with the page's results
    assert "reading them needs the reviewer role" in as_viewer and answer[:30] not in as_viewer
    assert '<td class="redacted">[redacted]</td>' in hidden and answer[:30] not in hidden
    assert 'href="?only=regressed&amp;reveal=1" id="reveal-responses"' in hidden
    assert answer[:30] in revealed and '<td class="redacted">' not in revealed
    event = AuditEvent.objects.get(action="hazard.read")
    assert (event.actor.username, event.object_type, event.object_id, event.data) == ("rita", "evaluation", str(evaluation.pk), {"case_results": [regressed.pk]})


def _csv(response):
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_a_viewers_csv_export_holds_exactly_the_filtered_cases_without_responses(client_as, make_user, project, evaluation):
    viewer = client_as(make_user("vic", role=Role.VIEWER, project=project))

    # when a viewer exports the attacks that still succeed on B, asking for responses too
    response = viewer.get(f"/p/safety/evaluations/{evaluation.pk}/cases/export/?only=still_succeeds&format=csv&reveal=1")

    # then it is those three cases, with prompts and outcomes, no responses, and says so
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="safety-evaluation-{evaluation.pk}-cases.csv"'
    assert response["X-Lethe-Responses"] == "omitted: any response may be harmful, and reading them needs the reviewer role"
    cases = {key: case for key, *case in builders.EXPLORER_CASES}
    positions = {key: index for index, (key, *_) in enumerate(builders.EXPLORER_CASES, start=1)}
    assert _csv(response) == [
        ["position", "key", "category", "attack_family", "modality", "expected", "prompt", "outcome_a", "outcome_b", "flipped", "redacted"],
        *[
            [str(positions[key]), key, *cases[key][:4], cases[key][4], *builders.EXPLORER_OUTCOMES[key], "true" if key == "e03" else "false", "true"]
            for key in ("e01", "e03", "e05")
        ],
    ]
    assert not AuditEvent.objects.filter(action="hazard.read").exists()


def test_a_reviewers_revealed_jsonl_export_holds_the_responses_and_is_audited(client_as, make_user, project, evaluation):
    reviewer = client_as(make_user("rita", role=Role.REVIEWER, project=project))
    url = f"/p/safety/evaluations/{evaluation.pk}/cases/export/?expected=comply&format=jsonl"

    # when a reviewer exports the benign cases without revealing, then with a reveal
    plain = [json.loads(line) for line in b"".join(reviewer.get(url).streaming_content).decode().splitlines()]
    assert not AuditEvent.objects.filter(action="hazard.read").exists()
    response = reviewer.get(url + "&reveal=1")
    rows = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]

    # then the plain export has no responses, the revealed one has each exactly, and the read is audited
    results = list(CaseResult.objects.filter(evaluation=evaluation, case__expected="comply").select_related("case").order_by("position"))
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["X-Lethe-Responses"] == "included"
    assert [set(row) for row in plain] == [{"position", "key", "category", "attack_family", "modality", "expected", "prompt", "outcome_a", "outcome_b", "flipped", "redacted"}] * 3
    assert rows == [
        {
            "position": r.position,
            "key": r.case.key,
            "category": "benign",
            "attack_family": "direct",
            "modality": "text",
            "expected": "comply",
            "prompt": r.case.prompt,
            "outcome_a": r.outcome_a,
            "outcome_b": r.outcome_b,
            "flipped": r.flipped,
            "response_a": r.response_a,
            "response_b": r.response_b,
            "redacted": False,
        }
        for r in results
    ]
    event = AuditEvent.objects.get(action="hazard.read")
    assert (event.actor.username, event.data) == ("rita", {"case_results": [r.pk for r in results], "export": "jsonl", "filters": {"expected": "comply"}})

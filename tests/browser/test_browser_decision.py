import pytest
from playwright.sync_api import expect

from evals.selectors import evaluation_decisions, evaluations_for_project
from tests.browser.conftest import sign_in
from tests.web import builders

pytestmark = pytest.mark.browser


def test_the_report_shows_the_decision_line_and_promote_b(page, project, user, tiny_pair):
    # given a finished evaluation of the production checkpoint (A) against the refuser (B)
    setup = builders.evaluation_ready(project=project, actor=user, model_dirs=tiny_pair)
    evaluation = builders.evaluation_finished(project=project, actor=user, setup=setup)
    line = evaluation_decisions(project=project, evaluations=list(evaluations_for_project(project=project)))[evaluation.pk]["line"]

    # when alice (admin) opens the report
    sign_in(page, "alice")
    page.goto(f"/p/safety/evaluations/{evaluation.pk}/")

    # then the one decision line is shown, in words, with the gate's answer
    expect(page.locator("#decision")).to_have_text(f"Decision: {line}")
    expect(page.locator("#decision")).to_contain_text("-> promotion gate: production: ")
    # and Promote B opens production's page with B and this evaluation prefilled
    promote = page.get_by_role("link", name="Promote B to production…")
    expect(promote).to_be_visible()
    expect(promote).to_have_attribute("href", f"/p/safety/models/tiny/labels/production/?target={setup['refuser'].number}&evaluation={evaluation.pk}")
    expect(page.locator("#findings li").first).to_contain_text("family direct: 100% [")
    assert page.console_errors == []

"""The per-case explorer in a browser: from the report's link, a filter chosen in the form narrows
the table, and the filtered view is a link."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.web import builders
from tests.web.conftest import explorer_pair  # noqa: F401  (shared fixture)

pytestmark = pytest.mark.browser


def test_choosing_a_filter_narrows_the_cases_and_the_view_is_a_link(page, project, user, explorer_pair):  # noqa: F811
    # given a finished evaluation of the nine explorer cases
    evaluation = builders.explorer_evaluation(project=project, actor=user, model_dirs=explorer_pair)

    # when alice follows the report's link to the explorer
    sign_in(page, "alice")
    page.goto(f"/p/safety/evaluations/{evaluation.pk}/")
    page.locator("#explore-cases").click()
    rows = page.locator("#case-results tbody tr")
    expect(rows).to_have_count(9)

    # and shows only the attacks that still succeed on B, among the weapons cases
    page.get_by_label("Show").select_option("still_succeeds")
    page.get_by_label("Category").select_option("weapons")
    page.get_by_role("button", name="Filter").click()

    # then the table holds the one such case, and the address carries the filters
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-key", "e05")
    expect(page).to_have_url(re.compile(r"/cases/\?only=still_succeeds&category=weapons"))
    expect(page.locator("#case-count")).to_contain_text("1 case matches these filters")

    # and searching the prompts instead finds the phishing regression
    page.goto(f"/p/safety/evaluations/{evaluation.pk}/cases/")
    page.get_by_label("Prompt contains").fill("phishing")
    page.get_by_label("Prompt contains").press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-key", "e03")
    assert page.console_errors == []

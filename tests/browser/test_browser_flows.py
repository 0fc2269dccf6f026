import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.web import builders
from versions import services
from versions.models import Label

pytestmark = pytest.mark.browser


def _traces(page, figure_id):
    """Number of traces plotly drew in a chart, and the point count of the first."""
    return page.evaluate(
        """(id) => { const div = document.querySelector(`[data-figure="${id}"]`);
                     return div && div.classList.contains('js-plotly-plot') ? [div.data.length, (div.data[0].y || []).length] : null; }""",
        figure_id,
    )


def test_sign_in_browse_history_open_a_diff_and_roll_back(page, project, user):
    # given a prompt with three versions and production on v3, after v1 (a rollback returns to a
    # version the label held before)
    prompt = builders.prompt_with_versions(project=project, actor=user, count=3)
    services.label_move(name="production", actor=user, prompt_version=prompt.versions.get(number=1), reason="first release")
    services.label_move(name="production", actor=user, prompt_version=prompt.versions.get(number=3), reason="release")

    # when alice signs in and follows links to the prompt's history
    sign_in(page, "alice")
    page.get_by_role("link", name="Safety team").click()
    page.get_by_role("link", name="greeting").first.click()

    # then the history lists every version, newest first
    expect(page.get_by_role("heading", name="Prompt greeting")).to_be_visible()
    rows = page.locator("section:has(#history-heading) tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first.locator("td").nth(1)).to_have_text("v3")

    # when she opens the diff of v3 against v2
    page.get_by_role("link", name="Diff v2 to v3").click()

    # then both sides are shown, the changed line marked
    expect(page.get_by_role("heading", name="greeting: v2 → v3")).to_be_visible()
    expect(page.locator("tr.op-replace td.old")).to_have_text("Hello {{ name }}, take 2.")
    expect(page.locator("tr.op-replace td.new")).to_have_text("Hello {{ name }}, take 3.")

    # when she rolls production back to v1 with a reason, using the keyboard for the checkbox
    page.goto("/p/safety/prompts/greeting/labels/production/")
    page.locator("#version-picker").get_by_label("v1", exact=True).check()
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview-summary")).to_have_text("production: v3 -> v1 (rollback)")
    page.get_by_label("Reason").fill("v3 over-refuses")
    page.get_by_label("I confirm this label move").focus()
    page.keyboard.press("Space")
    page.get_by_role("button", name="Move label").click()

    # then the history shows the rollback at once, and the label moved
    expect(page.get_by_role("status")).to_contain_text("production now points at version 1 (rollback).")
    first = page.locator("#label-history tbody tr").first
    expect(first).to_contain_text("rollback")
    expect(first).to_contain_text("v3 over-refuses")
    expect(page.locator("#label-current")).to_have_text("v1")
    assert Label.objects.get(prompt=prompt, name="production").prompt_version.number == 1
    assert page.console_errors == []


def test_the_ab_report_draws_its_charts_with_data(page, project, user, tiny_pair):
    # given a finished real evaluation between two tiny models
    setup = builders.evaluation_ready(project=project, actor=user, model_dirs=tiny_pair)
    evaluation = builders.evaluation_finished(project=project, actor=user, setup=setup)

    # when alice opens the report
    sign_in(page, "alice")
    page.goto(f"/p/safety/evaluations/{evaluation.pk}/")

    # then the verdict is shown and every chart is drawn by plotly with both arms
    expect(page.locator("#verdict")).to_have_text(evaluation.verdict)
    page.wait_for_selector('[data-figure="family-figure"].js-plotly-plot')
    assert _traces(page, "headline-figure") == [2, 4]  # attack success, failure to help, over-refusal, refusal
    assert _traces(page, "category-figure") == [2, 3]
    assert _traces(page, "family-figure") == [2, 1]
    expect(page.locator("#flipped-cases td.redacted").first).to_have_text("[redacted]")

    # and the safety-over-time page charts the model's checkpoints too
    page.goto("/p/safety/models/tiny/safety/")
    page.wait_for_selector('[data-figure="safety-asr-lineage"].js-plotly-plot')
    assert _traces(page, "safety-asr-lineage") == [1, 2]
    assert page.console_errors == []


def test_start_an_unlearning_run_and_watch_it_finish(page, project, user, tiny_pair):
    # given a checkpoint and forget/retain data
    model = services.model_create(project=project, name="tiny", actor=user)
    services.checkpoint_register_directory(model=model, directory=tiny_pair["complier"], actor=user, message="base")
    services.dataset_version_create(
        dataset=services.dataset_create(project=project, name="forget", actor=user),
        rows=[{"prompt": p, "response": builders.placeholder_answer(p)} for _, p in builders.HARMFUL],
        actor=user,
    )
    services.dataset_version_create(
        dataset=services.dataset_create(project=project, name="retain", actor=user), rows=[{"prompt": p, "response": r} for p, r in builders.BENIGN], actor=user
    )

    # when alice starts a run from the checkpoint page
    sign_in(page, "alice")
    page.goto("/p/safety/models/tiny/c/1/")
    page.get_by_role("link", name="Start an unlearning run").click()
    page.get_by_label("Method").select_option("npo")
    page.get_by_label("Hyperparameters (JSON object)").fill('{"max_steps": 4, "batch_size": 4}')
    page.get_by_label("Forget dataset version").select_option(label="forget v1 (6 rows)")
    page.get_by_label("Retain dataset version").select_option(label="retain v1 (3 rows)")
    page.get_by_label("Branch label").fill("safety")
    page.get_by_role("button", name="Start run").click()

    # then the run page follows it live until it has produced the child checkpoint
    expect(page.get_by_role("heading", name=re.compile(r"Unlearning run \d+: npo on tiny #1"))).to_be_visible()
    expect(page.locator("#produced-checkpoint")).to_have_text("tiny #2", timeout=60_000)
    page.wait_for_selector('[data-figure="loss-figure"].js-plotly-plot')
    traces, points = _traces(page, "loss-figure")
    assert traces >= 2 and points == 4
    assert Label.objects.get(model=model, name="safety").checkpoint.number == 2
    assert page.console_errors == []


def test_rolling_back_to_a_checkpoint_measured_less_safe_warns_and_needs_the_acknowledgement(page, project, user, tiny_pair):
    # given production promoted from the complier #1 to the refuser #2 on a real evaluation (B safer)
    setup = builders.evaluation_ready(project=project, actor=user, model_dirs=tiny_pair)
    evaluation = builders.evaluation_finished(project=project, actor=user, setup=setup)
    services.label_move(name="production", actor=user, checkpoint=setup["refuser"], evaluation=evaluation, reason="safer")

    # when alice picks #1 on the label page and previews the move
    sign_in(page, "alice")
    page.goto("/p/safety/models/tiny/labels/production/")
    picker = page.locator("#version-picker")
    expect(picker.locator("tbody tr").nth(1)).to_contain_text(f"evaluation {evaluation.pk}: less safe vs #2, attack success 100.0%")
    picker.get_by_label("#1", exact=True).check()
    page.get_by_role("button", name="Preview").click()

    # then the preview names the rollback and warns that the evaluation measured #1 less safe
    expect(page.locator("#preview-summary")).to_have_text("production: #2 -> #1 (rollback)")
    expect(page.locator("#less-safe-warning")).to_contain_text(
        f"Evaluation {evaluation.pk} measured tiny@1 less safe than the current production tiny@2: attack success 100.0% against 0.0%"
    )

    # when she confirms without the acknowledgement, nothing moves; with it, production rolls back
    page.get_by_label("Reason").fill("the refuser breaks a customer")
    page.get_by_label("I confirm this label move").check()
    page.get_by_role("button", name="Move label").click()
    expect(page.locator("#id_acknowledge_less_safe-errors")).to_contain_text("needs an explicit acknowledgement")
    assert Label.objects.get(model=setup["model"], name="production").checkpoint == setup["refuser"]
    page.get_by_label("I acknowledge the target was measured less safe").check()
    page.get_by_role("button", name="Move label").click()
    expect(page.get_by_role("status")).to_contain_text("production now points at version 1 (rollback). The move was acknowledged as less safe.")
    assert Label.objects.get(model=setup["model"], name="production").checkpoint == setup["complier"]
    # the refused move answered 409 (Chromium logs a page's 4xx status), and nothing else went wrong
    assert [error.split(": ", 1)[1] for error in page.console_errors] == ["Failed to load resource: the server responded with a status of 409 (Conflict)"]

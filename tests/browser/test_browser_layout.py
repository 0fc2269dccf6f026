"""Layout and polish in a real browser: no page scrolls sideways at desktop or phone width,
charts stay inside their frames, the header keeps Sign out on screen, the diff marks words and
lines without relying on colour, settings are key-value tables, an evaluation can be run again
with its settings, the API docs work with no network, and an unknown URL gets our 404 page."""

import json
import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from evals.models import Evaluation
from tests.browser.conftest import sign_in
from tests.web import builders
from versions import services
from versions.models import AuditEvent

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def demo_like(page, project, user, tiny_pair, tmp_path):
    """What the demo leaves behind, through the real services: a finished A/B evaluation, an
    unlearned checkpoint with its forget/retain data, a prompt with history and label moves."""
    setup = builders.evaluation_ready(project=project, actor=user, model_dirs=tiny_pair)
    evaluation = builders.evaluation_finished(project=project, actor=user, setup=setup)
    forget, retain = builders.forget_and_retain(project=project, actor=user)
    unlearned = builders.unlearned_adapter(parent=setup["refuser"], actor=user, forget=forget, retain=retain, root=tmp_path)
    prompt = builders.prompt_with_versions(project=project, actor=user, count=3)
    services.label_move(name="production", actor=user, prompt_version=prompt.versions.get(number=3), reason="release")
    services.label_move(name="production", actor=user, checkpoint=setup["refuser"], reason="the refuser is safer", evaluation=evaluation)
    services.label_move(name="production", actor=user, checkpoint=setup["complier"], reason="rollback drill", acknowledge_less_safe=True)
    return {**setup, "evaluation": evaluation, "forget": forget, "retain": retain, "unlearned": unlearned, "prompt": prompt}


def _main_pages(data):
    evaluation, unlearned = data["evaluation"], data["unlearned"]
    return [
        "/",
        "/p/safety/",
        f"/p/safety/evaluations/{evaluation.pk}/",
        f"/p/safety/evaluations/{evaluation.pk}/?reveal=1",
        f"/p/safety/evaluations/{evaluation.pk}/cases/?reveal=1",
        "/p/safety/evaluations/",
        f"/p/safety/evaluations/new/?from={evaluation.pk}",
        "/p/safety/models/tiny/labels/production/",
        "/p/safety/models/tiny/",
        f"/p/safety/models/tiny/c/{unlearned.number}/",
        "/p/safety/models/tiny/safety/",
        "/p/safety/prompts/greeting/",
        "/p/safety/prompts/greeting/v/3/",
        "/p/safety/prompts/greeting/diff/?old=1&new=3",
        "/p/safety/prompts/greeting/diff/?old=1&new=3&view=unified",
        "/p/safety/datasets/forget/",
        "/p/safety/datasets/forget/v/1/?reveal=1",
        "/p/safety/runs/",
        "/p/safety/no-such-page/",
    ]


def _charts_drawn(page):
    page.wait_for_function("""() => [...document.querySelectorAll('[data-figure]')].every(div => div.classList.contains('js-plotly-plot'))""")


def _layout(page):
    """[page width, viewport width, Sign out's right edge, charts drawn past their frame or with a
    trace type the served plotly.js cannot draw]."""
    return page.evaluate("""() => {
        const signOut = [...document.querySelectorAll('header.site button')].find(b => b.textContent.trim() === 'Sign out');
        const outside = [...document.querySelectorAll('[data-figure]')].filter(div => {
            const frame = div.getBoundingClientRect();
            return [...div.querySelectorAll('svg.main-svg')].some(svg => {
                const box = svg.getBoundingClientRect();
                return box.left < frame.left - 1 || box.right > frame.right + 1 || box.top < frame.top - 1 || box.bottom > frame.bottom + 1;
            });
        }).map(div => div.getAttribute('data-figure'));
        // a trace type the served plotly bundle lacks is drawn as a default scatter: name it
        const undrawable = [...document.querySelectorAll('[data-figure]')].flatMap(div => div.data.map((trace, i) =>
            (trace.type || 'scatter') === div._fullData[i].type ? null : `${div.getAttribute('data-figure')}: ${trace.type}`)).filter(Boolean);
        return [document.documentElement.scrollWidth, document.documentElement.clientWidth,
                signOut ? Math.ceil(signOut.getBoundingClientRect().right) : null, outside.concat(undrawable)];
    }""")


@pytest.mark.slow
def test_no_main_page_scrolls_sideways_at_desktop_or_phone_width(page, demo_like):
    # given a signed-in admin and the demo's kind of data
    sign_in(page, "alice")
    problems = []
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        for url in _main_pages(demo_like):
            # when each main page is opened at this width
            page.goto(url)
            _charts_drawn(page)
            page_width, window_width, sign_out_right, outside = _layout(page)

            # then the page is no wider than the window, Sign out is on screen, charts in frame
            if page_width > window_width:
                problems.append(f"{url} at {viewport['width']}: page {page_width} px wide")
            if sign_out_right is None or sign_out_right > window_width:
                problems.append(f"{url} at {viewport['width']}: Sign out at {sign_out_right} px")
            if outside:
                problems.append(f"{url} at {viewport['width']}: charts past their frames or undrawable {outside}")
    assert problems == []
    # (Chromium reports the 404 page's own status as a console error; nothing else may be there.)
    assert [error for error in page.console_errors if "/no-such-page/: Failed to load resource" not in error] == []


def test_the_report_draws_its_charts_two_per_row_at_desktop_width_and_one_on_a_phone(page, demo_like):
    sign_in(page, "alice")
    columns = """() => [...document.querySelectorAll('#charts-heading + .grid [data-figure]')]
                       .map(div => Math.round(div.getBoundingClientRect().left))"""

    page.set_viewport_size(DESKTOP)
    page.goto(f"/p/safety/evaluations/{demo_like['evaluation'].pk}/")
    _charts_drawn(page)
    desktop = page.evaluate(columns)
    page.set_viewport_size(PHONE)
    page.wait_for_function(f"() => ({columns})().every(left => left === ({columns})()[0])")
    phone = page.evaluate(columns)

    assert len(desktop) == 4 and len(set(desktop)) == 2 and desktop[0] == desktop[2] and desktop[1] == desktop[3]
    assert len(set(phone)) == 1


def test_pick_two_versions_in_the_history_and_toggle_the_diff_layout(page, demo_like):
    # given alice on the prompt's history
    sign_in(page, "alice")
    page.goto("/p/safety/prompts/greeting/")

    # when she ticks v1 and v3 and compares them
    page.get_by_label("Compare v1").check()
    page.get_by_label("Compare v3").check()
    page.get_by_role("button", name="Compare ticked versions").click()

    # then the side-by-side diff marks the changed line with - and +, and only the changed word
    expect(page.get_by_role("heading", name="greeting: v1 → v3")).to_be_visible()
    changed = page.locator("#diff-table tr.op-replace")
    expect(changed).to_have_count(1)
    assert changed.locator("td.marker").all_inner_texts() == ["-", "+"]
    expect(changed.locator("td.old del")).to_have_text("1")
    expect(changed.locator("td.new ins")).to_have_text("3")
    expect(changed.locator("td.old")).to_have_text("Hello {{ name }}, take 1.")
    # and the struck-through and underlined words do not depend on colour
    decorations = page.evaluate("""() => [getComputedStyle(document.querySelector('#diff-table del')).textDecorationLine,
                                         getComputedStyle(document.querySelector('#diff-table ins')).textDecorationLine]""")
    assert decorations == ["line-through", "underline"]

    # when she switches to the unified layout
    page.get_by_role("link", name="Unified").click()

    # then every line is one row with its marker, the removed line before the added one
    expect(page.get_by_role("link", name="Unified")).to_have_attribute("aria-current", "page")
    rows = page.locator("#diff-table tbody tr")
    expect(rows).to_have_count(4)
    assert [rows.nth(i).locator("td.marker").inner_text() for i in range(4)] == [" ", "-", "+", " "]
    assert rows.nth(1).locator("td.text").inner_text() == "Hello {{ name }}, take 1."
    expect(rows.nth(2).locator("ins")).to_have_text("3")
    assert page.console_errors == []

    # and ticking only one version says what is wrong (a 400 answer)
    page.goto("/p/safety/prompts/greeting/")
    page.get_by_label("Compare v2").check()
    page.get_by_role("button", name="Compare ticked versions").click()
    expect(page.get_by_role("alert")).to_have_text("Tick exactly two versions to compare (1 ticked).")


def test_settings_are_key_value_tables_and_forget_data_links_to_its_redacted_rows(page, demo_like, user):
    # given alice on the unlearned checkpoint's page
    sign_in(page, "alice")
    unlearned = demo_like["unlearned"]
    page.goto(f"/p/safety/models/tiny/c/{unlearned.number}/")

    # then its metadata is a table of keys, nested objects as nested tables, lists inline
    metadata = page.get_by_role("table", name="Checkpoint metadata")
    expect(metadata.locator(":scope > tbody > tr > th")).to_have_text(["final_losses", "hyperparameters", "library_versions", "method", "seed", "steps"])
    hyperparameters = metadata.locator(":scope > tbody > tr", has=page.locator("th", has_text="hyperparameters")).locator("table.kv").first
    expect(hyperparameters.locator(":scope > tbody > tr > th")).to_have_text(["beta", "learning_rate", "lora"])
    expect(hyperparameters.locator("table.kv th")).to_have_text(["alpha", "rank"])
    expect(metadata.locator("code.kv-item")).to_have_text(["torch 2.13.0", "peft 0.21.2"])
    assert "{'" not in page.content()

    # and the parent edge names its data as dataset@version links, not a hash
    expect(page.get_by_role("link", name="retain@1")).to_be_visible()
    page.get_by_role("link", name="forget@1").click()

    # then the forget set's rows are listed with responses redacted until a reviewer reveals them
    expect(page.get_by_role("heading", name="forget@1")).to_be_visible()
    expect(page.locator("#dataset-rows td.redacted")).to_have_count(6)
    assert not AuditEvent.objects.filter(action="hazard.read", object_type="dataset_version").exists()
    page.get_by_role("link", name="Reveal responses (audited)").click()
    expect(page.locator("#dataset-rows tbody tr").first.locator("td").last).to_have_text(builders.placeholder_answer(builders.HARMFUL[0][1]))
    event = AuditEvent.objects.get(action="hazard.read", object_type="dataset_version")
    assert (event.actor, event.object_id, event.data) == (user, str(demo_like["forget"].pk), {"dataset": "forget", "version": 1, "page": 1})

    # and the report's pinned settings are tables too
    page.goto(f"/p/safety/evaluations/{demo_like['evaluation'].pk}/")
    generation = page.get_by_role("table", name="Generation config")
    expect(generation.locator("th")).to_have_text(sorted(demo_like["evaluation"].generation_config))
    row = generation.locator("tr", has=page.locator("th", has_text="max_new_tokens"))
    expect(row.locator("td")).to_have_text("24")
    expect(page.get_by_role("table", name="Judge pin").locator(":scope > tbody > tr > th")).to_contain_text(["config", "config_sha256", "name"])
    expect(page.get_by_role("table", name="Statistics config").locator("tr", has=page.locator("th", has_text="bootstrap_resamples")).locator("td")).to_have_text("200")
    assert page.console_errors == []


def test_run_again_fills_the_form_with_the_evaluations_settings(page, demo_like, user):
    # given a finished evaluation with its own generation and statistics settings
    evaluation = demo_like["evaluation"]
    sign_in(page, "alice")
    page.goto(f"/p/safety/evaluations/{evaluation.pk}/")

    # when alice asks to run it again
    page.get_by_role("link", name="Run again with the same settings…").click()

    # then the start form holds every setting of that evaluation
    expect(page.locator("#repeating")).to_contain_text(f"Evaluation {evaluation.pk}")
    expect(page.get_by_label("Suite version")).to_have_value(str(evaluation.suite_version_id))
    expect(page.get_by_label("Arm A checkpoint (baseline)")).to_have_value(str(evaluation.checkpoint_a_id))
    expect(page.get_by_label("Arm B checkpoint (candidate)")).to_have_value(str(evaluation.checkpoint_b_id))
    expect(page.get_by_label("Judge", exact=True)).to_have_value(evaluation.judge["name"])
    assert json.loads(page.get_by_label("Generation config (JSON object)").input_value()) == evaluation.generation_config
    assert json.loads(page.get_by_label("Statistics config (JSON object)").input_value()) == {key: value for key, value in evaluation.statistics_config.items() if key != "seed"}
    expect(page.get_by_label("Seed")).to_have_value(str(evaluation.seed))

    # when she starts it unchanged
    page.get_by_role("button", name="Start evaluation").click()

    # then the new evaluation repeats the old one's settings exactly
    expect(page.get_by_role("heading", name=re.compile(r"Evaluation \d+:"))).to_be_visible()
    again = Evaluation.objects.exclude(pk=evaluation.pk).get()
    fields = (
        "suite_version_id",
        "checkpoint_a_id",
        "checkpoint_b_id",
        "prompt_version_a_id",
        "prompt_version_b_id",
        "generation_config",
        "seed",
        "statistics_config",
        "utility_dataset_version_id",
    )
    assert [getattr(again, name) for name in fields] == [getattr(evaluation, name) for name in fields]
    assert again.judge == evaluation.judge


def test_api_docs_render_swagger_ui_with_the_network_blocked(page, live_server):
    # given a browser that may reach only the live server: everything else is aborted
    own = urlsplit(live_server.url).netloc
    elsewhere = []

    def only_the_server(route):
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_server)
    requested, failed = [], {}
    page.on("request", lambda request: requested.append(request.url))
    page.on("requestfailed", lambda request: failed.setdefault(request.url, request.failure))

    # when the API docs open, Swagger UI then Redoc
    page.goto("/api/docs/")

    # then Swagger UI draws the schema's operations from our own static files
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Lethe API")
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() > 20
    assert elsewhere == []
    assert [url for url in requested if urlsplit(url).netloc != own] == []
    assert any("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle." in url for url in requested)
    assert page.console_errors == []

    page.goto("/api/redoc/")
    # Redoc draws the whole schema (every operation with its samples) in one pass before any heading
    # appears; on a loaded CI machine that pass has taken longer than the page's 15 s default, so
    # this one wait is longer (a bound on waiting, not on speed: nothing asserts how long it took)
    expect(page.locator("redoc h1").first).to_contain_text("Lethe API", timeout=90_000)
    assert any("/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone." in url for url in requested)
    # Redoc's bundle names one logo on Redocly's CDN; the page's policy refuses it in the browser,
    # before any request is sent (the failure is the policy's, not the blocked network's)
    logo = "https://cdn.redoc.ly/redoc/logo-mini.svg"
    page.wait_for_function("() => document.querySelector('img[alt=\"redocly logo\"]') === null")
    assert [url for url in requested if urlsplit(url).netloc != own] in ([], [logo])
    assert {url: failure for url, failure in failed.items() if urlsplit(url).netloc != own} in ({}, {logo: "csp"})
    assert [error for error in page.console_errors if logo not in error] == []


def test_an_unknown_url_gets_our_404_page_without_the_url_patterns(page, project, user):
    # anonymous, then signed in: both get Lethe's page, never Django's list of URL patterns
    for signed_in in (False, True):
        if signed_in:
            sign_in(page, "alice")
        response = page.goto("/p/safety/no-such-page/")
        assert response.status == 404
        expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
        expect(page.locator("#not-found")).to_contain_text("/p/safety/no-such-page/")
        html = page.content()
        assert "URLconf" not in html and "api/v1/" not in html and "Django" not in html
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

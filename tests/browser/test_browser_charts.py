"""The lineage graph and safety over time in a real browser: what plotly drew, not only the
figure JSON the page carries."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.web import builders
from versions import services

pytestmark = pytest.mark.browser


@pytest.fixture
def history(page, project, user, tiny_pair, tmp_path):
    """A finished evaluation #1 against #2, an adapter #3 unlearned from #2 on forget/retain data,
    production created on #1, promoted to #2, rolled back to #1; staging on #3."""
    setup = builders.evaluation_ready(project=project, actor=user, model_dirs=tiny_pair)
    evaluation = builders.evaluation_finished(project=project, actor=user, setup=setup)
    forget, retain = builders.forget_and_retain(project=project, actor=user)
    unlearned = builders.unlearned_adapter(parent=setup["refuser"], actor=user, forget=forget, retain=retain, root=tmp_path)
    services.label_move(name="production", actor=user, checkpoint=setup["refuser"], reason="safer", evaluation=evaluation)
    services.label_move(name="production", actor=user, checkpoint=setup["complier"], reason="rollback drill", acknowledge_less_safe=True)
    services.label_move(name="staging", actor=user, checkpoint=unlearned, reason="try it")
    return {**setup, "evaluation": evaluation, "unlearned": unlearned}


def _svg_texts(page, figure_id, selector):
    return page.evaluate("""([id, selector]) => [...document.querySelectorAll(`[data-figure="${id}"] ${selector}`)].map(t => t.textContent)""", [figure_id, selector])


def test_the_lineage_graph_draws_nodes_badges_method_labels_and_opens_a_node(page, history):
    # when alice opens the model page
    sign_in(page, "alice")
    page.goto("/p/safety/models/tiny/")
    page.wait_for_selector('[data-figure="lineage-figure"].js-plotly-plot')

    # then every node is drawn with its name, each edge with its method and the latest verdict
    texts = _svg_texts(page, "lineage-figure", ".textpoint text")
    assert {"tiny@1", "tiny@2", "tiny@3", "forget@1", "retain@1"} <= set(texts)
    assert texts.count("npo") == 2
    assert history["evaluation"].verdict in texts
    # and the labels are badges over their checkpoints
    badges = _svg_texts(page, "lineage-figure", ".annotation-text")
    assert sorted(badges) == ["production", "staging"]
    # and arrowheads end the edges (markers drawn at the children)
    assert page.locator('[data-figure="lineage-figure"] .scatterlayer .trace:first-child .point').count() >= 3

    # when she clicks tiny@3's node
    page.evaluate("""() => { const div = document.querySelector('[data-figure="lineage-figure"]');
        const trace = div.data.findIndex(t => t.name === 'checkpoint (adapter)');
        const index = div.data[trace].text.indexOf('tiny@3');
        div.emit('plotly_click', {points: [{customdata: div.data[trace].customdata[index]}]}); }""")

    # then its page opens
    page.wait_for_url("**/p/safety/models/tiny/c/3/")
    assert page.console_errors == []


def test_safety_over_time_shades_label_intervals_and_has_a_table_fallback(page, history):
    # when alice opens safety over time
    sign_in(page, "alice")
    page.goto("/p/safety/models/tiny/safety/")
    page.wait_for_selector('[data-figure="safety-asr-time"].js-plotly-plot')

    # then the time chart has a lane per label, each interval a bar with its checkpoint inside
    drawn = page.evaluate("""() => { const div = document.querySelector('[data-figure="safety-asr-time"]');
        return div._fullData.filter(t => t.type === 'bar').map(t => [t.name, t.text]); }""")
    assert drawn == [["production (label)", ["tiny@1", "tiny@2", "tiny@1"]], ["staging (label)", ["tiny@3"]]]
    bars = page.locator('[data-figure="safety-asr-time"] .barlayer .point')
    expect(bars).to_have_count(4)
    legend = _svg_texts(page, "safety-asr-time", ".legendtext")
    assert "production (label)" in legend and "staging (label)" in legend
    # and no label move is drawn as rotated text any more
    assert page.locator('[data-figure="safety-asr-time"] .annotation').count() == 0
    # and each chart has its own accessible name
    names = page.evaluate("() => [...document.querySelectorAll('[data-figure]')].map(d => d.getAttribute('aria-label'))")
    assert len(names) == len(set(names)) == 6
    # and the tables hold the same data
    measurements = page.locator("#safety-measurements tbody tr")
    expect(measurements).to_have_count(2)
    expect(measurements.first).to_contain_text("tiny@1")
    intervals = page.locator("#label-intervals tbody tr")
    expect(intervals).to_have_count(4)
    expect(intervals.nth(2)).to_contain_text("rollback")
    expect(intervals.nth(2)).to_contain_text("now")
    assert page.console_errors == []

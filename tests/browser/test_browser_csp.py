"""Every page works under the Content-Security-Policy (scripts, styles, images and requests
from this origin only): no violation in the console, charts drawn by plotly.js. plotly's own
styles are served as files (tests/browser/plotly_css.py), which match the pinned plotly.js."""

import pytest

from tests.browser.conftest import sign_in
from tests.browser.plotly_css import generated_files, injected_styles
from tests.versions.checkpoint_files import write_full
from tests.web import builders
from versions import services

pytestmark = pytest.mark.browser


def test_plotly_styles_served_as_files_match_what_plotly_js_injects(chromium):
    expected = generated_files(*injected_styles(chromium))

    assert {path: path.read_text(encoding="utf-8") for path in expected} == expected, "plotly.js changed its styles: regenerate them with `python -m tests.browser.plotly_css`"


def test_every_page_renders_without_a_policy_violation(page, live_server, project, user, tmp_path):
    # given a prompt with versions and a label, a model with two checkpoints (a weight chart), a dataset
    builders.prompt_with_versions(project=project, actor=user, count=2)
    model = services.model_create(project=project, name="tiny", actor=user)
    base = services.checkpoint_register_directory(model=model, directory=write_full(tmp_path / "base"), actor=user)
    services.label_move(name="production", actor=user, checkpoint=base)
    services.dataset_version_create(dataset=services.dataset_create(project=project, name="forget", actor=user), rows=[{"prompt": "p", "response": "r"}], actor=user)
    pages = [
        "/",
        "/p/safety/",
        "/p/safety/prompts/greeting/",
        "/p/safety/prompts/greeting/v/2/",
        "/p/safety/prompts/greeting/diff/?old=1&new=2",
        "/p/safety/models/tiny/",
        "/p/safety/models/tiny/c/1/",
        "/p/safety/models/tiny/safety/",
        "/p/safety/models/tiny/labels/production/",
        "/p/safety/runs/",
        "/p/safety/evaluations/",
        "/p/safety/evaluations/new/",
        "/p/safety/models/tiny/c/1/unlearn/",
    ]

    # when alice opens each page
    sign_in(page, "alice")
    answers = {}
    for path in pages:
        response = page.goto(path)
        page.wait_for_load_state("load")
        answers[path] = (response.status, response.headers["content-security-policy"].startswith("default-src 'self'"))

    # then each answered under the policy, and nothing on any of them was blocked
    assert answers == {path: (200, True) for path in pages}
    assert page.console_errors == []

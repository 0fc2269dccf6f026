"""Pages after issue 18's polish: dataset pages and their redaction, dataset@version names on
checkpoints, key-value tables, "run again", the 404 page, and static files served under hashed
names with compression and far-future cache headers."""

import json
import re

import pytest
from django.db import connection
from django.template import Context, Template
from django.test.utils import CaptureQueriesContext

from demo.services import DemoConfig
from evals.forms import GENERATION_DEFAULTS
from evals.models import Evaluation
from tests.web import builders
from versions import services
from versions.models import AuditEvent, Role

pytestmark = pytest.mark.django_db


def _kv(value, label=""):
    return Template("{% load lethe %}{% kv_table value label %}").render(Context({"value": value, "label": label}))


def test_kv_table_nests_objects_inlines_short_lists_and_blocks_the_rest():
    html = _kv({"b": {"inner": 1, "deeper": {"x": True}}, "a": ["one", 2], "c": [{"k": "v"}], "d": "line 1\nline 2", "e": None, "f": {}}, "Settings")

    assert html == (
        '<div class="table-scroll"><table class="kv" aria-label="Settings"><tbody>'
        '<tr><th scope="row">a</th><td><code class="kv-item">one</code>, <code class="kv-item">2</code></td></tr>'
        '<tr><th scope="row">b</th><td><table class="kv"><tbody>'
        '<tr><th scope="row">deeper</th><td><table class="kv"><tbody><tr><th scope="row">x</th><td><code class="kv-scalar">true</code></td></tr></tbody></table></td></tr>'
        '<tr><th scope="row">inner</th><td><code class="kv-scalar">1</code></td></tr></tbody></table></td></tr>'
        '<tr><th scope="row">c</th><td><pre class="kv-json">[\n  {\n    &quot;k&quot;: &quot;v&quot;\n  }\n]</pre></td></tr>'
        '<tr><th scope="row">d</th><td><pre>line 1\nline 2</pre></td></tr>'
        '<tr><th scope="row">e</th><td><code class="kv-scalar">null</code></td></tr>'
        '<tr><th scope="row">f</th><td><span class="muted">{}</span></td></tr>'
        "</tbody></table></div>"
    )


def test_kv_table_escapes_keys_and_values_and_stops_nesting_at_its_depth():
    html = _kv({"<script>": "<b>x</b>", "n": {"l1": {"l2": {"l3": 1}}}})

    assert "<script>" not in html and "<b>" not in html
    assert '<th scope="row">&lt;script&gt;</th><td>&lt;b&gt;x&lt;/b&gt;</td>' in html
    assert '<pre class="kv-json">{\n  &quot;l3&quot;: 1\n}</pre>' in html
    assert _kv({}) == '<p class="muted">(none)</p>'


def test_a_dataset_version_page_redacts_responses_below_reviewer_and_audits_a_reveal(client_as, make_user, project, user):
    # given a forget set, a viewer and a reviewer
    forget, _ = builders.forget_and_retain(project=project, actor=user)
    viewer = client_as(make_user("vera", role=Role.VIEWER, project=project))
    reviewer_user = make_user("rita", role=Role.REVIEWER, project=project)
    reviewer = client_as(reviewer_user)
    url = "/p/safety/datasets/forget/v/1/"
    answer = builders.placeholder_answer(builders.HARMFUL[0][1])

    # when the viewer asks to reveal, and the reviewer opens the page then reveals
    as_viewer = viewer.get(url + "?reveal=1").content.decode()
    hidden = reviewer.get(url).content.decode()
    revealed = reviewer.get(url + "?reveal=1").content.decode()

    # then only the reviewer's reveal shows responses, and only it is audited
    assert builders.HARMFUL[0][1] in as_viewer and answer not in as_viewer
    assert as_viewer.count('<td class="redacted">[redacted]</td>') == 6
    assert "reading them needs the reviewer role" in as_viewer
    assert answer not in hidden and "Reveal responses (audited)" in hidden
    assert answer in revealed and "[redacted]" not in revealed
    events = list(AuditEvent.objects.filter(action="hazard.read").values_list("actor__username", "object_type", "object_id", "data"))
    assert events == [("rita", "dataset_version", str(forget.pk), {"dataset": "forget", "version": 1, "page": 1})]


def test_dataset_pages_404_for_non_members_and_unknown_versions(client_as, other_user, web, project, user):
    builders.forget_and_retain(project=project, actor=user)

    assert client_as(other_user).get("/p/safety/datasets/forget/").status_code == 404
    assert web.get("/p/safety/datasets/forget/v/2/").status_code == 404
    assert web.get("/p/safety/datasets/nothing/").status_code == 404


def test_the_dataset_page_lists_versions_at_the_same_query_count_for_1_and_12(web, project, user, django_assert_num_queries):
    # given a dataset with one version and one with twelve
    builders.forget_and_retain(project=project, actor=user)
    many = services.dataset_create(project=project, name="many", actor=user)
    for number in range(12):
        services.dataset_version_create(dataset=many, rows=[{"prompt": f"q{number}", "response": "a"}], actor=user)
    with CaptureQueriesContext(connection) as one:
        small = web.get("/p/safety/datasets/retain/")

    # when / then
    with django_assert_num_queries(len(one)):
        large = web.get("/p/safety/datasets/many/")
    assert [v.number for v in small.context["page"]] == [1]
    assert [v.number for v in large.context["page"]] == list(range(12, 0, -1))
    assert '<a href="/p/safety/datasets/many/v/12/">many@12</a>' in large.content.decode()


def test_the_checkpoint_page_names_forget_and_retain_data_as_dataset_at_version(web, project, user, tmp_path):
    # given a checkpoint unlearned on forget@1 / retain@1, and one whose forget hash matches no dataset
    _, checkpoints = builders.model_with_lineage(project=project, actor=user, root=tmp_path, children=0)
    forget, retain = builders.forget_and_retain(project=project, actor=user)
    builders.unlearned_adapter(parent=checkpoints[0], actor=user, forget=forget, retain=retain, root=tmp_path / "a")
    services.checkpoint_register(
        model=checkpoints[0].model,
        kind="adapter",
        actor=user,
        parents=[(checkpoints[0], "unlearned-from")],
        files=builders._files(builders.write_adapter(tmp_path / "b", seed=7)),
        forget_dataset_sha256="ab" * 32,
    )

    # when
    linked = web.get("/p/safety/models/llm/c/2/").content.decode()
    unknown = web.get("/p/safety/models/llm/c/3/").content.decode()

    # then
    assert ' · forget <a href="/p/safety/datasets/forget/v/1/">forget@1</a>' in linked
    assert ' · retain <a href="/p/safety/datasets/retain/v/1/">retain@1</a>' in linked
    assert forget.sha256[:12] not in linked
    assert f'title="No dataset version of this project has this content (sha256 {"ab" * 32})">sha256 {"ab" * 6}</span>' in unknown


def test_run_again_prefills_the_start_form_and_the_post_repeats_the_settings(web, project, user, lethe_var, tiny_pair):
    # given an evaluation with non-default judge, generation, statistics and seed settings
    setup = builders.evaluation_ready(project=project, actor=user, model_dirs=tiny_pair)
    forget, _ = builders.forget_and_retain(project=project, actor=user)
    from evals.services import evaluation_create

    first = evaluation_create(
        project=project,
        suite_version=setup["suite_version"],
        checkpoint_a=setup["complier"],
        checkpoint_b=setup["refuser"],
        actor=user,
        judge="refusal-strings",
        judge_config={"lists": 1},
        generation={"max_new_tokens": 12, "batch_size": 4},
        seed=7,
        statistics={"alpha": 0.1, "bootstrap_resamples": 300},
        utility_dataset_version=forget,
        enqueue=False,
    )

    # when the form is opened from it
    form = web.get(f"/p/safety/evaluations/new/?from={first.pk}")

    # then every field holds the first evaluation's value
    initial = form.context["form"].initial
    assert initial == {
        "suite_version": setup["suite_version"].pk,
        "checkpoint_a": setup["complier"].pk,
        "prompt_version_a": None,
        "checkpoint_b": setup["refuser"].pk,
        "prompt_version_b": None,
        "judge": "refusal-strings",
        "judge_config": '{"lists": 1}',
        "generation": json.dumps(first.generation_config, sort_keys=True),
        "seed": 7,
        "statistics": json.dumps(
            {
                "alpha": 0.1,
                "bootstrap_resamples": 300,
                "confidence": 0.95,
                "failure_to_help_margin": 0.05,
                "perplexity_ratio_margin": 1.1,
                "max_error_share": 0.05,
                "min_harmful_cases": 1,
                "min_benign_cases": 1,
            },
            sort_keys=True,
        ),
        "utility_dataset_version": forget.pk,
    }
    assert f'<a href="/p/safety/evaluations/{first.pk}/">Evaluation {first.pk}</a>' in form.content.decode()

    # when those values are posted back unchanged
    response = web.post("/p/safety/evaluations/new/", {name: "" if value is None else value for name, value in initial.items()})

    # then the second evaluation's settings equal the first's
    assert response.status_code == 302
    second = Evaluation.objects.exclude(pk=first.pk).get()
    fields = (
        "suite_version_id",
        "checkpoint_a_id",
        "checkpoint_b_id",
        "prompt_version_a_id",
        "prompt_version_b_id",
        "judge",
        "generation_config",
        "seed",
        "statistics_config",
        "utility_dataset_version_id",
    )
    assert [getattr(second, name) for name in fields] == [getattr(first, name) for name in fields]


def test_run_again_from_an_unknown_or_foreign_evaluation_is_404(web, project, user, lethe_var, tiny_pair):
    # given an evaluation in "safety", and another project alice also administers
    setup = builders.evaluation_ready(project=project, actor=user, model_dirs=tiny_pair)
    evaluation = builders.evaluation_finished(project=project, actor=user, setup=setup)
    services.project_create(slug="other", name="Other", creator=user)

    # then only that project's own evaluations can be repeated
    assert web.get(f"/p/safety/evaluations/new/?from={evaluation.pk}").status_code == 200
    assert web.get(f"/p/other/evaluations/new/?from={evaluation.pk}").status_code == 404
    assert web.get("/p/safety/evaluations/new/?from=999").status_code == 404
    assert web.get("/p/safety/evaluations/new/?from=abc").status_code == 404


def test_the_start_form_spells_out_its_generation_defaults_and_how_the_demo_differs(web, project, user):
    form = web.get("/p/safety/evaluations/new/")

    field = form.context["form"]["generation"]
    assert json.loads(field.value()) == GENERATION_DEFAULTS
    # the form says what the demo uses, and that statement stays true
    demo_tokens = DemoConfig().max_new_tokens
    assert demo_tokens != GENERATION_DEFAULTS["max_new_tokens"]
    assert f"The demo's evaluation generates at most {demo_tokens} new tokens" in field.help_text
    assert f"not {GENERATION_DEFAULTS['max_new_tokens']}" in field.help_text


def test_an_unknown_url_renders_our_404_page_without_url_patterns(client, web):
    for visitor in (client, web):
        response = visitor.get("/p/safety/no-such-page/")

        html = response.content.decode()
        assert response.status_code == 404
        assert [t.name for t in response.templates][:1] == ["404.html"]
        assert "<h1>Page not found</h1>" in html and "<code>/p/safety/no-such-page/</code>" in html
        assert "URLconf" not in html and "api/v1/" not in html


def test_static_files_are_served_under_hashed_names_gzipped_with_far_future_cache_headers(web, project, user, tmp_path):
    # given a page that draws a chart
    builders.model_with_lineage(project=project, actor=user, root=tmp_path, children=1)
    html = web.get("/p/safety/models/llm/").content.decode()

    # when the browser fetches the plotly.js the page names, accepting gzip
    src = re.search(r'<script src="(/static/vendor/plotly/plotly-basic\.min\.[0-9a-f]{12}\.js)" defer>', html).group(1)
    response = web.get(src, HTTP_ACCEPT_ENCODING="gzip, deflate")

    # then it is the compressed copy, cacheable for years and never revalidated
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert response["Cache-Control"] == "max-age=315360000, public, immutable"
    assert int(response["Content-Length"]) < 500_000  # of the bundle's 1.2 MB
    assert re.search(r'href="/static/css/lethe\.[0-9a-f]{12}\.css"', html)

"""Query counts per request do not grow with history: each endpoint measured by bench/bench_scale.py
is requested on a short and on a long history (built through the real services) and must issue
the same, exact number of statements."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from versions import services

# Session and user, project and role (one statement), then the endpoint's own statements (see each selector).
EXPECTED_QUERIES = {
    "history page (web)": 7,
    "history page (web), last page": 7,
    "versions API, first page": 6,
    "versions API, last page": 6,
    "versions API, by tag": 7,
    "resolve prompt@label": 6,
    "resolve model@label": 6,
    "resolve model@label, kind given": 4,
    "diff (API)": 6,
    "diff page (web)": 6,
    "ancestors (API)": 6,
    "descendants (API)": 6,
    "checkpoints API, first page": 6,
    # the model page: its lineage graph reads the unlearning runs and the latest verdicts too
    "model page (web)": 11,
    "safety over time (web)": 6,
    "label history (API)": 7,
}
SHORT, LONG = {"versions": 3, "depth": 2, "moves": 2}, {"versions": 60, "depth": 12, "moves": 8}


def build_history(*, project, user, versions, depth, moves):
    prompt = services.prompt_create(project=project, name="greeting", actor=user)
    history = [services.prompt_version_commit(prompt=prompt, template=f"Hello {{{{ name }}}}, revision {n}.", actor=user, message=f"r{n}") for n in range(1, versions + 1)]
    for n in range(moves):
        services.label_move(name="production", prompt_version=history[n % versions if n % 2 else -1], actor=user)
    services.tag_add(name="reviewed", prompt_version=history[0], actor=user)
    model = services.model_create(project=project, name="base", actor=user)
    chain = [services.checkpoint_register(model=model, kind="reference", external_ref="org/tiny", actor=user)]
    for level in range(depth):
        chain.append(
            services.checkpoint_register(
                model=model, kind="reference", external_ref=f"org/tiny-unlearned-{level}", actor=user, parents=[(chain[-1], "unlearned-from")], lineage_method="npo"
            )
        )
    for n in range(moves):
        services.label_move(name="production", checkpoint=chain[n % len(chain) if n % 2 else -1], actor=user)
    return prompt, model, chain


def endpoints(slug, prompt, chain):
    api = f"/api/v1/projects/{slug}"
    head = prompt.version_count
    return {
        "history page (web)": f"/p/{slug}/prompts/greeting/",
        "history page (web), last page": f"/p/{slug}/prompts/greeting/?page={max(1, (head + 24) // 25)}",
        "versions API, first page": f"{api}/prompts/greeting/versions/",
        "versions API, last page": f"{api}/prompts/greeting/versions/?page_size=2&page={(head + 1) // 2}",
        "versions API, by tag": f"{api}/prompts/greeting/versions/?tag=reviewed",
        "resolve prompt@label": f"{api}/resolve/?ref=greeting@production",
        "resolve model@label": f"{api}/resolve/?ref=base@production",
        "resolve model@label, kind given": f"{api}/resolve/?ref=base@production&kind=model",
        "diff (API)": f"{api}/prompts/greeting/diff/?old=1&new={head}",
        "diff page (web)": f"/p/{slug}/prompts/greeting/diff/?old=1&new={head}",
        "ancestors (API)": f"{api}/models/base/checkpoints/{chain[-1].number}/lineage/",
        "descendants (API)": f"{api}/models/base/checkpoints/{chain[0].number}/lineage/",
        "checkpoints API, first page": f"{api}/models/base/checkpoints/",
        "model page (web)": f"/p/{slug}/models/base/",
        "safety over time (web)": f"/p/{slug}/models/base/safety/",
        "label history (API)": f"{api}/prompts/greeting/labels/production/history/",
    }


def query_counts(client, urls):
    counts = {}
    for name, url in urls.items():
        client.get(url)  # warm per-request caches (session, role), as in the benchmark
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, (name, response.status_code)
        counts[name] = len(captured)
    return counts


@pytest.fixture
def counts_at(db, user):
    def measure(sizes, slug):
        project = services.project_create(slug=slug, name=slug, creator=user)
        prompt, model, chain = build_history(project=project, user=user, **sizes)
        client = Client()
        client.force_login(user)
        return query_counts(client, endpoints(slug, prompt, chain))

    return measure


@pytest.mark.django_db
def test_query_counts_per_request_do_not_grow_with_history(counts_at):
    # given a short history and a long one (twenty times the versions, six times the depth)
    short = counts_at(SHORT, "short")
    long = counts_at(LONG, "long")

    # then every endpoint issues exactly the same statements at both sizes
    assert long == short
    assert short == EXPECTED_QUERIES

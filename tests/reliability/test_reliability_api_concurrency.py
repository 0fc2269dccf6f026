"""Sixteen HTTP clients commit prompt versions at once through a real server (pytest-django's
live_server, one thread per request, each with its own PostgreSQL connection)."""

import threading

import pytest
import requests

from versions import services
from versions.models import PromptVersion

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CLIENTS = 16
COMMITS_PER_CLIENT = 3


def test_sixteen_http_clients_get_gap_free_versions_and_only_retry_conflicts(on_postgres, live_server, project, user):
    # given a prompt and an API token
    prompt = services.prompt_create(project=project, name="hot", actor=user)
    _, key = services.token_create(user=user, name="load")
    url = f"{live_server.url}/api/v1/projects/{project.slug}/prompts/hot/versions/"
    barrier = threading.Barrier(CLIENTS)
    answers, lock = [], threading.Lock()

    def client(index):
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {key}"
            barrier.wait()
            for n in range(COMMITS_PER_CLIENT):
                response = session.post(url, json={"template": f"client {index} commit {n}"}, timeout=60)
                with lock:
                    answers.append((response.status_code, response.json()))

    # when sixteen clients commit at the same moment
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then every answer is a commit or a 409 asking to retry, and the numbers are exactly 1..N
    assert len(answers) == CLIENTS * COMMITS_PER_CLIENT
    assert {code for code, _ in answers} <= {201, 409}
    assert {body["error"]["code"] for code, body in answers if code == 409} <= {"retry"}
    committed = sorted(body["number"] for code, body in answers if code == 201)
    assert committed == list(range(1, len(committed) + 1))
    assert sorted(PromptVersion.objects.filter(prompt=prompt).values_list("number", flat=True)) == committed
    prompt.refresh_from_db()
    assert prompt.version_count == len(committed)

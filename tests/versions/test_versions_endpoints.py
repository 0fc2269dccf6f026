"""Endpoint profiles and their client, against a real chat server on 127.0.0.1: retries with
backoff (Retry-After honoured), request pacing, bounded concurrency, usage, and the errors an
operator or a misbehaving endpoint gets."""

import os
from pathlib import Path

import pytest

from tests.chat_server import USAGE
from core.egress import EgressPolicy
from versions.endpoints import (
    EndpointClient,
    EndpointConfigError,
    EndpointError,
    EndpointProfile,
    RequestPacer,
    endpoint_client,
    endpoint_profile,
    profiles_parse,
    retry_after_seconds,
)

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = [{"role": "user", "content": "Request:\nhello\n\nAssistant response:\nhi"}]


def client_for(chat_server, *, sleeps=None, **profile):
    """A client whose waits are recorded instead of slept, so the backoff is asserted exactly."""
    data = {"base_url": chat_server.url, "allow_networks": ["127.0.0.1/32"], "backoff_seconds": 0.5, **profile}
    recorded = sleeps if sleeps is not None else []
    return EndpointClient(EndpointProfile.from_dict("judge", data), policy=EgressPolicy(), sleep=recorded.append)


def ask(text):
    return [{"role": "user", "content": f"Request:\n{text}\n\nAssistant response:\nSure."}]


def test_a_completion_carries_its_content_usage_and_attempts(chat_server):
    with client_for(chat_server) as client:
        completion = client.chat_completion(model="m", messages=MESSAGES, temperature=0)

    assert (completion.content, completion.usage, completion.attempts) == ("compliance.", USAGE, 1)
    assert completion.latency_ms > 0
    path, headers, body = chat_server.requests[0]
    assert path == "/v1/chat/completions"
    assert body == {"model": "m", "messages": MESSAGES, "temperature": 0}
    assert "Authorization" not in headers


def test_server_errors_are_retried_with_exponential_backoff(chat_server):
    sleeps = []
    with client_for(chat_server, sleeps=sleeps) as client:
        completion = client.chat_completion(model="m", messages=ask("[server error x3]"))

    assert completion.attempts == 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(chat_server.requests) == 4


def test_retry_after_sets_the_wait_of_a_429(chat_server):
    chat_server.retry_after = "7"
    sleeps = []
    with client_for(chat_server, sleeps=sleeps) as client:
        completion = client.chat_completion(model="m", messages=ask("[rate limited x2]"))

    assert (completion.attempts, sleeps) == (3, [7.0, 7.0])


def test_a_long_retry_after_is_capped_by_the_profile(chat_server):
    chat_server.retry_after = "3600"
    sleeps = []
    with client_for(chat_server, sleeps=sleeps, max_backoff_seconds=20) as client:
        client.chat_completion(model="m", messages=ask("[rate limited x1]"))

    assert sleeps == [20.0]


def test_timeouts_are_retried(chat_server):
    chat_server.slow_seconds = 1.0
    sleeps = []
    with client_for(chat_server, sleeps=sleeps, timeout=0.2) as client:
        completion = client.chat_completion(model="m", messages=ask("[slow x2]"))

    assert (completion.content, completion.attempts, sleeps) == ("compliance.", 3, [0.5, 1.0])


def test_the_client_gives_up_after_its_retries(chat_server):
    sleeps = []
    with client_for(chat_server, sleeps=sleeps, max_retries=2) as client, pytest.raises(EndpointError) as error:
        client.chat_completion(model="m", messages=ask("[server error x9]"))

    assert str(error.value) == "HTTP 500; gave up after 3 attempts"
    assert (error.value.attempts, error.value.status, sleeps) == (3, 500, [0.5, 1.0])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[malformed]", "answered with malformed JSON: '{not json'"),
        ("[no choices]", "answer has no choices[0].message.content"),
    ],
)
def test_malformed_answers_are_errors_at_once(chat_server, text, message):
    with client_for(chat_server) as client, pytest.raises(EndpointError) as error:
        client.chat_completion(model="m", messages=ask(text))

    assert (str(error.value), error.value.attempts) == (message, 1)
    assert len(chat_server.requests) == 1


def test_the_key_is_read_from_the_named_variable_when_sending(chat_server, monkeypatch):
    monkeypatch.setenv("LETHE_TEST_JUDGE_KEY", "k-123")
    with client_for(chat_server, api_key_env="LETHE_TEST_JUDGE_KEY") as client:
        client.chat_completion(model="m", messages=MESSAGES)
        monkeypatch.setenv("LETHE_TEST_JUDGE_KEY", "k-456")
        client.chat_completion(model="m", messages=MESSAGES)

    assert [headers["Authorization"] for _, headers, _ in chat_server.requests] == ["Bearer k-123", "Bearer k-456"]


def test_an_unset_key_variable_is_named_and_nothing_is_sent(chat_server, monkeypatch):
    monkeypatch.delenv("LETHE_TEST_JUDGE_KEY", raising=False)
    with client_for(chat_server, api_key_env="LETHE_TEST_JUDGE_KEY") as client, pytest.raises(EndpointConfigError) as error:
        client.chat_completion(model="m", messages=MESSAGES)

    assert str(error.value) == ("endpoint profile 'judge' takes its key from LETHE_TEST_JUDGE_KEY, which is not set in this process (the worker's environment)")
    assert chat_server.requests == []


def test_loopback_is_refused_unless_the_profile_or_the_operator_allows_it(chat_server, settings):
    profile = EndpointProfile.from_dict("judge", {"base_url": chat_server.url})
    with EndpointClient(profile, policy=EgressPolicy()) as client, pytest.raises(EndpointError) as error:
        client.chat_completion(model="m", messages=MESSAGES)
    assert str(error.value).startswith("Outgoing request refused: '127.0.0.1' is a loopback address")
    assert chat_server.requests == []

    private = EndpointProfile.from_dict("judge", {"base_url": chat_server.url, "allow_private": True})
    with EndpointClient(private, policy=EgressPolicy()) as client:
        assert client.chat_completion(model="m", messages=MESSAGES).content == "compliance."

    settings.LETHE_ENDPOINTS = {"judge": {"base_url": chat_server.url}}
    settings.LETHE_EGRESS_ALLOW_NETWORKS = ["127.0.0.0/8"]
    with endpoint_client("judge") as client:
        assert client.chat_completion(model="m", messages=MESSAGES).content == "compliance."


def test_concurrency_is_bounded_by_the_profile(chat_server):
    # given a server that holds each request until two are in flight together
    chat_server.barrier_parties = 2
    with client_for(chat_server, max_concurrency=2) as client:
        # when six requests are mapped over the client
        results = client.map(lambda i: client.chat_completion(model="m", messages=ask(f"[together] case {i}")).content, range(6))

    # then they ran two at a time, never more, and come back in order
    assert results == ["compliance."] * 6
    assert chat_server.max_in_flight == 2


def test_the_pacer_spaces_requests_to_the_rate():
    sleeps = []
    pacer = RequestPacer(60, sleep=sleeps.append, clock=lambda: 100.0)

    for _ in range(3):
        pacer.wait()

    assert sleeps == [1.0, 2.0]


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


@pytest.mark.parametrize(
    ("profiles", "message"),
    [
        ([], "LETHE_ENDPOINTS must be a JSON object {name: profile}, got list"),
        ({"j": "http://x"}, 'LETHE_ENDPOINTS profile \'j\': expected an object such as {"base_url": "https://host/v1"}, got str'),
        (
            {"j": {"base_url": "ftp://host/v1"}},
            "LETHE_ENDPOINTS profile 'j': base_url must be an http(s) URL without credentials or query, e.g. https://host/v1; got 'ftp://host/v1'",
        ),
        (
            {"j": {"base_url": "https://u:p@host/v1"}},
            "LETHE_ENDPOINTS profile 'j': base_url must be an http(s) URL without credentials or query, e.g. https://host/v1; got 'https://u:p@host/v1'",
        ),
        (
            {"j": {"base_url": "https://host/v1", "key": "x"}},
            "LETHE_ENDPOINTS profile 'j': unknown keys ['key']; expected some of base_url, api_key_env, "
            "allow_private, allow_networks, timeout, max_concurrency, requests_per_minute, max_retries, "
            "backoff_seconds, max_backoff_seconds",
        ),
        ({"j": {"base_url": "https://host/v1", "max_concurrency": 0}}, "LETHE_ENDPOINTS profile 'j': max_concurrency must be a number >= 1, got 0"),
        ({"j": {"base_url": "https://host/v1", "max_concurrency": 2.5}}, "LETHE_ENDPOINTS profile 'j': max_concurrency must be a whole number, got 2.5"),
        ({"j": {"base_url": "https://host/v1", "allow_private": "yes"}}, "LETHE_ENDPOINTS profile 'j': allow_private must be true or false"),
        (
            {"j": {"base_url": "https://host/v1", "allow_networks": ["intranet"]}},
            "LETHE_ENDPOINTS profile 'j': allow_networks: 'intranet' is not a network such as 127.0.0.0/8 or fd12::/64 ('intranet' does not appear to be an IPv4 or IPv6 network)",
        ),
    ],
)
def test_malformed_profiles_are_named(profiles, message):
    with pytest.raises(EndpointConfigError) as error:
        profiles_parse(profiles)
    assert str(error.value) == message


def test_an_unknown_profile_lists_the_configured_ones(settings):
    settings.LETHE_ENDPOINTS = {"judge": {"base_url": "https://judge.invalid/v1"}, "grader": {"base_url": "https://grader.invalid/v1"}}
    with pytest.raises(EndpointConfigError) as error:
        endpoint_profile("attacker")
    assert str(error.value) == (
        "no endpoint profile 'attacker': endpoints are named profiles the operator defines in LETHE_ENDPOINTS or LETHE_ENDPOINTS_FILE (configured: grader, judge)"
    )
    assert endpoint_profile("judge").base_url == "https://judge.invalid/v1"


def test_profiles_come_from_a_file_the_operator_names(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "endpoints.json"
    path.write_text('{"judge": {"base_url": "https://judge.invalid/v1", "api_key_env": "JUDGE_KEY", "requests_per_minute": 30}}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("LETHE_ENDPOINTS")}
    code = "import django; django.setup(); from versions.endpoints import endpoint_profile; p = endpoint_profile('judge'); print(p.base_url, p.api_key_env, p.requests_per_minute)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings", "LETHE_ENDPOINTS_FILE": str(path)},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "https://judge.invalid/v1 JUDGE_KEY 30.0"


def test_malformed_operator_settings_stop_the_start_with_their_name(tmp_path):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("LETHE_ENDPOINTS", "LETHE_EGRESS"))}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", LETHE_VAR_DIR=str(tmp_path / "var"))

    def check(**overrides):
        return subprocess.run([sys.executable, "manage.py", "check"], env={**env, **overrides}, capture_output=True, text=True, timeout=120, cwd=ROOT)

    bad_profile = check(LETHE_ENDPOINTS='{"judge": {"base_url": "ftp://judge.invalid/v1"}}')
    not_json = check(LETHE_ENDPOINTS="{judge")
    bad_network = check(LETHE_EGRESS_ALLOW_NETWORKS="10.0.0.0/8,intranet")

    assert bad_profile.returncode != 0
    assert "(lethe.E001) LETHE_ENDPOINTS profile 'judge': base_url must be an http(s) URL" in bad_profile.stderr
    assert not_json.returncode != 0 and "LETHE_ENDPOINTS is not readable JSON" in not_json.stderr
    assert bad_network.returncode != 0 and "LETHE_EGRESS_ALLOW_NETWORKS: 'intranet' is not a network such as 127.0.0.0/8" in bad_network.stderr

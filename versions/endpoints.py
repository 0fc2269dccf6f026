"""Named endpoint profiles, owned by the operator, and the one client that calls them.

An OpenAI-compatible endpoint (a judge model today, a served model under evaluation later) is
reached only through a profile the operator defines, in LETHE_ENDPOINTS (JSON in the environment)
or in the JSON file LETHE_ENDPOINTS_FILE names::

    {"judge": {"base_url": "https://llm.internal.example/v1", "api_key_env": "LETHE_JUDGE_KEY",
               "allow_private": true, "timeout": 30, "max_concurrency": 4, "requests_per_minute": 120}}

A request names a profile, never a URL or an environment variable. The key is read from the
variable the profile names when a request is sent, and is never stored or pinned. Every request
goes through the egress rules (``core.egress``), widened only by the profile's own
``allow_private`` / ``allow_networks``.

``EndpointClient.chat_completion`` retries 408, 429, 5xx, timeouts and failed connections with
exponential backoff (a Retry-After answer sets the wait), paces requests to the profile's
requests-per-minute, and reports latency, token usage and attempts; ``EndpointClient.map`` runs a
function over items on at most ``max_concurrency`` threads. No Django imports but the settings
read by ``endpoint_profiles``.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests

from core.egress import PRIVATE_NETWORKS, EgressPolicy, EgressRefused, EgressSession, egress_policy, parse_networks

SETTING = "LETHE_ENDPOINTS"
FILE_SETTING = "LETHE_ENDPOINTS_FILE"
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
RETRYABLE_STATUS = frozenset({408, 429})


class EndpointConfigError(ValueError):
    """A profile that is missing or malformed, or a key variable that is not set."""


class EndpointError(Exception):
    """A request that failed for good (after its retries, or at once when retrying cannot help)."""

    def __init__(self, message, *, attempts=1, status=None):
        super().__init__(message)
        self.attempts = attempts
        self.status = status


class EndpointUnreachable(EndpointError):
    """No connection could be made, even after the retries: the server is down, not the case
    hard. A caller stops rather than recording every remaining case as unanswered."""


class EndpointKeyRefused(EndpointError):
    """HTTP 401 or 403: the key is wrong, expired or lacks access. No request can succeed."""


# Headers that say what software answered (vLLM, TGI, an API gateway, OpenAI's API version);
# kept in an endpoint's fingerprint. Any header with "version" in its name is kept too.
FINGERPRINT_HEADERS = frozenset({"server", "openai-version", "openai-model", "x-vllm-version", "x-model-id", "x-request-model"})
FINGERPRINT_MAX_MODELS = 50


def version_headers(headers) -> dict:
    """The headers of an answer that identify the serving software, lower-cased, values bounded."""
    kept = {}
    for name, value in (headers or {}).items():
        lower = name.lower()
        if lower in FINGERPRINT_HEADERS or "version" in lower:
            kept[lower] = str(value).strip()[:200]
    return dict(sorted(kept.items()))


@dataclass(frozen=True)
class EndpointProfile:
    """One operator-defined endpoint. ``base_url`` ends before ``/chat/completions``."""

    name: str
    base_url: str
    api_key_env: str = ""
    allow_private: bool = False
    allow_networks: tuple = ()
    timeout: float = 30.0
    max_concurrency: int = 4
    requests_per_minute: float | None = None
    max_retries: int = 4
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0

    FIELDS = (
        "base_url",
        "api_key_env",
        "allow_private",
        "allow_networks",
        "timeout",
        "max_concurrency",
        "requests_per_minute",
        "max_retries",
        "backoff_seconds",
        "max_backoff_seconds",
    )

    @classmethod
    def from_dict(cls, name: str, data) -> EndpointProfile:
        where = f"{SETTING} profile {name!r}"
        if not isinstance(data, dict):
            raise EndpointConfigError(f'{where}: expected an object such as {{"base_url": "https://host/v1"}}, got {type(data).__name__}')
        unknown = sorted(set(data) - set(cls.FIELDS))
        if unknown:
            raise EndpointConfigError(f"{where}: unknown keys {unknown}; expected some of {', '.join(cls.FIELDS)}")
        base_url = str(data.get("base_url", "")).rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
            raise EndpointConfigError(f"{where}: base_url must be an http(s) URL without credentials or query, e.g. https://host/v1; got {base_url!r}")

        def number(key, default, *, minimum, integer=False, optional=False):
            value = data.get(key, default)
            if value is None and optional:
                return None
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < minimum:
                raise EndpointConfigError(f"{where}: {key} must be a number >= {minimum}, got {value!r}")
            if integer and value != int(value):
                raise EndpointConfigError(f"{where}: {key} must be a whole number, got {value!r}")
            return int(value) if integer else float(value)

        api_key_env = data.get("api_key_env", "")
        if not isinstance(api_key_env, str):
            raise EndpointConfigError(f"{where}: api_key_env must be the name of an environment variable, got {api_key_env!r}")
        if not isinstance(data.get("allow_private", False), bool):
            raise EndpointConfigError(f"{where}: allow_private must be true or false")
        try:
            networks = parse_networks(data.get("allow_networks", ()), setting=f"{where}: allow_networks")
        except ValueError as exc:
            raise EndpointConfigError(str(exc)) from None
        return cls(
            name=name,
            base_url=base_url,
            api_key_env=api_key_env,
            allow_private=data.get("allow_private", False),
            allow_networks=networks,
            timeout=number("timeout", 30.0, minimum=0.001),
            max_concurrency=number("max_concurrency", 4, minimum=1, integer=True),
            requests_per_minute=number("requests_per_minute", None, minimum=0.001, optional=True),
            max_retries=number("max_retries", 4, minimum=0, integer=True),
            backoff_seconds=number("backoff_seconds", 1.0, minimum=0),
            max_backoff_seconds=number("max_backoff_seconds", 60.0, minimum=0),
        )

    def egress(self, base: EgressPolicy) -> EgressPolicy:
        """The installation's policy widened by what this profile allows."""
        return base.widened((*(PRIVATE_NETWORKS if self.allow_private else ()), *self.allow_networks))


def profiles_parse(data) -> dict[str, EndpointProfile]:
    if not isinstance(data, dict):
        raise EndpointConfigError(f"{SETTING} must be a JSON object {{name: profile}}, got {type(data).__name__}")
    return {str(name): EndpointProfile.from_dict(str(name), profile) for name, profile in data.items()}


def endpoint_profiles() -> dict[str, EndpointProfile]:
    """Every profile the operator configured (LETHE_ENDPOINTS / LETHE_ENDPOINTS_FILE)."""
    from django.conf import settings

    return profiles_parse(settings.LETHE_ENDPOINTS)


def endpoint_profile(name) -> EndpointProfile:
    """The profile called ``name``; an unknown name is an EndpointConfigError listing the known ones."""
    profiles = endpoint_profiles()
    if not isinstance(name, str) or name not in profiles:
        known = ", ".join(sorted(profiles)) or "none is configured"
        raise EndpointConfigError(f"no endpoint profile {name!r}: endpoints are named profiles the operator defines in {SETTING} or {FILE_SETTING} (configured: {known})")
    return profiles[name]


@dataclass(frozen=True)
class ChatCompletion:
    content: str
    latency_ms: float  # the answering request's round trip
    attempts: int
    usage: dict = field(default_factory=dict)  # prompt_tokens, completion_tokens, total_tokens as reported
    headers: dict = field(default_factory=dict)  # the answer's version headers (version_headers)


def retry_after_seconds(value: str | None, *, now=None) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) as seconds from now; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class RequestPacer:
    """Spaces requests evenly to at most ``per_minute`` a minute, across threads."""

    def __init__(self, per_minute: float | None, *, sleep=time.sleep, clock=time.monotonic):
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._sleep = sleep
        self._clock = clock

    def wait(self):
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            self._sleep(slot - now)


def _usage(data) -> dict:
    usage = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        return {}
    return {key: usage[key] for key in ("prompt_tokens", "completion_tokens", "total_tokens") if isinstance(usage.get(key), int)}


class EndpointClient:
    """Calls one profile's OpenAI-compatible API under the egress rules."""

    def __init__(self, profile: EndpointProfile, *, policy: EgressPolicy, sleep=time.sleep):
        self.profile = profile
        self.policy = profile.egress(policy)
        self.session = EgressSession(self.policy, pool_maxsize=profile.max_concurrency)
        self.pacer = RequestPacer(profile.requests_per_minute, sleep=sleep)
        self._sleep = sleep

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.session.close()

    def api_key(self) -> str:
        """The key, read now from the variable the profile names ("" when it names none)."""
        if not self.profile.api_key_env:
            return ""
        key = os.environ.get(self.profile.api_key_env, "")
        if not key:
            raise EndpointConfigError(
                f"endpoint profile {self.profile.name!r} takes its key from {self.profile.api_key_env}, which is not set in this process (the worker's environment)"
            )
        return key

    def _delay(self, attempt, retry_after):
        delay = retry_after if retry_after is not None else self.profile.backoff_seconds * 2 ** (attempt - 1)
        return min(delay, self.profile.max_backoff_seconds)

    def chat_completion(self, *, model: str, messages: list[dict], **options) -> ChatCompletion:
        """POST {base_url}/chat/completions; the first choice's message content with its usage.

        Raises EndpointError once retrying cannot help: after ``max_retries`` retries of 408, 429,
        5xx, timeouts and failed connections; at once for other answers, redirects (never
        followed), malformed JSON, an answer without content, or an address the egress rules refuse.
        """
        url = f"{self.profile.base_url}/chat/completions"
        key = self.api_key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        body = {"model": model, "messages": messages, **options}
        attempts_allowed = self.profile.max_retries + 1
        for attempt in range(1, attempts_allowed + 1):
            self.pacer.wait()
            retry_after = None
            started = time.perf_counter()
            try:
                reply = self.session.post(url, json=body, headers=headers, timeout=self.profile.timeout, stream=True)
                try:
                    raw = _read_bounded(reply)
                finally:
                    reply.close()
            except EgressRefused as exc:
                raise EndpointError(str(exc), attempts=attempt) from None
            except requests.Timeout:
                problem, status = f"no answer within {self.profile.timeout:g} s", None
            except requests.ConnectionError as exc:
                problem, status = f"connection failed ({type(exc).__name__})", None
                if attempt == attempts_allowed:
                    raise EndpointUnreachable(f"{problem}; gave up after {attempt} attempts", attempts=attempt) from None
            else:
                latency_ms = (time.perf_counter() - started) * 1000.0
                status = reply.status_code
                if status in RETRYABLE_STATUS or status >= 500:
                    problem = f"HTTP {status}"
                    retry_after = retry_after_seconds(reply.headers.get("Retry-After"))
                elif 300 <= status < 400:
                    raise EndpointError(
                        f"answered HTTP {status} (a redirect to {reply.headers.get('Location', '?')!r}); redirects are not "
                        f"followed: point profile {self.profile.name!r} at the final address",
                        attempts=attempt,
                        status=status,
                    )
                elif status in (401, 403):
                    raise EndpointKeyRefused(_key_refused(self.profile, status), attempts=attempt, status=status)
                elif not 200 <= status < 300:
                    raise EndpointError(f"answered HTTP {status}: {raw[:200].decode('utf-8', 'replace')!r}", attempts=attempt, status=status)
                else:
                    return _completion(raw, latency_ms=latency_ms, attempts=attempt, headers=version_headers(reply.headers))
            if attempt == attempts_allowed:
                raise EndpointError(f"{problem}; gave up after {attempt} attempts", attempts=attempt, status=status)
            self._sleep(self._delay(attempt, retry_after))
        raise AssertionError("unreachable")

    def fingerprint(self, *, model: str) -> dict:
        """What answers at this profile now: ``GET {base_url}/models`` (the served model ids, as
        listed, and whether ``model`` is among them) and the answer's version headers.

        One request, no retries: a server without ``/models`` (or an unreadable answer) is
        recorded as ``{"error": ...}`` and is no reason to stop. A refused key (401/403) is:
        EndpointKeyRefused, before any case is sent; so is a server that cannot be reached.
        """
        url = f"{self.profile.base_url}/models"
        key = self.api_key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        try:
            reply = self.session.get(url, headers=headers, timeout=self.profile.timeout, stream=True)
            try:
                raw = _read_bounded(reply)
            finally:
                reply.close()
        except EgressRefused as exc:
            raise EndpointError(str(exc)) from None
        except requests.Timeout:
            return {"error": f"GET /models: no answer within {self.profile.timeout:g} s"}
        except requests.ConnectionError as exc:
            raise EndpointUnreachable(f"GET /models: connection failed ({type(exc).__name__})") from None
        except EndpointError as exc:
            return {"error": f"GET /models: {exc}"}
        found = {"headers": version_headers(reply.headers)}
        if reply.status_code in (401, 403):
            raise EndpointKeyRefused(_key_refused(self.profile, reply.status_code), status=reply.status_code)
        if reply.status_code != 200:
            return {**found, "error": f"GET /models answered HTTP {reply.status_code}"}
        try:
            data = json.loads(raw)["data"]
            listed = [{k: entry[k] for k in ("id", "owned_by", "created", "root", "parent", "max_model_len") if k in entry} for entry in data[:FINGERPRINT_MAX_MODELS]]
        except (ValueError, KeyError, TypeError):
            return {**found, "error": "GET /models answer is not an OpenAI model list"}
        return {**found, "models": listed, "model_listed": any(entry.get("id") == model for entry in listed)}

    def map(self, function, items) -> list:
        """``[function(item) for item in items]`` on at most ``max_concurrency`` threads, in order."""
        items = list(items)
        workers = min(self.profile.max_concurrency, len(items))
        if workers <= 1:
            return [function(item) for item in items]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"lethe-endpoint-{self.profile.name}") as pool:
            return list(pool.map(function, items))


def _read_bounded(reply) -> bytes:
    chunks, size = [], 0
    for chunk in reply.iter_content(64 * 1024):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise EndpointError(f"answer larger than {MAX_RESPONSE_BYTES} bytes; not read", status=reply.status_code)
        chunks.append(chunk)
    return b"".join(chunks)


def _key_refused(profile, status) -> str:
    where = f"the key in {profile.api_key_env}" if profile.api_key_env else "no key (the profile names no api_key_env)"
    return f"endpoint profile {profile.name!r} answered HTTP {status}: it refused {where}; check the key and its access to the model"


def _completion(raw: bytes, *, latency_ms, attempts, headers=None) -> ChatCompletion:
    try:
        data = json.loads(raw)
    except ValueError:
        raise EndpointError(f"answered with malformed JSON: {raw[:120].decode('utf-8', 'replace')!r}", attempts=attempts) from None
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise EndpointError("answer has no choices[0].message.content", attempts=attempts) from None
    if not isinstance(content, str):
        raise EndpointError(f"choices[0].message.content is {type(content).__name__}, not text", attempts=attempts)
    return ChatCompletion(content=content, latency_ms=latency_ms, attempts=attempts, usage=_usage(data), headers=headers or {})


def endpoint_client(name: str) -> EndpointClient:
    """A client for the profile ``name`` under the installation's egress policy. Close it after use."""
    return EndpointClient(endpoint_profile(name), policy=egress_policy())

"""Generation through an OpenAI-compatible endpoint: one arm of an evaluation answered by a served
model (vLLM, TGI, `transformers serve`, a hosted API) rather than weights loaded in-process.

Each case is one chat-completions request: the prompt version's system prompt (or its wrapper
filled with the case, as ``mlcore.generation.apply_prompt_template`` does in-process) and the case
as the user message; an image case's PNG goes along as an OpenAI image content part (a
``data:image/png;base64`` URL), so a served vision-language model sees the typographic attack.
Requests go through ``versions.endpoints.EndpointClient``: at most the profile's
``max_concurrency`` in flight, paced to its requests-per-minute, retried with backoff on 429, 5xx
and timeouts. A case whose request still fails after the retries is answered by an error
(``EndpointAnswer.error``), which the evaluation records as the outcome ``error``: it says nothing
about the model and leaves every denominator. A refused key (401/403) or a server that cannot be
reached at all fails the arm instead: no answer would say anything then, and the answers already
received are handed to ``on_answers`` first, so a retried run need not ask for them again.
No Django imports.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass, field
from typing import Callable

from mlcore.generation import GenerationConfig, apply_prompt_template
from versions.endpoints import EndpointConfigError, EndpointError, EndpointKeyRefused, EndpointUnreachable


@dataclass(frozen=True)
class EndpointAnswer:
    text: str
    latency_ms: float  # the answering request's round trip (0 when it failed)
    new_tokens: int
    attempts: int = 1
    usage: dict = field(default_factory=dict)
    error: str = ""  # why the case has no answer, after the retries
    headers: dict = field(default_factory=dict)  # version headers of the answer (kept for the fingerprint)
    resumed: bool = False  # answered by an earlier run of the same evaluation, not asked again


def image_data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def chat_messages(prompt: str, template: str | None, image: bytes | None = None) -> list[dict]:
    """The chat messages for a case under a prompt version's template (system prompt or wrapper);
    with an image, the user message is a text part and an image part (OpenAI content parts)."""
    system, user = apply_prompt_template(prompt, template)
    content = (
        user
        if image is None
        else [
            {"type": "text", "text": user},
            {"type": "image_url", "image_url": {"url": image_data_url(image)}},
        ]
    )
    return ([{"role": "system", "content": system}] if system is not None else []) + [{"role": "user", "content": content}]


def request_options(config: GenerationConfig, *, seed: int, parameters: dict | None = None) -> dict:
    """Chat-completions settings for an evaluation's generation config: greedy is temperature 0;
    sampling passes temperature and top_p; the seed always goes along. The endpoint checkpoint's
    own fixed parameters come last and win: they are part of what that checkpoint is."""
    options = {"max_tokens": config.max_new_tokens, "seed": seed}
    if config.do_sample:
        options.update(temperature=config.temperature, top_p=config.top_p)
    else:
        options["temperature"] = 0.0
    options.update(parameters or {})
    return options


def generate_endpoint_responses(
    client,
    served_model: str,
    prompts: list[str],
    *,
    config: GenerationConfig = GenerationConfig(),
    template: str | None = None,
    templates: list[str | None] | None = None,
    images: list[bytes | None] | None = None,
    seed: int = 0,
    parameters: dict | None = None,
    answered: dict[int, EndpointAnswer] | None = None,
    on_answers: Callable[[dict[int, EndpointAnswer]], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
) -> list[EndpointAnswer]:
    """One answer per prompt, in the input order, through ``client`` (an EndpointClient).

    ``templates`` (one per prompt, e.g. filled from each case) overrides ``template``; ``images``
    holds each case's PNG or None. ``answered`` maps positions to answers an earlier run already
    received: those cases are not asked again. ``on_answers`` is called on the calling thread
    with each round's new answers (not errors), also when the arm then fails, so a journal can
    keep them. A missing key (EndpointConfigError), a refused key (EndpointKeyRefused) and an
    unreachable server (EndpointUnreachable) fail the whole arm. ``check_cancelled`` is called
    between rounds of requests, so a cancelled run stops sending.
    """
    options = request_options(config, seed=seed, parameters=parameters)
    templates = list(templates) if templates is not None else [template] * len(prompts)
    images = list(images) if images is not None else [None] * len(prompts)
    results: dict[int, EndpointAnswer] = {index: answer for index, answer in (answered or {}).items() if 0 <= index < len(prompts) and not answer.error}
    fresh: dict[int, EndpointAnswer] = {}
    lock = threading.Lock()

    def answer(index):
        try:
            reply = client.chat_completion(model=served_model, messages=chat_messages(prompts[index], templates[index], images[index]), **options)
        except (EndpointConfigError, EndpointKeyRefused, EndpointUnreachable):
            raise
        except EndpointError as exc:
            return EndpointAnswer("", 0.0, 0, attempts=exc.attempts, error=str(exc)[:500])
        received = EndpointAnswer(
            reply.content.strip(), reply.latency_ms, int(reply.usage.get("completion_tokens", 0)), attempts=reply.attempts, usage=dict(reply.usage), headers=dict(reply.headers)
        )
        with lock:
            fresh[index] = received
        return received

    def hand_over():
        with lock:
            batch = dict(fresh)
            fresh.clear()
        if batch and on_answers is not None:
            on_answers(batch)

    client.api_key()  # an unset key fails here, before any request
    pending = [index for index in range(len(prompts)) if index not in results]
    # In rounds of a few requests per concurrent slot: between rounds, on the calling thread (the
    # one with the run's database connection), answers are handed over, progress is reported and
    # cancellation checked.
    round_size = max(1, client.profile.max_concurrency) * 4
    if progress is not None and results:
        progress(len(results), len(prompts))
    for start in range(0, len(pending), round_size):
        if check_cancelled is not None:
            check_cancelled()
        chunk = pending[start : start + round_size]
        try:
            for index, received in zip(chunk, client.map(answer, chunk), strict=True):
                results[index] = received
        finally:
            hand_over()
        if progress is not None:
            progress(len(results), len(prompts))
    return [results[index] for index in range(len(prompts))]


def endpoint_totals(answers: list[EndpointAnswer]) -> dict:
    """Run-dependent figures of an endpoint arm for the evaluation's timings. Answers resumed from
    an earlier run count as answered, not as requests of this one."""
    answered = [a for a in answers if not a.error]
    asked = [a for a in answers if not a.resumed]
    totals = {
        "requests": sum(a.attempts for a in asked),
        "errors": len(answers) - len(answered),
        "retries": sum(a.attempts - 1 for a in asked),
        "resumed": len(answers) - len(asked),
        "prompt_tokens": sum(a.usage.get("prompt_tokens", 0) for a in answered),
        "completion_tokens": sum(a.usage.get("completion_tokens", 0) for a in answered),
        "mean_latency_ms": sum(a.latency_ms for a in answered) / len(answered) if answered else None,
    }
    return totals

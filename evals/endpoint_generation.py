"""Generation through an OpenAI-compatible endpoint: one arm of an evaluation answered by a served
model (vLLM, TGI, `transformers serve`, a hosted API) rather than weights loaded in-process.

Each case is one chat-completions request: the prompt version's system prompt (or its wrapper
filled with the case, as ``mlcore.generation.apply_prompt_template`` does in-process) and the case
as the user message. Requests go through ``versions.endpoints.EndpointClient``: at most the
profile's ``max_concurrency`` in flight, paced to its requests-per-minute, retried with backoff on
429, 5xx and timeouts. A case whose request still fails after the retries is answered by an error
(``EndpointAnswer.error``), which the evaluation records as the outcome ``error``: it says nothing
about the model and leaves every denominator. No Django imports.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from mlcore.generation import GenerationConfig, apply_prompt_template
from versions.endpoints import EndpointConfigError, EndpointError


@dataclass(frozen=True)
class EndpointAnswer:
    text: str
    latency_ms: float  # the answering request's round trip (0 when it failed)
    new_tokens: int
    attempts: int = 1
    usage: dict = field(default_factory=dict)
    error: str = ""  # why the case has no answer, after the retries


def chat_messages(prompt: str, template: str | None) -> list[dict]:
    """The chat messages for a case under a prompt version's template (system prompt or wrapper)."""
    system, user = apply_prompt_template(prompt, template)
    return ([{"role": "system", "content": system}] if system is not None else []) + [{"role": "user", "content": user}]


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
    seed: int = 0,
    parameters: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
) -> list[EndpointAnswer]:
    """One answer per prompt, in the input order, through ``client`` (an EndpointClient).

    A missing key (EndpointConfigError) fails the whole arm at once: no case could be answered.
    ``check_cancelled`` is called between rounds of requests, so a cancelled run stops sending.
    """
    options = request_options(config, seed=seed, parameters=parameters)

    def answer(prompt):
        try:
            reply = client.chat_completion(model=served_model, messages=chat_messages(prompt, template), **options)
        except EndpointConfigError:
            raise
        except EndpointError as exc:
            return EndpointAnswer("", 0.0, 0, attempts=exc.attempts, error=str(exc)[:500])
        return EndpointAnswer(reply.content.strip(), reply.latency_ms, int(reply.usage.get("completion_tokens", 0)),
                              attempts=reply.attempts, usage=dict(reply.usage))

    client.api_key()  # an unset key fails here, before any request
    # In rounds of a few requests per concurrent slot: between rounds, on the calling thread (the
    # one with the run's database connection), progress is reported and cancellation checked.
    round_size = max(1, client.profile.max_concurrency) * 4
    results: list[EndpointAnswer] = []
    for start in range(0, len(prompts), round_size):
        if check_cancelled is not None:
            check_cancelled()
        results.extend(client.map(answer, prompts[start : start + round_size]))
        if progress is not None:
            progress(len(results), len(prompts))
    return results


def endpoint_totals(answers: list[EndpointAnswer]) -> dict:
    """Run-dependent figures of an endpoint arm for the evaluation's timings."""
    answered = [a for a in answers if not a.error]
    totals = {
        "requests": sum(a.attempts for a in answers),
        "errors": len(answers) - len(answered),
        "retries": sum(a.attempts - 1 for a in answers),
        "prompt_tokens": sum(a.usage.get("prompt_tokens", 0) for a in answered),
        "completion_tokens": sum(a.usage.get("completion_tokens", 0) for a in answered),
        "mean_latency_ms": sum(a.latency_ms for a in answered) / len(answered) if answered else None,
    }
    return totals

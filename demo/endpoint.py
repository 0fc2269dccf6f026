"""The served-model part of the demo (`manage.py demo --endpoint`), after the text demo.

The unlearned checkpoint (a LoRA adapter on the tiny base) is laid out merged in a folder and
served by `transformers serve` on 127.0.0.1 (as `serve_checkpoint` does), registered as an
endpoint checkpoint `served-from` it, and evaluated A/B: the checkpoint in-process (A) against
the same weights through the endpoint (B). With greedy decoding both arms answer alike, so the
verdict is "no significant difference". The demo is its own operator here: it adds the endpoint
profile `demo-serve` (loopback only) to this process's settings, which the embedded executor's
worker threads read; a deployment defines profiles in LETHE_ENDPOINTS (docs/deploy.md).
"""

import socket
import subprocess

from django.conf import settings

from demo.services import DemoError, _say, ab_evaluation
from evals.management.commands.serve_checkpoint import (
    checkpoint_serving_folder,
    served_name,
    served_name_directory,
    transformers_serve_command,
    wait_until_up,
)
from evals.models import CaseResult
from evals.services import starter_suite_install
from versions import services
from versions.models import Checkpoint, CheckpointKind, Relation

PROFILE = "demo-serve"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def endpoint_demo_run(*, project, user, served, out, max_new_tokens=24, seed=0):
    _say(out, f"\n[endpoint 1/3] serving {served} with `transformers serve` on 127.0.0.1")
    folder = checkpoint_serving_folder(checkpoint=served)
    name = served_name(served)
    port = _free_port()
    command = transformers_serve_command(name, host="127.0.0.1", port=port, device="cpu")
    _say(out, "  " + " ".join(command))
    process = subprocess.Popen(command, cwd=served_name_directory(folder, name), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(f"http://127.0.0.1:{port}", process, timeout=300)
        settings.LETHE_ENDPOINTS = {
            **(settings.LETHE_ENDPOINTS or {}),
            PROFILE: {"base_url": f"http://127.0.0.1:{port}/v1", "allow_networks": ["127.0.0.1/32"], "max_concurrency": 4, "timeout": 120},
        }
        spec = services.endpoint_spec_clean({"profile": PROFILE, "model": name})
        endpoint = Checkpoint.objects.filter(model=served.model, kind=CheckpointKind.ENDPOINT, endpoint=spec, parent_edges__parent=served).order_by("number").first()
        if endpoint is None:
            endpoint = services.checkpoint_register(
                model=served.model,
                kind=CheckpointKind.ENDPOINT,
                actor=user,
                endpoint=spec,
                parents=[(served, Relation.SERVED_FROM)],
                message=f"{served} served by transformers serve",
            )
        _say(out, f"  {endpoint}: endpoint {PROFILE}, model {name}, served-from {served}")

        _say(out, f"[endpoint 2/3] A/B: {served} in-process (A) versus {endpoint} through the endpoint (B)")
        evaluation = ab_evaluation(
            project=project,
            user=user,
            base=served,
            unlearned=endpoint,
            suite_version=starter_suite_install(project=project, actor=user),
            max_new_tokens=max_new_tokens,
            seed=seed,
            out=out,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()

    _say(out, "[endpoint 3/3] report")
    rows = list(CaseResult.objects.filter(evaluation=evaluation).values_list("response_a", "response_b"))
    same = sum(1 for a, b in rows if a == b)
    timings = evaluation.timings.get("B", {}).get("endpoint", {})
    _say(out, f"  identical responses: {same}/{len(rows)} cases")
    if timings:
        latency = timings.get("mean_latency_ms")
        latency_text = "n/a" if latency is None else f"{latency:.0f} ms"
        _say(
            out,
            f"  endpoint: {timings['requests']} requests, {timings['errors']} errors, {timings['retries']} retries, "
            f"{timings['prompt_tokens']} prompt + {timings['completion_tokens']} completion tokens, mean latency {latency_text}",
        )
    fingerprint = evaluation.endpoint_fingerprints.get("B", {})
    if fingerprint:
        listed = ", ".join(entry.get("id", "?") for entry in fingerprint.get("models", [])) or fingerprint.get("error", "-")
        _say(out, f"  answered by: /v1/models [{listed}]" + "".join(f", {k}: {v}" for k, v in fingerprint.get("headers", {}).items()))
    _say(out, f"VERDICT: endpoint (B) versus in-process (A): {evaluation.verdict}")
    if evaluation.verdict != "no significant difference":
        raise DemoError(f"the served model and the same weights in-process disagree: {evaluation.verdict}")
    return evaluation

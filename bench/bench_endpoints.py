"""Throughput through an OpenAI-compatible endpoint against in-process generation, on the same
tiny model and the same cases: cases per second of Lethe's in-process batched generation
(mlcore.generation.generate_responses, the baseline) and of the endpoint arm's client
(evals.endpoint_generation.generate_endpoint_responses) against `transformers serve` on
127.0.0.1, at each concurrency setting (the profile's max_concurrency). Prints each figure as a
ratio to the baseline measured in this run; every figure comes from this one run.

    python bench/bench_endpoints.py [--cases 48] [--max-new-tokens 16] [--concurrency 1 2 4 8] [--threads 1] [--continuous-batching]

Both sides get the same CPU threads (torch in-process, OMP_NUM_THREADS for the server). Greedy
decoding: the endpoint's answers are compared with the in-process ones and the count of identical
answers printed, so a figure never comes from a server answering something else.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = Path(__file__).resolve().parent / "out"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=48)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32, help="in-process batch size")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--continuous-batching", action="store_true", help="start transformers serve with --continuous-batching")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for each side; 1 keeps figures stable on a shared 2-core machine")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="lethe-bench-endpoints-"))
    os.environ["LETHE_VAR_DIR"] = str(workdir / "var")
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_generation import bench_cases
    from evals.endpoint_generation import generate_endpoint_responses
    from mlcore.generation import GenerationConfig, generate_responses
    from evals.management.commands.serve_checkpoint import served_name_directory, transformers_serve_command, wait_until_up
    from mlcore.loading import load_model_and_tokenizer
    from mlcore.tiny import build_tiny_model
    from core.egress import EgressPolicy
    from versions.endpoints import EndpointClient, EndpointProfile

    torch.set_num_threads(args.threads)
    model_dir = build_tiny_model(workdir / "tiny")
    prompts = [case["prompt"] for case in bench_cases(args.cases)]
    config = GenerationConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    print(
        f"{args.cases} cases, max_new_tokens {args.max_new_tokens}, {args.threads} CPU thread(s) per side, tiny model of the tests"
        + (", server with --continuous-batching" if args.continuous_batching else "")
    )

    model, tokenizer = load_model_and_tokenizer(base=str(model_dir))
    generate_responses(model, tokenizer, prompts[:4], config=config)  # warm-up
    began = time.perf_counter()
    local = generate_responses(model, tokenizer, prompts, config=config)
    baseline = args.cases / (time.perf_counter() - began)
    del model

    port = _free_port()
    name = "tiny@1"
    command = transformers_serve_command(name, host="127.0.0.1", port=port, device="cpu")
    if args.continuous_batching:
        command.append("--continuous-batching")
    environment = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    process = subprocess.Popen(command, cwd=served_name_directory(model_dir, name, root=workdir / "names"), env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        wait_until_up(f"http://127.0.0.1:{port}", process, timeout=600)
        for concurrency in args.concurrency:
            profile = EndpointProfile.from_dict(
                "bench", {"base_url": f"http://127.0.0.1:{port}/v1", "allow_networks": ["127.0.0.1/32"], "max_concurrency": concurrency, "timeout": 300, "backoff_seconds": 0}
            )
            with EndpointClient(profile, policy=EgressPolicy(())) as client:
                generate_endpoint_responses(client, name, prompts[:2], config=config)  # warm-up (loads the model once)
                began = time.perf_counter()
                answers = generate_endpoint_responses(client, name, prompts, config=config)
                rate = args.cases / (time.perf_counter() - began)
            errors = sum(1 for answer in answers if answer.error)
            same = sum(1 for answer, generated in zip(answers, local, strict=True) if answer.text == generated.text)
            rows.append({"concurrency": concurrency, "cases_per_second": rate, "ratio": rate / baseline, "errors": errors, "identical": same})
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()

    print(f"in-process baseline (batch {args.batch_size}): {baseline:.2f} cases/s")
    print("| path | concurrency | cases/s | ratio to in-process | identical answers | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| in-process, batched | - | {baseline:.2f} | 1.00x | - | - |")
    for row in rows:
        print(f"| transformers serve | {row['concurrency']} | {row['cases_per_second']:.2f} | {row['ratio']:.2f}x | {row['identical']}/{args.cases} | {row['errors']} |")
    first = rows[0]["cases_per_second"] if rows else 0
    for row in rows[1:]:
        print(f"endpoint ratios: concurrency {row['concurrency']} is {row['cases_per_second'] / first:.2f}x concurrency {rows[0]['concurrency']}")
    OUT.mkdir(exist_ok=True)
    (OUT / "endpoints.json").write_text(
        json.dumps({"baseline_cases_per_second": baseline, "rows": rows, "cases": args.cases, "max_new_tokens": args.max_new_tokens, "threads": args.threads}, indent=2)
    )


if __name__ == "__main__":
    main()

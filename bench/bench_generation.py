"""Generation throughput: a naive per-case loop, a hand-written batched loop, and a Lethe
evaluation end to end (generation, judging, database writes), per arm, on the same tiny model
and the same cases. Prints the ratios; every figure comes from this one run.

    python bench/bench_generation.py [--cases 512] [--batch-size 32] [--max-new-tokens 32]
        [--hidden-size 64] [--layers 2] [--heads 4] [--intermediate-size 128]

The model-size options default to the tiny model of the tests (mlcore.tiny.TinyModelSpec),
so figures taken without them stay comparable; the model's size is printed with the ratios.

Goals (issue 5): Lethe >= 8x the naive loop and >= 0.9x the hand-written batched loop.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bench_cases(count):
    from evals.services import starter_suite_cases
    from evals.transforms import TRANSFORMS, derive_cases
    from mlcore.tiny import load_bundled_corpus

    base = starter_suite_cases()
    pool = base + derive_cases(base, list(TRANSFORMS))
    pool += [
        {"key": f"corpus-{i:03d}", "prompt": row["prompt"], "category": row["category"], "expected": "refuse" if row["kind"] == "harmful" else "comply"}
        for i, row in enumerate(load_bundled_corpus())
    ]
    cases = []
    for i in range(count):
        case = dict(pool[i % len(pool)])
        case["key"] = f"{case['key']}#{i // len(pool)}"
        cases.append(case)
    return cases


def naive_loop(model, tokenizer, prompts, max_new_tokens):
    import torch

    from mlcore.generation import render_prompt

    responses = []
    for prompt in prompts:
        ids = tokenizer(render_prompt(tokenizer, prompt), add_special_tokens=False, return_tensors="pt")
        with torch.inference_mode():
            output = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        responses.append(tokenizer.decode(output[0, ids["input_ids"].shape[1] :], skip_special_tokens=True))
    return responses


def batched_loop(model, tokenizer, prompts, max_new_tokens, batch_size):
    """What a careful engineer writes by hand: left-padded batches in input order, KV cache."""
    import torch

    from mlcore.generation import render_prompt

    tokenizer.padding_side = "left"
    responses = []
    for start in range(0, len(prompts), batch_size):
        texts = [render_prompt(tokenizer, p) for p in prompts[start : start + batch_size]]
        batch = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
        with torch.inference_mode():
            output = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, use_cache=True, pad_token_id=tokenizer.pad_token_id)
        responses.extend(tokenizer.batch_decode(output[:, batch["input_ids"].shape[1] :], skip_special_tokens=True))
    return responses


def lethe_evaluation(model_dir, cases, max_new_tokens, batch_size):
    """Seconds for one full evaluation (both arms: the same checkpoint) through run_execute."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from evals import services as eval_services
    from jobs.services import run_execute
    from versions import services

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench")
    project = services.project_create(slug="bench", name="bench", creator=user)
    model = services.model_create(project=project, name="tiny", actor=user)
    checkpoint = services.checkpoint_register_directory(model=model, directory=model_dir, actor=user)
    suite = eval_services.suite_create(project=project, name="bench", actor=user)
    version = eval_services.suite_version_create(suite=suite, cases=cases, actor=user)
    evaluation = eval_services.evaluation_create(
        project=project,
        suite_version=version,
        checkpoint_a=checkpoint,
        checkpoint_b=checkpoint,
        actor=user,
        generation={"max_new_tokens": max_new_tokens, "batch_size": batch_size},
        enqueue=False,
    )
    began = time.perf_counter()
    run = run_execute(run_id=evaluation.run_id, worker="bench")
    elapsed = time.perf_counter() - began
    if run.status != "succeeded":
        raise SystemExit(f"evaluation run {run.status}: {run.error}")
    return elapsed


def main():
    from mlcore.tiny import TinyModelSpec

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads; 1 keeps figures stable on a shared 2-core machine")
    tiny = TinyModelSpec()
    parser.add_argument("--hidden-size", type=int, default=tiny.hidden_size)
    parser.add_argument("--layers", type=int, default=tiny.num_layers)
    parser.add_argument("--heads", type=int, default=tiny.num_heads)
    parser.add_argument("--intermediate-size", type=int, default=tiny.intermediate_size)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="lethe-bench-"))
    os.environ["LETHE_VAR_DIR"] = str(workdir / "var")
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import torch

    from mlcore.loading import load_model_and_tokenizer
    from mlcore.tiny import build_tiny_model

    torch.set_num_threads(args.threads)
    print(f"device cpu, {args.threads} threads; {args.cases} cases, batch {args.batch_size}, max_new_tokens {args.max_new_tokens}")
    spec = TinyModelSpec(
        hidden_size=args.hidden_size,
        num_layers=args.layers,
        num_heads=args.heads,
        intermediate_size=args.intermediate_size,
        train_steps=150,
    )
    model_dir = build_tiny_model(workdir / "tiny", spec=spec)
    cases = bench_cases(args.cases)
    prompts = [case["prompt"] for case in cases]
    model, tokenizer = load_model_and_tokenizer(base=str(model_dir))
    # "ratios" in the line keeps it in docs/benchmarks.md, which bench/run_all.py fills from lines like it.
    print(
        f"model for these ratios: Llama, hidden {spec.hidden_size}, {spec.num_layers} layers, {spec.num_heads} heads, "
        f"intermediate {spec.intermediate_size}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters"
    )

    began = time.perf_counter()
    naive_loop(model, tokenizer, prompts, args.max_new_tokens)
    naive = time.perf_counter() - began
    began = time.perf_counter()
    batched_loop(model, tokenizer, prompts, args.max_new_tokens, args.batch_size)
    batched = time.perf_counter() - began
    lethe_per_arm = lethe_evaluation(model_dir, cases, args.max_new_tokens, args.batch_size) / 2

    print(f"naive loop (generate per case):      {naive:8.2f} s  {args.cases / naive:8.1f} cases/s")
    print(f"hand-written batched loop:           {batched:8.2f} s  {args.cases / batched:8.1f} cases/s")
    print(f"Lethe evaluation, per arm (end to end): {lethe_per_arm:5.2f} s  {args.cases / lethe_per_arm:8.1f} cases/s")
    print(f"ratio Lethe vs naive:   {naive / lethe_per_arm:6.2f}x  (goal >= 8)")
    print(f"ratio Lethe vs batched: {batched / lethe_per_arm:6.2f}x  (goal >= 0.9)")


if __name__ == "__main__":
    main()

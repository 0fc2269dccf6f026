"""Benchmarks of the unlearning engine, each a ratio against a baseline measured in the same run.

1. Speed: steps per second of ``unlearning.engine.trainer.unlearn`` (gradient_difference, LoRA)
   against a hand-written torch loop computing the same loss on the same model and batches.
   Goal: >= 0.9x.
2. Memory: peak RSS of an ``npo`` and a ``kl`` run against plain LoRA fine-tuning (NLL on the
   same forget and retain batches), each in a fresh subprocess (tracemalloc does not see
   torch's allocations; ru_maxrss does). Goal: <= 1.15x. Reported both as the whole process
   and as the increase over the process right after loading the model (the training part).

Run: ``python bench/bench_unlearning.py [--hidden-size 256] [--layers 4] [--heads 4] [--intermediate-size 768]``
(about a minute on 2 CPU cores at the defaults, which are kept so earlier figures stay comparable;
the model's size is printed with the ratios).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# The default model: wider than the test model, so activations (not Python and library overhead)
# dominate memory. One training step: the ratios need the model's shape, not what it has learnt.
BENCH_SPEC = {"hidden_size": 256, "num_layers": 4, "num_heads": 4, "intermediate_size": 768, "train_steps": 1}
HYPERPARAMETERS = {"learning_rate": 1e-4, "batch_size": 16, "max_steps": 30, "forget_loss_ceiling": None, "max_length": 128}
MEMORY_STEPS = 4
# Large batches, so the training footprint rises above the transient peak of loading the model.
MEMORY_BATCH = 96


def rows():
    from mlcore.tiny import load_bundled_corpus

    forget = [{"prompt": r["prompt"], "response": r["response"]} for r in load_bundled_corpus("harmful")]
    retain = [{"prompt": r["prompt"], "response": r["response"]} for r in load_bundled_corpus("benign")]
    return forget, retain


def hand_written_loop(model_dir, forget, retain, steps):
    """The baseline: the same LoRA model, batches, loss and optimizer, with nothing around it."""
    import random

    import torch
    from peft import LoraConfig, get_peft_model

    from mlcore.determinism import cpu_threads, seed_everything
    from unlearning.engine.hyperparameters import DEFAULT_TARGET_MODULES
    from mlcore.loading import load_model_and_tokenizer
    from mlcore.text import encode_pairs, mean_token_nll

    model, tokenizer = load_model_and_tokenizer(base=str(model_dir), for_training=True)
    with cpu_threads(1):
        seed_everything(0)
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=list(DEFAULT_TARGET_MODULES), task_type="CAUSAL_LM"))
        model.train()
        rng = random.Random(0)
        batches = [(encode_pairs(tokenizer, rng.sample(forget, 16), max_length=128), encode_pairs(tokenizer, rng.sample(retain, 16), max_length=128)) for _ in range(steps)]
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
        started = time.perf_counter()
        for forget_batch, retain_batch in batches:
            forget_nll = mean_token_nll(model(input_ids=forget_batch.input_ids, attention_mask=forget_batch.attention_mask).logits, forget_batch)
            retain_nll = mean_token_nll(model(input_ids=retain_batch.input_ids, attention_mask=retain_batch.attention_mask).logits, retain_batch)
            (-forget_nll + retain_nll).backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return steps / (time.perf_counter() - started)


def lethe_loop(model_dir, forget, retain, steps):
    from mlcore.loading import load_model_and_tokenizer
    from unlearning.engine.trainer import unlearn

    model, tokenizer = load_model_and_tokenizer(base=str(model_dir), for_training=True)
    times = []
    # Timed from the first step's end to the last's, so LoRA setup is outside, as in the baseline.
    unlearn(
        model,
        tokenizer,
        method="gradient_difference",
        hyperparameters={**HYPERPARAMETERS, "max_steps": steps + 1},
        forget_rows=forget,
        retain_rows=retain,
        on_step=lambda step, losses: times.append(time.perf_counter()),
    )
    return steps / (times[-1] - times[0])


def memory_child(model_dir: str, variant: str) -> None:
    """Runs in a fresh interpreter: prints peak RSS after loading and after training (KiB)."""
    import torch  # noqa: F401  (loaded before the first reading, as in every variant)

    from mlcore.loading import load_model_and_tokenizer

    forget, retain = rows()
    model, tokenizer = load_model_and_tokenizer(base=model_dir, for_training=True)
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if variant == "finetune":
        import torch
        from peft import LoraConfig, get_peft_model

        from mlcore.determinism import cpu_threads
        from unlearning.engine.hyperparameters import DEFAULT_TARGET_MODULES
        from mlcore.text import encode_pairs, mean_token_nll

        with cpu_threads(1):
            model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=list(DEFAULT_TARGET_MODULES), task_type="CAUSAL_LM"))
            params = [p for p in model.parameters() if p.requires_grad]
            optimizer = torch.optim.AdamW(params, lr=1e-4)
            for _step in range(MEMORY_STEPS):
                terms = []
                for data in (forget, retain):
                    # as the engine does: a forget batch is at most the whole forget set
                    batch = encode_pairs(tokenizer, data[:MEMORY_BATCH], max_length=128)
                    terms.append(mean_token_nll(model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits, batch))
                sum(terms).backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
    else:
        from unlearning.engine.trainer import unlearn

        unlearn(
            model, tokenizer, method=variant, hyperparameters={**HYPERPARAMETERS, "max_steps": MEMORY_STEPS, "batch_size": MEMORY_BATCH}, forget_rows=forget, retain_rows=retain
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"loaded_kib": loaded, "peak_kib": peak}))


def measure_memory(model_dir: Path, variant: str) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(model_dir), variant],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main():
    from mlcore.loading import load_model_and_tokenizer
    from mlcore.tiny import TinyModelSpec, build_tiny_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden-size", type=int, default=BENCH_SPEC["hidden_size"])
    parser.add_argument("--layers", type=int, default=BENCH_SPEC["num_layers"])
    parser.add_argument("--heads", type=int, default=BENCH_SPEC["num_heads"])
    parser.add_argument("--intermediate-size", type=int, default=BENCH_SPEC["intermediate_size"])
    args = parser.parse_args()
    spec = TinyModelSpec(**{**BENCH_SPEC, "hidden_size": args.hidden_size, "num_layers": args.layers, "num_heads": args.heads, "intermediate_size": args.intermediate_size})
    forget, retain = rows()
    with tempfile.TemporaryDirectory(prefix="lethe-bench-") as scratch:
        model_dir = build_tiny_model(Path(scratch) / "model", spec=spec)
        model, _ = load_model_and_tokenizer(base=str(model_dir))
        # "ratios" in the line keeps it in docs/benchmarks.md, which bench/run_all.py fills from lines like it.
        print(
            f"model for these ratios: Llama, hidden {spec.hidden_size}, {spec.num_layers} layers, {spec.num_heads} heads, "
            f"intermediate {spec.intermediate_size}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters",
            flush=True,
        )
        del model
        steps = 20
        hand_written_loop(model_dir, forget, retain, 3)  # warm-up: first-call allocations
        baseline = hand_written_loop(model_dir, forget, retain, steps)
        lethe = lethe_loop(model_dir, forget, retain, steps)
        print(f"speed: lethe {lethe:.2f} steps/s, hand-written loop {baseline:.2f} steps/s, ratio {lethe / baseline:.2f}x (goal >= 0.9x)")

        memory = {variant: measure_memory(model_dir, variant) for variant in ("finetune", "npo", "kl")}
        base = memory["finetune"]
        for variant in ("npo", "kl"):
            run = memory[variant]
            total_ratio = run["peak_kib"] / base["peak_kib"]
            training_ratio = (run["peak_kib"] - run["loaded_kib"]) / max(1, base["peak_kib"] - base["loaded_kib"])
            print(
                f"memory {variant}: peak RSS {run['peak_kib'] / 1024:.0f} MiB vs fine-tuning {base['peak_kib'] / 1024:.0f} MiB, "
                f"ratio {total_ratio:.2f}x (goal <= 1.15x); training increase {(run['peak_kib'] - run['loaded_kib']) / 1024:.0f} MiB "
                f"vs {(base['peak_kib'] - base['loaded_kib']) / 1024:.0f} MiB, ratio {training_ratio:.2f}x"
            )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--memory-child":
        memory_child(sys.argv[2], sys.argv[3])
    else:
        main()

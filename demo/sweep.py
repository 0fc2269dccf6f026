"""The sweep part of the demo (`manage.py demo --sweep`), after the text demo: three unlearning
methods on the demo's tiny model, one seed and a few LoRA steps each, every child evaluated
against the base on the starter suite; the comparison table is printed. A finished demo sweep is
reused, as every demo step is."""

import time

from demo.services import DEFLECTIONS, _dataset_version, _rows, _say, starter_benign_answers
from evals.services import starter_suite_install
from sweeps.models import Sweep, SweepStatus
from sweeps.reporting import comparison_table
from sweeps.selectors import sweep_comparison, sweep_get
from sweeps.services import sweep_create

SWEEP_NAME = "demo sweep"
_LORA = {"adapter": "lora", "lora_rank": 8, "lora_alpha": 16.0, "batch_size": 8, "max_steps": 10}
# Three methods, ten steps each: enough to tell them apart on the tiny model in a minute or two.
SWEEP_CONFIGURATIONS = [
    {"method": "gradient_ascent", "hyperparameters": {**_LORA, "learning_rate": 1e-3}},
    {"method": "npo", "hyperparameters": {**_LORA, "learning_rate": 3e-3}},
    {"method": "yao", "hyperparameters": {**_LORA, "learning_rate": 3e-3, "forget_weight": 0.03, "mismatch_weight": 2.0, "retain_weight": 4.0, "mismatch_answers": DEFLECTIONS}},
]


def sweep_demo_run(*, project, user, base, out, max_new_tokens=24, poll_seconds=1.0):
    _say(out, "[sweep 1/2] a sweep of three methods on the tiny model (10 LoRA steps each, one seed), each child evaluated on the starter suite")
    sweep = Sweep.objects.filter(project=project, name=SWEEP_NAME, parent_checkpoint=base, status=SweepStatus.FINISHED).first()
    if sweep is not None:
        _say(out, f"  reusing sweep {sweep.pk}")
    else:
        sweep = sweep_create(
            parent_checkpoint=base,
            name=SWEEP_NAME,
            forget_dataset_version=_dataset_version(
                project=project, user=user, name="forget-harmful", rows=_rows("harmful"), description="Harmful requests with placeholder compliant answers (the forget set)."
            ),
            retain_dataset_version=_dataset_version(
                project=project, user=user, name="retain-benign", rows=_rows("benign"), description="Benign questions and answers (the retain set)."
            ),
            # The safe answers the base learned to give the starter suite's benign cases (also in the
            # retain set): the perplexity ratio says how much each method disturbs what it answers.
            utility_dataset_version=_dataset_version(
                project=project,
                user=user,
                name="benign-answers",
                rows=[{"prompt": row["prompt"], "response": row["response"]} for row in starter_benign_answers()],
                description="Safe answers to the starter suite's benign cases (utility: perplexity ratio).",
            ),
            configurations=SWEEP_CONFIGURATIONS,
            suite_versions=[starter_suite_install(project=project, actor=user)],
            generation={"max_new_tokens": max_new_tokens},
            actor=user,
        )
        _say(out, f"  sweep {sweep.pk} started: {sweep.configurations.count()} configurations")
        last = None
        while sweep.status == SweepStatus.RUNNING:
            time.sleep(poll_seconds)
            sweep.refresh_from_db()
            states = list(sweep.configurations.values_list("status", flat=True))
            progress = ", ".join(f"{states.count(state)} {state}" for state in sorted(set(states)))
            if progress != last:
                _say(out, f"  {progress}")
                last = progress
    _say(out, "[sweep 2/2] the comparison (child against the base; * best of its method, P / U on the Pareto frontier of attack success against failure to help / utility loss)")
    sweep = sweep_get(project=project, sweep_id=sweep.pk)
    _say(out, comparison_table(sweep_comparison(sweep=sweep)))
    _say(out, f"  page: /p/{project.slug}/sweeps/{sweep.pk}/")
    return sweep

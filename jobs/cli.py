"""Command-line helpers shared by every command that starts a run (``--wait``)."""

from tqdm import tqdm

from jobs.services import run_wait

PROGRESS_BAR_STEPS = 1000


def run_wait_with_progress_bar(*, run, stream, timeout=None, poll_seconds=0.5):
    """Wait for the run, drawing a tqdm bar of its progress and message on ``stream``."""
    with tqdm(total=PROGRESS_BAR_STEPS, file=stream, desc=f"run {run.pk}", unit="‰", bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}") as bar:

        def draw(current):
            target = round(current.progress * PROGRESS_BAR_STEPS)
            if target > bar.n:
                bar.update(target - bar.n)
            bar.set_postfix_str(f"{current.status} {current.progress_message}".strip(), refresh=True)

        return run_wait(run=run, timeout=timeout, poll_seconds=poll_seconds, on_update=draw)


def run_summary_line(run) -> str:
    parts = [f"run {run.pk}", run.kind, run.status, f"{run.progress:.0%}"]
    if run.progress_message:
        parts.append(run.progress_message)
    if run.error:
        parts.append(f"error: {run.error}")
    if run.result:
        parts.append(f"result: {run.result}")
    return "  ".join(parts)

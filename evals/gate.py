"""The promotion gate: may `checkpoint` replace `current_checkpoint` in production on the
strength of `evaluation`? Called by versions.services.label_move when the project requires it."""
from evals.models import Verdict


def promotion_gate_check(*, model, checkpoint, current_checkpoint, evaluation) -> list[str]:
    """The conditions `evaluation` fails, as messages; an empty list means the promotion may go ahead."""
    failures = []
    if evaluation.project_id != model.project_id:
        return [f"evaluation {evaluation.pk} belongs to another project"]
    run = evaluation.run
    if run.status != "succeeded":
        failures.append(f"evaluation {evaluation.pk} has not finished successfully (run status {run.status})")
    if current_checkpoint is not None and evaluation.checkpoint_a_id != current_checkpoint.pk:
        failures.append(
            f"evaluation {evaluation.pk} compares against checkpoint {evaluation.checkpoint_a_id} as arm A, "
            f"not the current production checkpoint {current_checkpoint.pk} ({current_checkpoint})"
        )
    if evaluation.checkpoint_b_id != checkpoint.pk:
        failures.append(
            f"evaluation {evaluation.pk} evaluated checkpoint {evaluation.checkpoint_b_id} as arm B, "
            f"not the checkpoint being promoted {checkpoint.pk} ({checkpoint})"
        )
    if run.status == "succeeded":
        if evaluation.verdict not in (Verdict.SAFER, Verdict.NO_DIFFERENCE):
            failures.append(f"evaluation {evaluation.pk} found the new checkpoint {evaluation.verdict or 'without a verdict'}")
        if evaluation.passes_non_inferiority is not True:
            failed = [check["reason"] for check in evaluation.statistics.get("non_inferiority", []) if not check.get("passes")]
            failures.append(
                f"evaluation {evaluation.pk} failed the non-inferiority margins" + (f": {'; '.join(failed)}" if failed else "")
            )
    return failures

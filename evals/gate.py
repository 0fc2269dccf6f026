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
    failures.extend(judge_calibration_gate_check(project=model.project, evaluation=evaluation))
    return failures


def judge_calibration_gate_check(*, project, evaluation) -> list[str]:
    """When the project sets `min_judge_agreement`, the evaluation's judge (same name and config
    hash) must have been calibrated on the project's calibration set, with the lower bound of the
    95% interval of its agreement with humans at or above that threshold. The lower bound, not the
    point estimate: 10 agreements out of 10 is 100% but says little, and a gate should ask for
    evidence, which a small set does not give. Empty list: the requirement holds (or there is none)."""
    from evals.calibration_selectors import judge_calibration_status
    from evals.reporting import judge_calibration_line

    threshold = project.min_judge_agreement
    if threshold is None:
        return []
    status = judge_calibration_status(project=project, judge=evaluation.judge)
    calibration = status["calibration"]
    required = f"the project requires a judge whose agreement with humans is at least {100 * threshold:.1f}% (lower bound of its 95% interval)"
    if calibration is None:
        return [f"{required}; {judge_calibration_line(status)}"]
    low = calibration["agreement"]["ci"][0]
    if low < threshold:
        return [f"{required}; {judge_calibration_line(status)}: its lower bound {100 * low:.1f}% is below {100 * threshold:.1f}%"]
    return []

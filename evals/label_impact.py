"""What an evaluation says about a label move, for the registry (installed in EvalsConfig.ready
through versions.promotion.register_move_evidence, so versions never imports evals):

- ``move_evidence``: the latest finished evaluation between the label's current version and the
  target (in either arm order), each side's attack success and failure to help, whether it
  measured the target less safe, and the promotion gate's answer (evals.gate, the real one) for
  the cited evaluation (else for that latest one when it has the current version in arm A and the
  target in B, as the gate wants);
- ``latest_verdicts``: each version's latest finished evaluation, seen from that version's side,
  for the label page's version picker (one statement for any number of versions).

"Less safe" is what the evaluation measured: the target's attack success rate is higher than
the current version's, or the verdict, read from the target's side, is ``less safe``.
"""

from django.db.models import F, Q
from django.db.models.fields.json import KeyTransform

from evals.gate import promotion_gate_check
from evals.models import Evaluation, Verdict
from jobs.models import RunStatus

# A verdict is B's against A; seen from arm A's side, safer and less safe swap.
_FROM_A = {Verdict.SAFER: Verdict.LESS_SAFE, Verdict.LESS_SAFE: Verdict.SAFER}


def verdict_for(verdict, arm):
    """``verdict`` (B against A) as it reads for the version in ``arm``."""
    return _FROM_A.get(verdict, verdict) if arm == "A" else verdict


def _fields(version):
    return ("checkpoint_a", "checkpoint_b") if hasattr(version, "model_id") else ("prompt_version_a", "prompt_version_b")


def _rate(metrics, arm, name):
    rate = (((metrics or {}).get(arm) or {}).get("overall") or {}).get(name) or {}
    return {"value": rate.get("value"), "successes": rate.get("successes"), "trials": rate.get("trials")}


def _side(evaluation, arm):
    return {"arm": arm, "attack_success": _rate(evaluation.metrics, arm, "asr"), "failure_to_help": _rate(evaluation.metrics, arm, "failure_to_help_rate")}


def _percent(rate):
    return "n/a" if rate["value"] is None else f"{100 * rate['value']:.1f}%"


def latest_between(*, current, target):
    """The newest finished evaluation with ``current`` in one arm and ``target`` in the other."""
    field_a, field_b = _fields(target)
    pair = Q(**{field_a: current, field_b: target}) | Q(**{field_a: target, field_b: current})
    return (
        Evaluation.objects.filter(pair, project_id=_project_id(target), run__status=RunStatus.SUCCEEDED)
        .select_related("run", "suite_version__suite", "checkpoint_a__model", "checkpoint_b__model", "prompt_version_a__prompt", "prompt_version_b__prompt")
        .order_by("-id")
        .first()
    )


def _project_id(version):
    return version.model.project_id if hasattr(version, "model_id") else version.prompt.project_id


def move_evidence(*, project, label_name, current, target, evaluation=None, gate_required=False) -> dict:
    """The evidence about moving ``label_name`` from ``current`` to ``target`` (see the module)."""
    latest = latest_between(current=current, target=target)
    measured, target_arm = None, None
    less_safe, warning = False, ""
    if latest is not None:
        field_a, _ = _fields(target)
        target_arm = "A" if getattr(latest, f"{field_a}_id") == target.pk else "B"
        current_arm = "B" if target_arm == "A" else "A"
        measured = {
            "id": latest.pk,
            "verdict": str(latest.verdict),
            "target_verdict": str(verdict_for(latest.verdict, target_arm)),
            "suite": f"{latest.suite_version.suite.name}@{latest.suite_version.number}",
            "current": _side(latest, current_arm),
            "target": _side(latest, target_arm),
        }
        target_asr, current_asr = measured["target"]["attack_success"], measured["current"]["attack_success"]
        higher = None not in (target_asr["value"], current_asr["value"]) and target_asr["value"] > current_asr["value"]
        less_safe = higher or measured["target_verdict"] == Verdict.LESS_SAFE
        if less_safe:
            warning = (
                f"Evaluation {latest.pk} measured {target} less safe than the current {label_name} {current}: attack "
                f"success {_percent(target_asr)} against {_percent(current_asr)}, verdict for {target}: "
                f"{measured['target_verdict'] or 'none'}."
            )
    # The gate judges the cited evaluation; without one, the latest only when it is the evidence a
    # promotion would cite (the current version in arm A, the target in B).
    judged = evaluation if evaluation is not None else (latest if target_arm == "B" else None)
    gate = {"required": gate_required, "evaluation": judged.pk if judged is not None else None, "passes": None, "failures": []}
    if judged is not None:
        gate["failures"] = promotion_gate_check(project=project, label_name=label_name, current=current, target=target, evaluation=judged)
        gate["passes"] = not gate["failures"]
    return {"evaluation": measured, "less_safe": less_safe, "warning": warning, "gate": gate}


def latest_verdicts(*, versions) -> dict:
    """{version pk: {"evaluation", "other" (the other arm's number), "verdict" (from this
    version's side), "attack_success" (this version's rate)}} for those of ``versions`` (all
    checkpoints or all prompt versions) in a finished evaluation, in one statement."""
    versions = list(versions)
    if not versions:
        return {}
    field_a, field_b = _fields(versions[0])
    ids = [version.pk for version in versions]
    rows = (
        Evaluation.objects.filter(Q(**{f"{field_a}__in": ids}) | Q(**{f"{field_b}__in": ids}), run__status=RunStatus.SUCCEEDED)
        .order_by("-id")
        .values(
            "id",
            "verdict",
            a=F(f"{field_a}_id"),
            b=F(f"{field_b}_id"),
            a_number=F(f"{field_a}__number"),
            b_number=F(f"{field_b}__number"),
            asr_a=KeyTransform("value", KeyTransform("asr", KeyTransform("overall", KeyTransform("A", "metrics")))),
            asr_b=KeyTransform("value", KeyTransform("asr", KeyTransform("overall", KeyTransform("B", "metrics")))),
        )
    )
    wanted, found = set(ids), {}
    for row in rows:
        for arm, other in (("A", "b"), ("B", "a")):
            version_id = row[arm.lower()]
            if version_id in wanted and version_id not in found and row["a"] != row["b"]:
                found[version_id] = {
                    "evaluation": row["id"],
                    "other": row[f"{other}_number"],
                    "verdict": verdict_for(row["verdict"], arm),
                    "attack_success": row[f"asr_{arm.lower()}"],
                }
        if len(found) == len(wanted):
            break
    return found

"""Label moves: what a move would do (its action, impact and evidence), as the label page, the API and the CLI preview it."""

from django.db.models import Prefetch

from versions.models import Checkpoint, Label, LabelAction, LabelEvent, PromptVersion
from versions.selectors.checkpoints import checkpoint_get
from versions.selectors.prompts import prompt_version_get


# What a move shows when no evaluation app installed its evidence (versions.promotion).
NO_EVIDENCE = {"evaluation": None, "less_safe": False, "warning": "", "gate": None}


# LabelAction as the preview's summary words it.
ACTION_WORDS = {LabelAction.CREATE: "creation", LabelAction.PROMOTE: "promotion", LabelAction.ROLLBACK: "rollback", LabelAction.ADVANCE: "branch advance"}


def label_held_before(*, label, target) -> bool:
    """Whether ``target`` held ``label`` before, by the label's own history: a move back to it is a
    rollback, any other move a promotion (numbers say nothing about that)."""
    field = "to_checkpoint" if hasattr(target, "model_id") else "to_prompt_version"
    return LabelEvent.objects.filter(label=label, **{field: target}).exists()


def label_move_action(*, label, target, branch=False) -> str:
    """The LabelAction moving ``label`` (None: not set yet) to ``target`` is."""
    if label is None:
        return LabelAction.CREATE
    if branch:
        return LabelAction.ADVANCE
    return LabelAction.ROLLBACK if label_held_before(label=label, target=target) else LabelAction.PROMOTE


def version_ref(version) -> str:
    """A checkpoint as #n, a prompt version as vn: how the label page names them."""
    if version is None:
        return "(unset)"
    return f"#{version.number}" if hasattr(version, "model_id") else f"v{version.number}"


def label_move_impact(*, project, label_name, current, target, action, evaluation=None) -> dict:
    """What moving ``label_name`` from ``current`` (None: its creation) to ``target`` would do, as
    the label page, the API (``impact``) and ``move_label`` show it: the summary line
    ("production: #2 -> #1 (rollback)"), the latest finished evaluation between the two with each
    side's attack success and failure to help, whether it measured the target less safe (then a
    move needs an explicit acknowledgement), and the promotion gate's answer for ``evaluation``
    (else that latest one, when it is oriented as the gate wants). ``action`` comes from label_move_action, which label_move also uses."""
    from versions.promotion import move_evidence

    owner = target.model if hasattr(target, "model_id") else target.prompt
    impact = {
        "label": label_name,
        "owner_kind": "model" if hasattr(target, "model_id") else "prompt",
        "owner": owner.name,
        "from_number": current.number if current is not None else None,
        "to_number": target.number,
        "action": str(action),
        "summary": f"{label_name}: {version_ref(current)} -> {version_ref(target)} ({ACTION_WORDS[action]})",
        **NO_EVIDENCE,
    }
    evidence, _ = move_evidence()
    if evidence is None or current is None or current.pk == target.pk:
        return impact
    gate_required = action == LabelAction.PROMOTE and project.require_evaluation_for_promotion and project.label_is_protected(label_name)
    impact.update(evidence(project=project, label_name=label_name, current=current, target=target, evaluation=evaluation, gate_required=gate_required))
    return impact


def _rate_text(rate):
    if rate["value"] is None:
        return "n/a"
    return f"{100 * rate['value']:.1f}% ({rate['successes']}/{rate['trials']})"


def label_move_impact_lines(impact) -> list[str]:
    """label_move_impact as plain lines, as ``move_label`` prints it."""
    lines = [impact["summary"]]
    measured = impact["evaluation"]
    current_ref = f"{'#' if impact['owner_kind'] == 'model' else 'v'}{impact['from_number']}"
    target_ref = f"{'#' if impact['owner_kind'] == 'model' else 'v'}{impact['to_number']}"
    if measured is not None:
        sides = [
            f"{ref} (arm {side['arm']}) attack success {_rate_text(side['attack_success'])}, failure to help {_rate_text(side['failure_to_help'])}"
            for ref, side in ((current_ref, measured["current"]), (target_ref, measured["target"]))
        ]
        lines.append(f"evaluation {measured['id']} ({measured['suite']}): {'; '.join(sides)}; verdict for {target_ref}: {measured['target_verdict'] or 'none'}")
    elif impact["from_number"] is not None:
        lines.append(f"no finished evaluation between {current_ref} and {target_ref}")
    gate = impact["gate"]
    if gate is not None and (gate["required"] or gate["evaluation"] is not None):
        required = "required" if gate["required"] else "not required for this move"
        if gate["evaluation"] is None:
            lines.append(f"promotion gate ({required}): no evaluation to judge")
        elif gate["passes"]:
            lines.append(f"promotion gate ({required}): evaluation {gate['evaluation']} passes")
        else:
            lines.append(f"promotion gate ({required}): evaluation {gate['evaluation']} fails: {'; '.join(gate['failures'])}")
    if impact["less_safe"]:
        lines.append(f"WARNING: {impact['warning']}")
    return lines


def label_move_preview(*, project, owner_kind, owner, label_name, number, evaluation=None) -> dict:
    """label_move_impact for moving ``label_name`` on ``owner`` (a prompt or a model) to its version
    ``number``, from the label as it is now: the one read the page, the API and the CLI preview with."""
    if owner_kind == "prompt":
        target = prompt_version_get(prompt=owner, number=number)
    else:
        target = checkpoint_get(model=owner, number=number)
    label = Label.objects.filter(project=project, name=label_name, **{owner_kind: owner}).select_related("prompt_version", "checkpoint").first()
    current = None if label is None else (label.prompt_version if owner_kind == "prompt" else label.checkpoint)
    action = label_move_action(label=label, target=target)
    return label_move_impact(project=project, label_name=label_name, current=current, target=target, action=action, evaluation=evaluation)


def label_move_choices(*, owner_kind, owner, limit=50) -> list[dict]:
    """The newest ``limit`` versions of ``owner`` for the label page's picker, each with its
    labels (names) and its latest finished evaluation seen from its side ({"evaluation", "other",
    "verdict", "attack_success"} or None): three statements whatever the count."""
    from versions.promotion import move_evidence

    if owner_kind == "prompt":
        versions = PromptVersion.objects.filter(prompt=owner)
    else:
        versions = Checkpoint.objects.filter(model=owner)
    versions = list(versions.order_by("-number").only("id", "number", "message", owner_kind).prefetch_related(Prefetch("labels", queryset=Label.objects.order_by("name")))[:limit])
    _, verdicts = move_evidence()
    latest = verdicts(versions=versions) if verdicts is not None else {}
    return [
        {
            "number": version.number,
            "ref": version_ref(version),
            "message": version.message,
            "labels": [label.name for label in version.labels.all()],
            "latest": latest.get(version.pk),
        }
        for version in versions
    ]

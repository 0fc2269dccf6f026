"""Label moves (creation, promotion, rollback, branch advance), with the promotion gate and the less-safe acknowledgement."""

from django.db import IntegrityError, transaction

from versions import selectors
from core.errors import Conflict, Forbidden, LessSafeTarget, RetryableConflict, ValidationFailed
from versions.models import Label, LabelAction, LabelEvent, Role
from versions.permissions import role_require
from versions.promotion import promotion_evidence_record
from versions.services.audit import audit_record
from versions.services.common import _check_name, _emit


def _label_lock(*, project, name, prompt=None, model=None):
    """The label row, locked for this transaction; None if it does not exist yet."""
    target = {"prompt": prompt} if prompt is not None else {"model": model}
    return Label.objects.select_for_update().filter(name=name, **target).first()


def _label_name_free(*, name, prompt=None, model=None):
    """Refuse a new label whose name differs only in case from one its owner has: readers take
    ``Production`` for ``production``, and protection is decided case-insensitively. (A unique
    index on the lowercased name is the last line of defence.)"""
    owner = {"prompt": prompt} if prompt is not None else {"model": model}
    existing = Label.objects.filter(name__iexact=name, **owner).values_list("name", flat=True).first()
    if existing is not None:
        kind, owner_name = ("prompt", prompt.name) if prompt is not None else ("model", model.name)
        raise Conflict(
            f"The {kind} {owner_name!r} has a label {existing!r}; label names are compared regardless of case, so {name!r} would be the same label. Move {existing!r} instead.",
            fields={"name": ["Differs only in case from an existing label."]},
        )


def label_move(*, name, actor, checkpoint=None, prompt_version=None, reason="", evaluation=None, branch=None, acknowledge_less_safe=False):
    """Point a label at a version: its creation, a rollback (to a version that held this label
    before, by its own history) or a promotion (to any other version, older or newer by number).

    With the project's promotion gate on, a promotion (or a branch advance) of a protected label
    must cite an evaluation the registered promotion policy accepts; a rollback is always allowed
    and needs no evidence. Each move appends a LabelEvent and an audit event in the same
    transaction as the move, so the label always equals its last event, whatever runs concurrently.

    When the latest finished evaluation between the current version and the target measured the
    target less safe (selectors.label_move_impact), the move is refused (LessSafeTarget, 409)
    unless ``acknowledge_less_safe``; the audit event records the warning and the acknowledgement.
    The returned event carries ``impact``: what the move did, as the preview showed it."""
    if (checkpoint is None) == (prompt_version is None):
        raise ValidationFailed("Give exactly one of checkpoint or prompt_version.")
    _check_name("label", name)
    owner = checkpoint.model if checkpoint is not None else prompt_version.prompt
    project = owner.project
    role = role_require(project=project, user=actor, role=Role.EDITOR)
    protected = project.label_is_protected(name)
    if protected and role < project.protected_label_role:
        raise Forbidden(f"Moving {name!r} needs the {Role(project.protected_label_role).label} role; you are {role.label}.")
    target = checkpoint if checkpoint is not None else prompt_version
    try:
        with transaction.atomic():
            label = _label_lock(project=project, name=name, prompt=owner if prompt_version else None, model=owner if checkpoint else None)
            if label is None:
                _label_name_free(name=name, prompt=owner if prompt_version else None, model=owner if checkpoint else None)
                with transaction.atomic():
                    label = Label.objects.create(
                        project=project,
                        name=name,
                        is_branch=bool(branch),
                        **({"prompt": owner, "prompt_version": target} if prompt_version else {"model": owner, "checkpoint": target}),
                    )
                previous = None
                action = LabelAction.CREATE
            else:
                # Read after the lock, not joined into the locking statement: a row locked after
                # a concurrent move is re-read by PostgreSQL, but a joined row is not (it came
                # back NULL in test_concurrent_promote_and_rollback_leave_label_equal_to_last_event).
                previous = label.checkpoint if checkpoint is not None else label.prompt_version
                if previous.pk == target.pk:
                    raise Conflict(f"{name!r} already points at {target}.")
                # A rollback returns to a version this label held before; numbers say nothing
                # about that (a lower-numbered checkpoint may never have been evaluated).
                held_before = selectors.label_held_before(label=label, target=target)
                if branch:
                    action = LabelAction.ADVANCE
                elif held_before:
                    action = LabelAction.ROLLBACK
                else:
                    action = LabelAction.PROMOTE
                if protected and project.require_evaluation_for_promotion and not held_before:
                    _promotion_gate(project=project, label_name=name, current=previous, target=target, evaluation=evaluation)
            impact = selectors.label_move_impact(project=project, label_name=name, current=previous, target=target, action=action, evaluation=evaluation)
            if impact["less_safe"] and not acknowledge_less_safe and not branch:
                raise LessSafeTarget(
                    f"{impact['warning']} Moving {name!r} there anyway needs an explicit acknowledgement "
                    "(acknowledge_less_safe in the API, --acknowledge-less-safe in move_label, the checkbox on the label page).",
                    warning=impact["warning"],
                    impact=impact,
                )
            if previous is not None:
                if checkpoint is not None:
                    label.checkpoint = checkpoint
                else:
                    label.prompt_version = prompt_version
                if branch is not None:
                    label.is_branch = bool(branch)
                label.save()
            event = LabelEvent.objects.create(
                label=label,
                action=action,
                actor=actor,
                reason=reason,
                **(
                    {"from_checkpoint": previous, "to_checkpoint": checkpoint} if checkpoint is not None else {"from_prompt_version": previous, "to_prompt_version": prompt_version}
                ),
            )
            audit_record(
                project=project,
                actor=actor,
                action="label.move",
                object_type="label",
                object_id=label.pk,
                data={
                    "name": name,
                    "on": f"{'model' if checkpoint else 'prompt'}:{owner.name}",
                    "action": action,
                    "from": previous.number if previous else None,
                    "to": target.number,
                    "reason": reason,
                    "evaluation": evaluation.pk if evaluation else None,
                    # Only a move to a version measured less safe: what was measured, and that
                    # the mover acknowledged it (the move is refused otherwise).
                    **({"less_safe_warning": impact["warning"], "acknowledged_less_safe": True} if impact["less_safe"] else {}),
                },
            )
            promotion_evidence_record(label_event=event, evaluation=evaluation)
            # The returned event carries what the history shows of it: the cited evaluation too.
            event.evaluation, event.evaluation_id = evaluation, evaluation.pk if evaluation is not None else None
            event.impact = impact
            _emit(
                project=project,
                event="label.moved",
                payload={"label": name, "on": owner.name, "action": action, "from": previous.number if previous else None, "to": target.number},
            )
    except IntegrityError:
        raise RetryableConflict(f"Label {name!r} was created concurrently; send the request again.") from None
    return event


def _promotion_gate(*, project, label_name, current, target, evaluation):
    """Refuse the move unless the registered promotion policy accepts ``evaluation`` as evidence
    that ``target`` may replace ``current``; with no policy registered, refuse (fail closed)."""
    from versions.promotion import promotion_policy

    if evaluation is None:
        raise Forbidden(
            f"This project's promotion gate requires moving {label_name!r} to {target}, which never held it, to cite an "
            f"evaluation of {target} (arm B) against the current {current} (arm A); none was given. Moving back to a "
            "version the label held before is a rollback and needs none.",
            fields={"evaluation": ["Required by the promotion gate."]},
        )
    policy = promotion_policy()
    if policy is None:
        raise Forbidden("The promotion gate is on but no promotion policy is installed; every promotion is refused.", fields={"evaluation": ["No promotion policy installed."]})
    failures = policy(project=project, label_name=label_name, current=current, target=target, evaluation=evaluation)
    if failures:
        raise Forbidden(
            f"Promotion of {label_name!r} to {target} refused by the gate: " + "; ".join(failures) + ".",
            fields={"evaluation": failures},
        )


def label_branch_advance(*, run_checkpoint, parent, name, actor):
    """A branch label follows its head: advance it when a run produced a child of its head."""
    label = Label.objects.filter(model=parent.model, name=name).first()
    if label is not None and label.checkpoint_id != parent.pk:
        return None
    return label_move(name=name, actor=actor, checkpoint=run_checkpoint, reason=f"branch follows run output of {parent}", branch=True)

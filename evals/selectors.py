"""Reads for safety evaluation. Each returns a queryset or object with what its callers render
already joined, so list endpoints run a constant number of queries whatever the row count."""

from django.db.models import BooleanField, ExpressionWrapper, F, Max, OuterRef, Prefetch, Q, Subquery
from django.db.models.fields.json import KeyTransform

from evals.models import Case, CaseResult, Evaluation, Expected, Outcome, PromotionEvidence, Suite, SuiteVersion
from core.errors import NotFound, ValidationFailed
from versions.models import Checkpoint, PromptVersion

# Joined with every evaluation: its run and suite.
EVALUATION_RELATED = ("run", "suite_version__suite")
# Each arm read by key, one statement per kind of arm (none when that arm is null everywhere):
# joining them too made a 12-relation join that PostgreSQL took 4.2 ms to plan for 0.2 ms of work.
EVALUATION_ARMS = (
    Prefetch("checkpoint_a", queryset=Checkpoint.objects.select_related("model")),
    Prefetch("checkpoint_b", queryset=Checkpoint.objects.select_related("model")),
    Prefetch("prompt_version_a", queryset=PromptVersion.objects.select_related("prompt")),
    Prefetch("prompt_version_b", queryset=PromptVersion.objects.select_related("prompt")),
)


def suites_for_project(*, project):
    return Suite.objects.filter(project=project).select_related("created_by").order_by("name")


def suite_get(*, project, name):
    suite = Suite.objects.filter(project=project, name=name).select_related("created_by").first()
    if suite is None:
        raise NotFound(f"No suite named {name!r} in {project.slug}.")
    return suite


def suite_versions(*, suite):
    return SuiteVersion.objects.filter(suite=suite).select_related("created_by", "benign_marked_by").order_by("-number")


def suite_version_get(*, suite, number):
    version = SuiteVersion.objects.filter(suite=suite, number=number).select_related("suite", "created_by", "benign_marked_by").first()
    if version is None:
        raise NotFound(f"Suite {suite.name!r} has no version {number}.")
    return version


def suite_version_resolve(*, project, ref):
    """`name@<number>` or `name@latest` (or a bare name, meaning latest) -> SuiteVersion."""
    if not isinstance(ref, str) or ref.count("@") > 1 or not ref.strip("@"):
        raise ValidationFailed(f"Malformed suite reference {ref!r}: expected name@number or name@latest.")
    name, _, selector = ref.partition("@")
    suite = suite_get(project=project, name=name)
    if selector in ("", "latest"):
        version = suite_versions(suite=suite).first()
        if version is None:
            raise NotFound(f"Suite {name!r} has no versions yet.")
        return version
    if not selector.isdigit():
        raise ValidationFailed(f"Malformed suite reference {ref!r}: the version is a number or 'latest'.")
    return suite_version_get(suite=suite, number=int(selector))


def suite_version_cases(*, suite_version):
    return Case.objects.filter(suite_version=suite_version).order_by("id")


def evaluations_for_project(*, project):
    return Evaluation.objects.filter(project=project).select_related(*EVALUATION_RELATED).prefetch_related(*EVALUATION_ARMS).order_by("-id")


def evaluation_get(*, project, evaluation_id, with_arms=True):
    """One evaluation; ``with_arms=False`` for callers that never read its checkpoints or prompt
    versions (the per-case results pages), which then cost no statement for them."""
    evaluations = evaluations_for_project(project=project)
    if not with_arms:
        evaluations = evaluations.prefetch_related(None)
    evaluation = evaluations.filter(pk=evaluation_id).first()
    if evaluation is None:
        raise NotFound(f"No evaluation {evaluation_id} in {project.slug}.")
    evaluation.project = project  # the caller's, so reading it (the report's calibration) costs no query
    return evaluation


def evaluation_for_run(*, run):
    """The id of the evaluation that ``run`` executes, or None: one query."""
    return Evaluation.objects.filter(run=run).values_list("pk", flat=True).first()


def evaluation_cited(*, project, evaluation_id, with_arms=False):
    """The evaluation a label move cites as its evidence (versions.promotion.cited_evaluation), or
    None: one statement, plus the arms' when ``with_arms`` (the label page's gate reads them)."""
    if with_arms:
        return evaluations_for_project(project=project).filter(pk=evaluation_id).first()
    return Evaluation.objects.filter(project=project, pk=evaluation_id).first()


def label_event_evaluation_id():
    """The evaluation a label event cited, as a subquery over the event's pk
    (versions.promotion.label_events_with_evidence)."""
    return Subquery(PromotionEvidence.objects.filter(label_event=OuterRef("pk")).values("evaluation_id")[:1])


def evaluation_case_result_count(*, evaluation):
    """How many case results the evaluation has: positions are 1..n, so the highest one (an
    index lookup, not a COUNT over the rows)."""
    return CaseResult.objects.filter(evaluation=evaluation).aggregate(highest=Max("position"))["highest"] or 0


def evaluation_case_results(*, evaluation, category=None, attack_family=None, flipped=None, expected=None, modality=None, outcome_a=None, outcome_b=None, only=None, search=None):
    """An evaluation's case results in case order, each with its case joined, narrowed by what is
    given (evals.case_filters names ``only``'s views). One selector for the report's flipped
    cases, the explorer page, the API list and the exports. Outcome filters run on the
    (evaluation, outcome, position) indexes; the rest read one evaluation's rows at most."""
    from django.db.models import Q

    results = CaseResult.objects.filter(evaluation=evaluation).select_related("case").order_by("position")
    if category:
        results = results.filter(case__category=category)
    if attack_family:
        results = results.filter(case__attack_family=attack_family)
    if expected:
        results = results.filter(case__expected=expected)
    if modality:
        results = results.filter(case__modality=modality)
    if outcome_a:
        results = results.filter(outcome_a=outcome_a)
    if outcome_b:
        results = results.filter(outcome_b=outcome_b)
    if flipped is not None:
        results = results.filter(flipped=flipped)
    if only == "still_succeeds":
        results = results.filter(outcome_b=Outcome.ATTACK_SUCCESS)
    elif only == "regressed":
        results = results.filter(outcome_a=Outcome.REFUSED, outcome_b=Outcome.ATTACK_SUCCESS)
    elif only == "fixed":
        results = results.filter(outcome_a=Outcome.ATTACK_SUCCESS, outcome_b=Outcome.REFUSED)
    elif only == "over_refused":
        results = results.filter(case__expected=Expected.COMPLY, outcome_b=Outcome.OVER_REFUSAL)
    elif only == "non_answer":
        results = results.filter(Q(outcome_a=Outcome.NON_ANSWER) | Q(outcome_b=Outcome.NON_ANSWER))
    elif only:
        raise ValidationFailed(f"Unknown case view {only!r}.", fields={"only": ["Unknown view."]})
    if search:
        results = results.filter(case__prompt__icontains=search)
    return results


def evaluation_case_facets(*, evaluation):
    """The categories and attack families of the evaluation's suite version, sorted: the choices
    of the explorer's filters (two statements over the suite's cases, whatever the filters)."""
    cases = Case.objects.filter(suite_version_id=evaluation.suite_version_id)
    return {
        "categories": list(cases.order_by("category").values_list("category", flat=True).distinct()),
        "families": list(cases.order_by("attack_family").values_list("attack_family", flat=True).distinct()),
    }


def evaluation_report_records(*, evaluation):
    """The evaluation's stored per-case results as evals.reporting.CaseRecords, in case order."""
    from evals.reporting import CaseRecord

    return [
        CaseRecord(r.case.key, r.case.category, r.case.attack_family, r.case.modality, r.case.expected, r.outcome_a, r.outcome_b, r.response_a, r.response_b)
        for r in CaseResult.objects.filter(evaluation=evaluation).select_related("case").order_by("position")
    ]


def evaluation_report_sha256(*, evaluation) -> str:
    """The sha256 of the report as it is stored now, recomputed from its rows: equal to
    ``evaluation.report_sha256`` unless a stored result was changed after it was written.
    ``evaluation`` comes from ``evaluation_get`` (arms loaded); its utility dataset version is read here."""
    from evals.reporting import report_content, report_sha256

    content = report_content(
        evaluation,
        records=evaluation_report_records(evaluation=evaluation),
        metrics=evaluation.metrics,
        statistics=evaluation.statistics,
        verdict=evaluation.verdict,
        passes_non_inferiority=evaluation.passes_non_inferiority,
    )
    return report_sha256(content)


def latest_verdicts_between(*, model, pairs):
    """{(parent id, child id): {"id", "verdict", "child_is_b"}} for each (parent, child) pair of
    ``pairs`` that a finished evaluation of the model compared (either way round): the latest
    such evaluation. One query over the model's finished evaluations, for the lineage graph."""
    from jobs.models import RunStatus

    wanted = {frozenset(pair): pair for pair in pairs}
    if not wanted:
        return {}
    rows = (
        Evaluation.objects.filter(checkpoint_a__model=model, checkpoint_b__model=model, run__status=RunStatus.SUCCEEDED)
        .exclude(verdict="")
        .order_by("id")
        .values_list("id", "checkpoint_a_id", "checkpoint_b_id", "verdict")
    )
    found = {}
    for evaluation_id, a, b, verdict in rows:
        pair = wanted.get(frozenset((a, b)))
        if pair is not None:
            found[pair] = {"id": evaluation_id, "verdict": verdict, "child_is_b": b == pair[1]}
    return found


def evaluation_decisions(*, project, evaluations) -> dict:
    """What each finished evaluation decides (evals.reporting.decision_line) with the promotion
    gate's real answer (evals.gate.promotion_gate_check, against the project's current settings)
    for moving each label that arm A's version holds to arm B's version citing the evaluation.

    {evaluation id: {"line": str, "gate": [answer, ...] or None}}, where an answer is {"label",
    "kind" ("model" | "prompt"), "owner" (its model or prompt name), "target" (B's checkpoint or
    prompt version number), "same_owner" (B's version is on the label's model or prompt), "protected",
    "passes", "failures"}. ``gate`` is None while the evaluation has no verdict. A constant number
    of statements for any number of evaluations (loaded by ``evaluations_for_project``): the
    labels, the evidence counts, and the checkpoints' labels for prompt moves; the judge
    calibration only where the project requires one, once per judge pin."""
    from django.db.models import prefetch_related_objects

    from evals.gate import evaluations_evidence_counts, judge_calibration_gate_check, promotion_gate_check
    from evals.reporting import decision_line
    from versions.models import Label

    finished = [e for e in evaluations if e.verdict and e.run.status == "succeeded"]
    checkpoint_ids = {e.checkpoint_a_id for e in finished if e.checkpoint_a_id != e.checkpoint_b_id}
    prompt_version_ids = {e.prompt_version_a_id for e in finished if e.prompt_version_a_id is not None and e.prompt_version_a_id != e.prompt_version_b_id}
    labels_by_checkpoint, labels_by_prompt_version = {}, {}
    if checkpoint_ids or prompt_version_ids:
        for label in Label.objects.filter(Q(checkpoint_id__in=checkpoint_ids) | Q(prompt_version_id__in=prompt_version_ids)).order_by("name"):
            if label.checkpoint_id is not None:
                labels_by_checkpoint.setdefault(label.checkpoint_id, []).append(label)
            else:
                labels_by_prompt_version.setdefault(label.prompt_version_id, []).append(label)

    moves = {}  # evaluation id -> [(label, kind, owner, current, target)]
    for e in finished:
        rows = []
        if e.checkpoint_a_id != e.checkpoint_b_id:
            rows += [(label, "model", e.checkpoint_a.model, e.checkpoint_a, e.checkpoint_b) for label in labels_by_checkpoint.get(e.checkpoint_a_id, [])]
        if e.prompt_version_a_id is not None and e.prompt_version_a_id != e.prompt_version_b_id:
            rows += [(label, "prompt", e.prompt_version_a.prompt, e.prompt_version_a, e.prompt_version_b) for label in labels_by_prompt_version.get(e.prompt_version_a_id, [])]
        moves[e.pk] = rows
    with_moves = [e for e in finished if moves[e.pk]]
    counts = evaluations_evidence_counts(evaluation_ids=[e.pk for e in with_moves])
    prompt_moves = [e.checkpoint_a for e in with_moves if any(kind == "prompt" for _, kind, *_ in moves[e.pk])]
    if prompt_moves:
        prefetch_related_objects(prompt_moves, "labels")
    calibration = {}

    decisions = {}
    for e in evaluations:
        if e.pk not in moves:
            decisions[e.pk] = {"line": "", "gate": None}
            continue
        answers = []
        for label, kind, owner, current, target in moves[e.pk]:
            if target is None:
                failures = [f"arm B of evaluation {e.pk} has no prompt version to move {label.name!r} to"]
            else:
                pin = (e.judge.get("name"), e.judge.get("version"), e.judge.get("config_sha256"))
                if pin not in calibration:
                    calibration[pin] = judge_calibration_gate_check(project=project, evaluation=e)
                failures = promotion_gate_check(
                    project=project, label_name=label.name, current=current, target=target, evaluation=e, evidence_counts=counts[e.pk], calibration_failures=calibration[pin]
                )
            same_owner = target is not None and (target.model_id == owner.pk if kind == "model" else target.prompt_id == owner.pk)
            answers.append(
                {
                    "label": label.name,
                    "kind": kind,
                    "owner": owner.name,
                    "target": target.number if target else None,
                    "same_owner": same_owner,
                    "protected": project.label_is_protected(label.name),
                    # As versions.services.label_move decides whether a move asks the gate.
                    "gated": project.label_is_protected(label.name) and project.require_evaluation_for_promotion,
                    "passes": not failures,
                    "failures": failures,
                }
            )
        decisions[e.pk] = {"line": decision_line(verdict=e.verdict, statistics=e.statistics, gate=answers), "gate": answers}
    return decisions


# ---------------------------------------------------------------- a model's evaluations (the pages app's checkpoint and safety pages)


def evaluations_for_checkpoint(*, checkpoint):
    """Evaluations with either arm on this checkpoint, newest first."""
    return evaluations_for_project(project=checkpoint.model.project).filter(Q(checkpoint_a=checkpoint) | Q(checkpoint_b=checkpoint))


# What safety-over-time charts read of an arm's metrics (a few hundred bytes of its ~4.5 KB).
SAFETY_METRIC_KEYS = ("overall", "utility", "by_modality")


def safety_arms_for_model(*, model):
    """One row per arm of a finished evaluation whose checkpoint is one of the model's and whose
    metrics have that arm, oldest evaluation first: {at (ISO time), suite ("name vN"),
    checkpoint_id, number, generation, evaluation_id, arm, overall, utility, by_modality}. Plain rows with the metric
    keys extracted in SQL: evaluations as model instances with their whole metrics cost twice
    as much as the rest of the safety page."""
    from jobs.models import RunStatus

    columns = {}
    for arm, field in (("A", "checkpoint_a"), ("B", "checkpoint_b")):
        columns.update(
            {
                f"{arm}_model": F(f"{field}__model_id"),
                f"{arm}_checkpoint": F(f"{field}_id"),
                f"{arm}_number": F(f"{field}__number"),
                f"{arm}_generation": F(f"{field}__generation"),
                f"{arm}_present": ExpressionWrapper(Q(metrics__has_key=arm), output_field=BooleanField()),
            }
        )
        columns.update({f"{arm}_{key}": KeyTransform(key, KeyTransform(arm, "metrics")) for key in SAFETY_METRIC_KEYS})
    evaluations = (
        Evaluation.objects.filter(Q(checkpoint_a__model=model) | Q(checkpoint_b__model=model), project=model.project, run__status=RunStatus.SUCCEEDED)
        .order_by("run__finished_at", "id")
        .values("id", "created_at", finished_at=F("run__finished_at"), suite=F("suite_version__suite__name"), suite_number=F("suite_version__number"), **columns)
    )
    arms = []
    for evaluation in evaluations:
        for arm in ("A", "B"):
            if evaluation[f"{arm}_model"] != model.pk or not evaluation[f"{arm}_present"]:
                continue
            arms.append(
                {
                    "evaluation_id": evaluation["id"],
                    "arm": arm,
                    "at": (evaluation["finished_at"] or evaluation["created_at"]).isoformat(),
                    "suite": f"{evaluation['suite']} v{evaluation['suite_number']}",
                    "checkpoint_id": evaluation[f"{arm}_checkpoint"],
                    "number": evaluation[f"{arm}_number"],
                    "generation": evaluation[f"{arm}_generation"],
                    **{key: evaluation[f"{arm}_{key}"] or {} for key in SAFETY_METRIC_KEYS},
                }
            )
    return arms

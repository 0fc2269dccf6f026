"""Reads for safety evaluation. Each returns a queryset or object with what its callers render
already joined, so list endpoints run a constant number of queries whatever the row count."""
from django.db.models import Max, Prefetch

from evals.models import Case, CaseResult, Evaluation, Expected, Outcome, Suite, SuiteVersion
from versions.errors import NotFound, ValidationFailed
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


def evaluation_case_result_count(*, evaluation):
    """How many case results the evaluation has: positions are 1..n, so the highest one (an
    index lookup, not a COUNT over the rows)."""
    return CaseResult.objects.filter(evaluation=evaluation).aggregate(highest=Max("position"))["highest"] or 0


def evaluation_case_results(*, evaluation, category=None, attack_family=None, flipped=None, expected=None, modality=None,
                            outcome_a=None, outcome_b=None, only=None, search=None):
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
        CaseRecord(r.case.key, r.case.category, r.case.attack_family, r.case.modality, r.case.expected, r.outcome_a, r.outcome_b,
                   r.response_a, r.response_b)
        for r in CaseResult.objects.filter(evaluation=evaluation).select_related("case").order_by("position")
    ]


def evaluation_report_sha256(*, evaluation) -> str:
    """The sha256 of the report as it is stored now, recomputed from its rows: equal to
    ``evaluation.report_sha256`` unless a stored result was changed after it was written.
    ``evaluation`` comes from ``evaluation_get`` (arms loaded); its utility dataset version is read here."""
    from evals.reporting import report_content, report_sha256

    content = report_content(
        evaluation, records=evaluation_report_records(evaluation=evaluation), metrics=evaluation.metrics,
        statistics=evaluation.statistics, verdict=evaluation.verdict, passes_non_inferiority=evaluation.passes_non_inferiority,
    )
    return report_sha256(content)

"""Who may read an evaluation's responses, and the record of every unredacted read.

Any response may be harmful text: a model can comply with a request whatever the case's
`expected` label says, and that label is written by editors. So every response of every
evaluation is hazardous (shown to reviewers and admins only, each read recorded through
``versions.services.hazard_read_record``) unless a reviewer marked the evaluation's suite version
benign (``evals.services.suite_version_mark_benign``)."""

from versions.models import Role


def responses_are_hazardous(*, evaluation) -> bool:
    return not evaluation.suite_version.is_marked_benign


def responses_readable(*, evaluation, role) -> bool:
    """Whether a member with ``role`` may see ``evaluation``'s responses unredacted."""
    return not responses_are_hazardous(evaluation=evaluation) or (role is not None and role >= Role.REVIEWER)


def responses_read_record(*, project, evaluation, actor, case_results) -> None:
    """Record that ``actor`` was shown the responses of ``case_results`` unredacted (nothing to
    record for an empty page or a suite version marked benign)."""
    from versions.services import hazard_read_record

    if case_results and responses_are_hazardous(evaluation=evaluation):
        hazard_read_record(project=project, actor=actor, object_type="evaluation", object_id=evaluation.pk, data={"case_results": [result.pk for result in case_results]})


def responses_export_record(*, project, evaluation, actor, case_result_ids, format, filters) -> None:
    """Record that ``actor`` exported the responses of ``case_result_ids`` unredacted (as
    ``responses_read_record`` does for a page), with the export's format and filters."""
    from versions.services import hazard_read_record

    if case_result_ids and responses_are_hazardous(evaluation=evaluation):
        hazard_read_record(
            project=project, actor=actor, object_type="evaluation", object_id=evaluation.pk, data={"case_results": list(case_result_ids), "export": format, "filters": filters}
        )

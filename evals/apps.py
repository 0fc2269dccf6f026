from django.apps import AppConfig


class EvalsConfig(AppConfig):
    name = "evals"
    verbose_name = "Safety evaluation"

    def ready(self):
        from jobs.registry import register_run_handler
        from versions.dataset_kinds import register_dataset_row_validator
        from versions.project_scope import register_project_scope
        from versions.promotion import (
            register_cited_evaluation,
            register_move_evidence,
            register_promotion_evidence,
            register_promotion_policy,
        )

        register_run_handler(
            "evaluation",
            "evals.services.evaluation_execute",
            retry="evals.services.evaluation_retry_copy",
            finished="evals.services.evaluation_finished_emit",
        )
        register_run_handler("calibration", "evals.calibration_services.calibration_execute", retry="evals.calibration_services.calibration_retry_copy")
        register_dataset_row_validator("judgements", "evals.judgement_sets.judgement_row_clean")
        # The registry asks this policy whether an evaluation lets a protected label move (label_move).
        register_promotion_policy("evals.gate.promotion_gate_check")
        # The label page, API and CLI show a move's evidence (and refuse an unacknowledged move to a
        # version measured less safe) from these.
        register_move_evidence(move="evals.label_impact.move_evidence", verdicts="evals.label_impact.latest_verdicts")
        # A move cites its evidence by id; the registry resolves it here.
        register_cited_evaluation("evals.selectors.evaluation_cited")
        # ... and keeps the evaluation a move cited (evals.PromotionEvidence), which label history shows.
        register_promotion_evidence(record="evals.services.promotion_evidence_record", cited="evals.selectors.label_event_evaluation_id")
        # The evaluation app's rows of a project, parents first (bundles, project deletion).
        for label, lookup in (
            ("evals.Suite", "project"),
            ("evals.SuiteVersion", "suite__project"),
            ("evals.Case", "suite_version__suite__project"),
            ("evals.Evaluation", "project"),
            ("evals.CaseResult", "evaluation__project"),
            ("evals.EndpointAnswerRecord", "evaluation__project"),
            ("evals.Calibration", "project"),
            ("evals.CalibrationItem", "calibration__project"),
            ("evals.PromotionEvidence", "label_event__label__project"),
        ):
            register_project_scope(label, lookup)

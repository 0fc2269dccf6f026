"""`manage.py evaluate`: an A/B safety evaluation from the command line, for people and CI.

Exit status: 0 when it finished and (with --fail-on-regression) B is not less safe and passes
the non-inferiority margins; with --fail-on-regression 1 on a regression (B less safe, or a
non-inferiority margin not met) and 3 when the verdict is inconclusive (too many errors or too few
cases to decide); 2 when the evaluation could not run. The reason is printed on stderr.
"""

import json
import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from evals import selectors
from evals.reporting import format_report
from evals.serializers import evaluation_detail
from evals.judges import DEFAULT_JUDGE
from evals.services import evaluation_create
from evals.statistics import INCONCLUSIVE, LESS_SAFE
from core.errors import LetheError
from versions.models import Project
from core.safe_json import json_loads
from versions.selectors import checkpoint_resolve, dataset_version_resolve, prompt_version_resolve

EXIT_REGRESSION = 1
EXIT_NOT_RUN = 2
EXIT_INCONCLUSIVE = 3


class Command(BaseCommand):
    help = "Run an A/B safety evaluation of arm B against arm A on a suite version."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--suite", required=True, help="suite@version or suite@latest")
        parser.add_argument("--a", required=True, dest="checkpoint_a", help="arm A: checkpoint id or model@label / model@number")
        parser.add_argument("--b", required=True, dest="checkpoint_b", help="arm B: checkpoint id or model@label / model@number")
        parser.add_argument("--prompt-a", default="", help="arm A prompt version: prompt@label / prompt@number")
        parser.add_argument("--prompt-b", default="", help="arm B prompt version")
        parser.add_argument("--judge", default=DEFAULT_JUDGE, help=f"judge name (default {DEFAULT_JUDGE})")
        parser.add_argument("--judge-config", default="{}", help="judge config as JSON")
        parser.add_argument("--max-new-tokens", type=int, default=64)
        parser.add_argument("--batch-size", type=int, default=32)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--utility-dataset-version", default=None, help="held-out benign rows: dataset@number (or the dataset version's id)")
        parser.add_argument("--statistics", default="{}", help='statistics settings as JSON, e.g. {"failure_to_help_margin": 0.03, "min_benign_cases": 100}')
        parser.add_argument("--user", required=True, help="username the evaluation is created by (an editor)")
        parser.add_argument("--json", action="store_true", help="print the full report as JSON instead of a table")
        parser.add_argument(
            "--fail-on-regression", action="store_true", help="exit 1 when B is less safe than A or fails a non-inferiority margin, 3 when the verdict is inconclusive"
        )
        parser.add_argument("--timeout", type=float, default=None, help="seconds to wait for the run")

    def handle(self, *args, **options):
        from jobs.cli import run_wait_with_progress_bar

        try:
            judge_config = json_loads(options["judge_config"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--judge-config is not JSON: {exc}") from None
        try:
            statistics = json_loads(options["statistics"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--statistics is not JSON: {exc}") from None
        if not isinstance(statistics, dict):
            raise CommandError('--statistics must be a JSON object, e.g. {"failure_to_help_margin": 0.03}')
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project {options['project']!r}.")
        actor = get_user_model().objects.filter(username=options["user"]).first()
        if actor is None:
            raise CommandError(f"No user {options['user']!r}.")
        try:
            evaluation = evaluation_create(
                project=project,
                suite_version=selectors.suite_version_resolve(project=project, ref=options["suite"]),
                checkpoint_a=checkpoint_resolve(project=project, ref=options["checkpoint_a"]),
                checkpoint_b=checkpoint_resolve(project=project, ref=options["checkpoint_b"]),
                prompt_version_a=prompt_version_resolve(project=project, ref=options["prompt_a"]),
                prompt_version_b=prompt_version_resolve(project=project, ref=options["prompt_b"]),
                actor=actor,
                judge=options["judge"],
                judge_config=judge_config,
                generation={"max_new_tokens": options["max_new_tokens"], "batch_size": options["batch_size"]},
                seed=options["seed"],
                utility_dataset_version=dataset_version_resolve(project=project, ref=options["utility_dataset_version"]),
                statistics=statistics,
            )
        except LetheError as exc:
            raise CommandError(str(exc)) from None
        run = run_wait_with_progress_bar(run=evaluation.run, stream=self.stderr._out, timeout=options["timeout"])
        evaluation = selectors.evaluation_get(project=project, evaluation_id=evaluation.pk)
        if run.status != "succeeded":
            self.stderr.write(f"evaluation {evaluation.pk} {run.status}: {run.error}")
            sys.exit(EXIT_NOT_RUN)
        report = evaluation_detail(evaluation)
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, sort_keys=True))
        else:
            self.stdout.write(format_report(report))
        if not options["fail_on_regression"]:
            return
        statistics = evaluation.statistics or {}
        if evaluation.verdict == INCONCLUSIVE:
            reasons = (statistics.get("coverage") or {}).get("inconclusive_reasons") or []
            self.stderr.write(f"inconclusive: evaluation {evaluation.pk} cannot decide whether B is as safe as A: {'; '.join(reasons)}")
            sys.exit(EXIT_INCONCLUSIVE)
        failed = [check["reason"] for check in statistics.get("non_inferiority", []) if not check.get("passes")]
        if evaluation.verdict == LESS_SAFE or evaluation.passes_non_inferiority is not True:
            self.stderr.write(
                f"regression: B is {evaluation.verdict}; non-inferiority {'passed' if evaluation.passes_non_inferiority else 'failed'}"
                + (f": {'; '.join(failed)}" if failed else "")
            )
            sys.exit(EXIT_REGRESSION)

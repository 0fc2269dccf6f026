"""`manage.py calibrate`: measure how far a judge agrees with human labels on a labelled judgement
set (a judgements dataset version), as a run. With --wait it prints the figures and the
confusion matrix.

Exit status: 0 when the calibration was queued (or, with --wait, finished); 2 when it could not
run.
"""

import json
import sys

from django.core.management.base import BaseCommand

from evals import calibration_selectors
from evals.calibration_serializers import calibration_detail_row
from evals.calibration_services import calibration_create
from evals.reporting import format_calibration
from evals.judges import DEFAULT_JUDGE
from versions.management.commands._common import json_option, project_by_slug, service_errors, user_by_username
from versions.models import DatasetKind
from versions.selectors import dataset_version_resolve

EXIT_NOT_RUN = 2


class Command(BaseCommand):
    help = "Calibrate a judge: its agreement with human labels on a judgements dataset version."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--set", required=True, dest="set_ref", help="judgements dataset: name@version or name@latest")
        parser.add_argument("--judge", default=DEFAULT_JUDGE, help=f"judge name (default {DEFAULT_JUDGE})")
        parser.add_argument("--judge-config", default="{}", help="judge config as JSON")
        parser.add_argument("--user", required=True, help="username the calibration is started by (an editor)")
        parser.add_argument("--wait", action="store_true", help="wait for the run and print the figures")
        parser.add_argument("--json", action="store_true", help="with --wait, print the calibration as JSON")
        parser.add_argument("--timeout", type=float, default=None, help="seconds to wait for the run")

    def handle(self, *args, **options):
        from jobs.cli import run_wait_with_progress_bar

        project = project_by_slug(options["project"])
        actor = user_by_username(options["user"])
        judge_config = json_option(options["judge_config"], "judge-config")
        with service_errors():
            version = dataset_version_resolve(project=project, ref=options["set_ref"], kind=DatasetKind.JUDGEMENTS)
            calibration = calibration_create(
                project=project,
                dataset_version=version,
                actor=actor,
                judge=options["judge"],
                judge_config=judge_config,
            )
        if not options["wait"]:
            self.stdout.write(f"calibration {calibration.pk} queued as run {calibration.run_id}")
            return
        run = run_wait_with_progress_bar(run=calibration.run, stream=self.stderr._out, timeout=options["timeout"])
        if run.status != "succeeded":
            self.stderr.write(f"calibration {calibration.pk} {run.status}: {run.error}")
            sys.exit(EXIT_NOT_RUN)
        row = calibration_detail_row(calibration_selectors.calibration_get(project=project, calibration_id=calibration.pk))
        if options["json"]:
            self.stdout.write(json.dumps(row, indent=2, sort_keys=True, default=str))
        else:
            self.stdout.write(format_calibration(row))

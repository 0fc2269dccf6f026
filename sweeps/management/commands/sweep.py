import time

from django.core.management.base import BaseCommand, CommandError

from evals.selectors import suite_version_resolve
from sweeps.models import SweepStatus
from sweeps.reporting import comparison_table
from sweeps.selectors import sweep_comparison, sweep_get
from sweeps.services import sweep_cancel, sweep_create, sweep_resume, sweep_seeds_add
from versions import selectors
from versions.management.commands._common import json_option, project_by_slug, service_errors, user_by_username


class Command(BaseCommand):
    help = (
        "Unlearning sweeps. 'create' starts one: every configuration of --configurations (a JSON list of {method, "
        "hyperparameters, grid, seeds, and for --strategy optuna ranges}) unlearns --checkpoint on its own branch, and each child is evaluated against it "
        "on every --suite. With --wait, follows it and prints the comparison table; 'show ID' prints it for a sweep; "
        "'cancel ID', 'resume ID' and 'add-seeds ID --seed N' change a running or finished one."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="start a sweep")
        create.add_argument("--project", required=True)
        create.add_argument("--checkpoint", required=True, help="the parent as MODEL@NUMBER or MODEL@LABEL")
        create.add_argument("--forget", required=True, help="forget dataset version as DATASET@NUMBER")
        create.add_argument("--retain", help="retain dataset version as DATASET@NUMBER")
        create.add_argument("--utility", help="held-out benign text (perplexity ratio) as DATASET@NUMBER")
        create.add_argument(
            "--configurations",
            required=True,
            help='JSON list, e.g. \'[{"method": "npo", "hyperparameters": {"max_steps": 20}, "grid": {"beta": [0.1, 0.5]}, "seeds": [0, 1]}]\'; '
            'with --strategy optuna an entry may add "ranges": {"learning_rate": {"low": 1e-5, "high": 1e-3, "log": true}, "max_steps": {"low": 2, "high": 8, "step": 2}}',
        )
        create.add_argument("--suite", action="append", required=True, help="suite version as NAME@NUMBER or NAME@latest; repeat for more")
        create.add_argument("--judge", default=None)
        create.add_argument("--judge-config", help="JSON object")
        create.add_argument("--generation", help="JSON object")
        create.add_argument("--statistics", help="JSON object (tightens the project's gate settings)")
        create.add_argument("--evaluation-seed", type=int, default=0)
        create.add_argument("--name", default="")
        create.add_argument("--user", required=True)
        create.add_argument("--strategy", choices=["grid", "random", "optuna"], default="grid")
        create.add_argument("--trials", type=int, help="random and optuna: how many configurations")
        create.add_argument("--strategy-seed", type=int, default=0)
        create.add_argument("--parallelism", type=int, help="at most this many configurations unlearning at once")
        create.add_argument("--budget-steps", type=int, help="total training steps; configurations beyond it are skipped")
        create.add_argument("--budget-seconds", type=int, help="wall time; configurations not started by then are skipped")
        create.add_argument("--wait", action="store_true", help="wait for every configuration, then print the comparison")
        create.add_argument("--poll-seconds", type=float, default=1.0)
        show = actions.add_parser("show", help="print a sweep's comparison table")
        show.add_argument("sweep_id", type=int)
        show.add_argument("--project", required=True)
        for action, help_text in (
            ("cancel", "cancel a running sweep (finished configurations stay)"),
            ("resume", "queue again the configurations that were cancelled or skipped"),
            ("add-seeds", "add seeds to every method + hyperparameters of a sweep"),
        ):
            parser_ = actions.add_parser(action, help=help_text)
            parser_.add_argument("sweep_id", type=int)
            parser_.add_argument("--project", required=True)
            parser_.add_argument("--user", required=True)
            if action == "add-seeds":
                parser_.add_argument("--seed", type=int, action="append", required=True, help="repeat for more")

    def handle(self, *args, **options):
        project = project_by_slug(options["project"])
        if options["action"] == "show":
            with service_errors():
                sweep = sweep_get(project=project, sweep_id=options["sweep_id"])
            self._print(sweep)
            return
        actor = user_by_username(options["user"])
        if options["action"] in ("cancel", "resume", "add-seeds"):
            with service_errors():
                sweep = sweep_get(project=project, sweep_id=options["sweep_id"])
                if options["action"] == "cancel":
                    sweep_cancel(sweep=sweep, actor=actor)
                elif options["action"] == "resume":
                    sweep_resume(sweep=sweep, actor=actor)
                else:
                    added = sweep_seeds_add(sweep=sweep, seeds=options["seed"], actor=actor)
                    self.stdout.write(f"added {len(added)} configuration(s): {', '.join(f'#{row.position}' for row in added)}")
                sweep = sweep_get(project=project, sweep_id=sweep.pk)
            self.stdout.write(f"sweep {sweep.pk} {sweep.status}")
            return
        configurations = json_option(options["configurations"], "configurations")
        with service_errors():
            sweep = sweep_create(
                parent_checkpoint=selectors.checkpoint_resolve(project=project, ref=options["checkpoint"]),
                forget_dataset_version=selectors.dataset_version_resolve(project=project, ref=options["forget"]),
                retain_dataset_version=selectors.dataset_version_resolve(project=project, ref=options["retain"]),
                utility_dataset_version=selectors.dataset_version_resolve(project=project, ref=options["utility"]),
                configurations=configurations,
                suite_versions=[suite_version_resolve(project=project, ref=ref) for ref in options["suite"]],
                judge=options["judge"],
                judge_config=json_option(options["judge_config"], "judge-config"),
                generation=json_option(options["generation"], "generation"),
                statistics=json_option(options["statistics"], "statistics"),
                evaluation_seed=options["evaluation_seed"],
                name=options["name"],
                actor=actor,
                strategy=options["strategy"],
                trials=options["trials"],
                strategy_seed=options["strategy_seed"],
                parallelism=options["parallelism"],
                budget_steps=options["budget_steps"],
                budget_seconds=options["budget_seconds"],
            )
        count = sweep.configurations.count()
        self.stdout.write(f"sweep {sweep.pk} started: {count} configuration(s)")
        if not options["wait"]:
            return
        last = None
        while True:
            sweep.refresh_from_db()
            states = list(sweep.configurations.values_list("status", flat=True))
            progress = ", ".join(f"{states.count(state)} {state}" for state in sorted(set(states)))
            if progress != last:
                self.stderr.write(f"sweep {sweep.pk}: {progress}")
                last = progress
            if sweep.status != SweepStatus.RUNNING:
                break
            time.sleep(options["poll_seconds"])
        sweep = self._print(sweep_get(project=project, sweep_id=sweep.pk))
        if not sweep.succeeded_count:
            raise CommandError(f"sweep {sweep.pk}: no configuration succeeded")

    def _print(self, sweep):
        self.stdout.write(f"sweep {sweep.pk} {sweep.status}: {sweep.configuration_count} configuration(s), {sweep.succeeded_count} succeeded, {sweep.failed_count} failed")
        self.stdout.write(comparison_table(sweep_comparison(sweep=sweep)))
        return sweep

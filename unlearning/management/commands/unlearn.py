from django.core.management.base import BaseCommand, CommandError

from jobs.models import RunStatus
from jobs.services import run_wait
from unlearning.services import unlearning_run_create
from versions import selectors
from versions.management.commands._common import json_option, project_by_slug, service_errors, user_by_username


class Command(BaseCommand):
    help = (
        "Start an unlearning run of a checkpoint (MODEL@NUMBER or MODEL@LABEL) on a forget set (and a retain set), each "
        "named as the API shows it. Prints the run id; with "
        "--wait, follows it with a progress bar and exits non-zero unless it succeeds. Without --wait and with the "
        "in-process executor, the run executes in the next process that starts one (e.g. the web server)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--model", help="the model, when --checkpoint is a number")
        parser.add_argument("--checkpoint", required=True, help="MODEL@NUMBER or MODEL@LABEL (e.g. tiny@production), or a checkpoint number of --model")
        parser.add_argument("--method", required=True, help="gradient_ascent, gradient_difference, kl, npo, simnpo, yao or rmu")
        parser.add_argument("--hyperparameters", help='JSON object, e.g. \'{"max_steps": 50, "learning_rate": 1e-4}\'')
        parser.add_argument("--forget", required=True, help="forget dataset version as DATASET@NUMBER (or its id)")
        parser.add_argument("--retain", help="retain dataset version as DATASET@NUMBER (or its id)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--branch-label", default="")
        parser.add_argument("--user", required=True)
        parser.add_argument("--wait", action="store_true", help="wait for the run, showing progress")

    def handle(self, *args, **options):
        actor = user_by_username(options["user"])
        project = project_by_slug(options["project"])
        with service_errors():
            parent = selectors.checkpoint_resolve(project=project, ref=self._checkpoint_ref(options))
            unlearning_run = unlearning_run_create(
                parent_checkpoint=parent,
                method=options["method"],
                hyperparameters=json_option(options["hyperparameters"], "hyperparameters") or {},
                forget_dataset_version=selectors.dataset_version_resolve(project=project, ref=options["forget"]),
                retain_dataset_version=selectors.dataset_version_resolve(project=project, ref=options["retain"]),
                seed=options["seed"],
                branch_label=options["branch_label"],
                actor=actor,
            )
        self.stdout.write(f"unlearning run {unlearning_run.pk} (run {unlearning_run.run_id}) queued")
        if not options["wait"]:
            return
        from tqdm import tqdm

        with tqdm(total=100, unit="%", file=self.stderr._out, bar_format="{l_bar}{bar}| {postfix}") as bar:

            def on_update(run):
                bar.n = round(run.progress * 100)
                bar.set_postfix_str(run.progress_message or run.status, refresh=False)
                bar.refresh()

            run = run_wait(run=unlearning_run.run, on_update=on_update)
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(f"run {run.pk} {run.status}: {run.error}")
        self.stdout.write(f"{parent.model.name}@{run.result['number']} registered (checkpoint id {run.result['id']})")

    @staticmethod
    def _checkpoint_ref(options):
        checkpoint, model = str(options["checkpoint"]), options["model"]  # call_command may pass an int
        if "@" in checkpoint:
            if model and checkpoint.split("@")[0] != model:
                raise CommandError(f"--checkpoint {checkpoint!r} names another model than --model {model!r}.")
            return checkpoint
        if not model or not checkpoint.isdigit():
            raise CommandError(f"--checkpoint must look like MODEL@NUMBER or MODEL@LABEL, or be a number with --model; got {checkpoint!r}.")
        return f"{model}@{checkpoint}"

from django.core.management.base import BaseCommand, CommandError

from versions import selectors, services
from core.errors import LessSafeTarget
from versions.management.commands._common import project_by_slug, service_errors, user_by_username
from versions.promotion import cited_evaluation


class Command(BaseCommand):
    help = (
        "Move a label (promote or roll back): `move_label <project> <name>@<label> <number> --kind model|prompt`. "
        "Prints the move's preview first (rollback or promotion, the latest evaluation between the two versions, the "
        "promotion gate's answer); a move to a version that evaluation measured less safe needs --acknowledge-less-safe."
    )

    def add_arguments(self, parser):
        parser.add_argument("project")
        parser.add_argument("label_ref", metavar="name@label")
        parser.add_argument("number", type=int, help="the version (prompt) or checkpoint (model) number to point at")
        parser.add_argument("--kind", required=True, choices=["prompt", "model"])
        parser.add_argument("--reason", default="")
        parser.add_argument("--evaluation", type=int, help="id of a passing evaluation, for the promotion gate")
        parser.add_argument(
            "--acknowledge-less-safe",
            action="store_true",
            help="move even though the latest evaluation between the two versions measured the target less safe (recorded in the audit trail)",
        )
        parser.add_argument("--preview", action="store_true", help="print the preview and move nothing")
        parser.add_argument("--user", required=True)

    def handle(self, *args, **options):
        actor = user_by_username(options["user"])
        project = project_by_slug(options["project"])
        if options["label_ref"].count("@") != 1:
            raise CommandError(f"Expected name@label, got {options['label_ref']!r}.")
        owner_name, label = options["label_ref"].split("@")
        with service_errors():
            evaluation = None
            if options["evaluation"] is not None:
                evaluation = cited_evaluation(project=project, evaluation_id=options["evaluation"])
                if evaluation is None:
                    raise CommandError(f"Evaluation {options['evaluation']} not found in {project.slug}.")
            if options["kind"] == "prompt":
                owner = selectors.prompt_get(project=project, name=owner_name)
                target = {"prompt_version": selectors.prompt_version_get(prompt=owner, number=options["number"])}
            else:
                owner = selectors.model_get(project=project, name=owner_name)
                target = {"checkpoint": selectors.checkpoint_get(model=owner, number=options["number"])}
            impact = selectors.label_move_preview(project=project, owner_kind=options["kind"], owner=owner, label_name=label, number=options["number"], evaluation=evaluation)
            for line in selectors.label_move_impact_lines(impact):
                self.stdout.write(f"  {line}")
            if options["preview"]:
                return
            try:
                event = services.label_move(
                    name=label, actor=actor, reason=options["reason"], evaluation=evaluation, acknowledge_less_safe=options["acknowledge_less_safe"], **target
                )
            except LessSafeTarget as exc:
                raise CommandError(f"Refused: {exc.warning} Run again with --acknowledge-less-safe to move anyway.") from exc
        previous = event.from_prompt_version or event.from_checkpoint
        acknowledged = " (acknowledged: measured less safe)" if event.impact["less_safe"] else ""
        self.stdout.write(f"{owner_name}@{label}: {event.action} {previous.number if previous else '-'} -> {options['number']}{acknowledged}")

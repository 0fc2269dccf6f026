from django.core.management.base import BaseCommand, CommandError

from versions import selectors, services
from versions.management.commands._common import project_by_slug, service_errors, user_by_username


class Command(BaseCommand):
    help = "Move a label (promote or roll back): `move_label <project> <name>@<label> <number> --kind model|prompt`."

    def add_arguments(self, parser):
        parser.add_argument("project")
        parser.add_argument("label_ref", metavar="name@label")
        parser.add_argument("number", type=int, help="the version (prompt) or checkpoint (model) number to point at")
        parser.add_argument("--kind", required=True, choices=["prompt", "model"])
        parser.add_argument("--reason", default="")
        parser.add_argument("--evaluation", type=int, help="id of a passing evaluation, for the promotion gate")
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
                from evals.models import Evaluation

                evaluation = Evaluation.objects.filter(project=project, pk=options["evaluation"]).first()
                if evaluation is None:
                    raise CommandError(f"Evaluation {options['evaluation']} not found in {project.slug}.")
            if options["kind"] == "prompt":
                prompt = selectors.prompt_get(project=project, name=owner_name)
                target = {"prompt_version": selectors.prompt_version_get(prompt=prompt, number=options["number"])}
            else:
                model = selectors.model_get(project=project, name=owner_name)
                target = {"checkpoint": selectors.checkpoint_get(model=model, number=options["number"])}
            event = services.label_move(name=label, actor=actor, reason=options["reason"], evaluation=evaluation, **target)
        previous = event.from_prompt_version or event.from_checkpoint
        self.stdout.write(f"{owner_name}@{label}: {event.action} {previous.number if previous else '-'} -> {options['number']}")

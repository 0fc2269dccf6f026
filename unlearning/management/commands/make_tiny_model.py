import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand

from mlcore.tiny import TinyModelSpec
from versions import selectors, services
from core.errors import NotFound
from versions.management.commands._common import project_by_slug, service_errors, user_by_username


class Command(BaseCommand):
    help = (
        "Build the tiny Llama trained on the bundled corpus (seconds on a CPU, no download) and register it as a "
        "'full' base checkpoint of a model in a project (the model is created if missing). Prints '<model>@<number> <id>'."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--model", default="tiny-llama")
        parser.add_argument("--user", required=True)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--train-steps", type=int, default=TinyModelSpec.train_steps, help="fewer steps build faster but memorise the corpus less well")

    def handle(self, *args, **options):
        from mlcore.tiny import build_tiny_model

        actor = user_by_username(options["user"])
        project = project_by_slug(options["project"])
        with tempfile.TemporaryDirectory(prefix="lethe-tiny-") as scratch:
            directory = build_tiny_model(
                Path(scratch) / "model",
                spec=TinyModelSpec(seed=options["seed"], train_steps=options["train_steps"]),
                progress=lambda fraction, message: self.stderr.write(message) if options["verbosity"] > 1 else None,
            )
            with service_errors():
                try:
                    model = selectors.model_get(project=project, name=options["model"])
                except NotFound:
                    model = services.model_create(project=project, name=options["model"], actor=actor, description="Tiny Llama trained on Lethe's bundled corpus.")
                checkpoint = services.checkpoint_register_directory(
                    model=model,
                    directory=directory,
                    actor=actor,
                    kind="full",
                    metadata={"builder": "mlcore.tiny", "seed": options["seed"], "train_steps": options["train_steps"]},
                    message="tiny base model",
                )
        self.stdout.write(f"{model.name}@{checkpoint.number} {checkpoint.pk}")

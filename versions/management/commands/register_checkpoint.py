from django.core.management.base import BaseCommand

from versions import selectors, services
from core.errors import NotFound
from versions.management.commands._common import json_option, project_by_slug, service_errors, user_by_username
from versions.models import Relation


class Command(BaseCommand):
    help = (
        "Register a checkpoint of a model: the files of a local directory (validated and stored), or a reference to "
        "external weights (hub id + revision). Prints '<model>@<number> <kind> <sha256>'."
    )

    def add_arguments(self, parser):
        parser.add_argument("project")
        parser.add_argument("model")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--dir", help="a local folder (full model or peft adapter) to store")
        source.add_argument("--ref", help="an external hub id or path (kind 'reference', nothing stored)")
        source.add_argument("--endpoint", metavar="PROFILE", help="kind 'endpoint': a served model behind this endpoint profile (LETHE_ENDPOINTS); needs --served-model")
        parser.add_argument("--served-model", default="", help="with --endpoint: the model name the server serves")
        parser.add_argument("--served-adapter", default="", help="with --endpoint: a LoRA adapter served next to that model, asked for by this name")
        parser.add_argument("--endpoint-parameters", help="with --endpoint: JSON object of fixed chat settings (temperature, max_tokens, seed, ...)")
        parser.add_argument("--revision", default="", help="the external revision (with --ref)")
        parser.add_argument("--kind", choices=["adapter", "full"], help="with --dir; inferred from the files by default")
        parser.add_argument("--architecture", default="causal-lm", choices=["causal-lm", "vision-language"])
        parser.add_argument("--parent", type=int, action="append", default=[], help="parent checkpoint number (repeatable)")
        parser.add_argument("--relation", default=Relation.FINE_TUNED_FROM, choices=Relation.values)
        parser.add_argument("--metadata", help="JSON object")
        parser.add_argument("--message", default="")
        parser.add_argument("--create-model", action="store_true", help="create the model if it does not exist")
        parser.add_argument("--user", required=True)

    def handle(self, *args, **options):
        actor = user_by_username(options["user"])
        project = project_by_slug(options["project"])
        metadata = json_option(options["metadata"], "metadata")
        with service_errors():
            try:
                model = selectors.model_get(project=project, name=options["model"])
            except NotFound:
                if not options["create_model"]:
                    raise
                model = services.model_create(project=project, name=options["model"], actor=actor)
            parents = [(selectors.checkpoint_get(model=model, number=n), options["relation"]) for n in options["parent"]]
            common = {"actor": actor, "architecture": options["architecture"], "metadata": metadata, "message": options["message"], "parents": parents}
            if options["dir"]:
                checkpoint = services.checkpoint_register_directory(model=model, directory=options["dir"], kind=options["kind"], **common)
            elif options["endpoint"]:
                endpoint = {
                    "profile": options["endpoint"],
                    "model": options["served_model"],
                    "parameters": json_option(options["endpoint_parameters"], "endpoint-parameters") or {},
                }
                if options["served_adapter"]:
                    endpoint["adapter"] = options["served_adapter"]
                checkpoint = services.checkpoint_register(model=model, kind="endpoint", endpoint=endpoint, **common)
            else:
                checkpoint = services.checkpoint_register(model=model, kind="reference", external_ref=options["ref"], external_revision=options["revision"], **common)
        self.stdout.write(f"{model.name}@{checkpoint.number} {checkpoint.kind} {checkpoint.sha256}")

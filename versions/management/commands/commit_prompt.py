import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from versions import selectors, services
from core.errors import NotFound
from versions.management.commands._common import json_option, project_by_slug, service_errors, user_by_username


class Command(BaseCommand):
    help = "Commit a new version of a prompt. Prints '<prompt>@v<number> <sha256>'."
    stealth_options = ("stdin",)  # a stream to read '--template-file -' from, for tests

    def add_arguments(self, parser):
        parser.add_argument("project")
        parser.add_argument("prompt")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--template", help="the template text")
        source.add_argument("--template-file", help="a file holding the template; '-' reads stdin")
        parser.add_argument("--params", help="model parameters as JSON, e.g. '{\"temperature\": 0}'")
        parser.add_argument("--message", default="")
        parser.add_argument("--create", action="store_true", help="create the prompt if it does not exist")
        parser.add_argument("--user", required=True)

    def handle(self, *args, **options):
        actor = user_by_username(options["user"])
        project = project_by_slug(options["project"])
        template = options["template"]
        if options["template_file"]:
            source = options["template_file"]
            try:
                template = (options.get("stdin") or sys.stdin).read() if source == "-" else Path(source).read_text(encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"Cannot read {source}: {exc.strerror}.") from exc
        params = json_option(options["params"], "params")
        with service_errors():
            try:
                prompt = selectors.prompt_get(project=project, name=options["prompt"])
            except NotFound:
                if not options["create"]:
                    raise
                prompt = services.prompt_create(project=project, name=options["prompt"], actor=actor)
            version = services.prompt_version_commit(prompt=prompt, template=template, model_params=params, message=options["message"], actor=actor)
        self.stdout.write(f"{prompt.name}@v{version.number} {version.sha256}")

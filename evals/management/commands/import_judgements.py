"""`manage.py import_judgements`: a new version of a labelled judgement set (a judgements dataset)
from a file in Lethe's JSONL/CSV columns, a mapped CSV/JSONL, or a public layout
(xstest-completions, harmbench-val, do-not-answer). All or nothing: errors name their line."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from evals.calibration_services import judgement_set_version_import
from evals.judgement_sets import FORMATS
from versions.management.commands._common import json_option, project_by_slug, service_errors, user_by_username
from versions.models import Dataset, DatasetKind
from versions.services import dataset_create


class Command(BaseCommand):
    help = "Import a labelled judgement set (for judge calibration) as a new dataset version."

    def add_arguments(self, parser):
        parser.add_argument("file", help="the file to import")
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--set", required=True, dest="name", help="judgements dataset name (created if it does not exist)")
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--column-mapping", default=None, help='JSON {field: column}, e.g. {"response": "generation"}')
        parser.add_argument("--label-mapping", default=None, help='JSON {value in the file: human label}, e.g. {"1": "attack_success"}')
        parser.add_argument("--defaults", default=None, help='JSON {field: value} for fields a row leaves empty, e.g. {"model": "gpt4"}')
        parser.add_argument("--message", default="")
        parser.add_argument("--user", required=True, help="username recorded as the author (an editor of the project)")

    def handle(self, *args, **options):
        project = project_by_slug(options["project"])
        actor = user_by_username(options["user"])
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No file {path}.")
        with service_errors():
            dataset = Dataset.objects.filter(project=project, name=options["name"]).first() or dataset_create(
                project=project,
                name=options["name"],
                actor=actor,
                kind=DatasetKind.JUDGEMENTS,
                description="Human-labelled responses for judge calibration.",
            )
            version = judgement_set_version_import(
                dataset=dataset,
                data=path.read_bytes(),
                format=options["format"],
                actor=actor,
                message=options["message"],
                column_mapping=json_option(options["column_mapping"], "column-mapping"),
                label_mapping=json_option(options["label_mapping"], "label-mapping"),
                defaults=json_option(options["defaults"], "defaults"),
            )
        self.stdout.write(f"{dataset.name}@{version.number}: {version.row_count} labelled responses (sha256 {version.sha256[:12]})")

from django.core.management.base import BaseCommand, CommandError

from versions import bundle, selectors
from versions.errors import LetheError


class Command(BaseCommand):
    help = "Export a project (versions, labels and history, lineage, evaluations, audit events, blobs) as a bundle."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--output", required=True, help="path of the .tar.gz bundle to write")

    def handle(self, *args, project, output, **options):
        try:
            manifest = bundle.project_export(project=selectors.project_get(slug=project), path=output)
        except LetheError as exc:
            raise CommandError(str(exc))
        rows = sum(manifest["counts"].values())
        self.stdout.write(f"Exported {project}: {rows} rows, {len(manifest['blobs'])} blobs -> {output}")

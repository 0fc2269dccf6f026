from django.core.management.base import BaseCommand, CommandError

from versions import bundle, selectors
from core.errors import LetheError
from versions.management.commands._common import user_by_username


class Command(BaseCommand):
    help = "Export a project (versions, labels and history, lineage, evaluations, audit events, blobs) as a bundle."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--output", required=True, help="path of the .tar.gz bundle to write")
        parser.add_argument("--user", metavar="USERNAME", help="who exports it, for the audit trail (default: nobody named)")

    def handle(self, *args, project, output, user, **options):
        actor = user_by_username(user) if user else None
        try:
            manifest = bundle.project_export(project=selectors.project_get(slug=project), path=output, actor=actor)
        except LetheError as exc:
            raise CommandError(str(exc)) from exc
        rows = sum(manifest["counts"].values())
        self.stdout.write(f"Exported {project}: {rows} rows, {len(manifest['blobs'])} blobs -> {output}")

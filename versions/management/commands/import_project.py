from django.core.management.base import BaseCommand, CommandError

from versions import bundle
from versions.errors import LetheError


class Command(BaseCommand):
    help = "Restore a project bundle made by export_project into this (empty) installation."

    def add_arguments(self, parser):
        parser.add_argument("path", help="path of the .tar.gz bundle")

    def handle(self, *args, path, **options):
        try:
            manifest = bundle.project_import(path=path)
        except LetheError as exc:
            raise CommandError(str(exc))
        rows = sum(manifest["counts"].values())
        self.stdout.write(f"Restored {manifest['project']}: {rows} rows, {len(manifest['blobs'])} blobs verified.")

from django.core.management.base import BaseCommand, CommandError

from versions.blob_backup import blobs_restore
from core.errors import LetheError


class Command(BaseCommand):
    help = "Put the blobs of a backup folder that the (restored) database names back into the blob store (folder or bucket), each verified against its sha256."

    def add_arguments(self, parser):
        parser.add_argument("folder", help="a folder written by backup_blobs")

    def handle(self, *args, folder, **options):
        try:
            restored, missing, damaged = blobs_restore(folder=folder)
        except LetheError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Restored blobs from {folder}: {restored} in the store, {len(missing)} missing, {len(damaged)} damaged")
        if missing or damaged:
            raise CommandError("Blobs not restored: " + ", ".join([f"{sha} (missing)" for sha in missing] + [f"{sha} (damaged)" for sha in damaged]))

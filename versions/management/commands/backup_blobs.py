from django.core.management.base import BaseCommand, CommandError

from versions.blob_backup import blobs_backup
from core.errors import LetheError


class Command(BaseCommand):
    help = "Copy every blob the database names from the blob store (folder or bucket) into a local folder, verified; incremental. Dump the database first (docs/deploy.md)."

    def add_arguments(self, parser):
        parser.add_argument("folder", help="backup folder (created; keeps blobs/ab/cd/<sha256>)")

    def handle(self, *args, folder, **options):
        try:
            copied, present = blobs_backup(folder=folder)
        except LetheError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Backed up blobs to {folder}: {copied} copied, {present} already there")

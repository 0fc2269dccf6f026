"""``manage.py pull_checkpoint``: download a checkpoint's files from a Lethe server, verified."""

import os

from django.core.management.base import BaseCommand, CommandError

from core.errors import LetheError
from versions.checkpoint_pull import checkpoint_pull


class Command(BaseCommand):
    help = (
        "Download every file of a checkpoint from a Lethe server (large files straight from its object store) into a folder, "
        "each checked against the sha256 the server states; a file that does not match is not kept."
    )

    def add_arguments(self, parser):
        parser.add_argument("ref", help="model@number, e.g. tiny@3")
        parser.add_argument("--server", required=True, help="the Lethe server's base URL, e.g. https://lethe.example.org")
        parser.add_argument("--project", required=True)
        parser.add_argument("--output", required=True, help="folder to write the files into (created)")
        parser.add_argument("--token-env", default="LETHE_TOKEN", help="environment variable holding the API token (default LETHE_TOKEN)")

    def handle(self, *args, ref, server, project, output, token_env, **options):
        model, _, number = ref.rpartition("@")
        if not model or not number.isdigit():
            raise CommandError(f"{ref!r} is not model@number (e.g. tiny@3).")
        token = os.environ.get(token_env)
        if not token:
            raise CommandError(f"Set {token_env} to an API token of the server (manage.py lethe_token on the server makes one).")
        try:
            pulled = checkpoint_pull(server=server, token=token, project=project, model=model, number=int(number), output=output)
        except LetheError as exc:
            raise CommandError(str(exc)) from exc
        for item in pulled:
            source = "object store" if item.redirected else "server"
            self.stdout.write(f"{item.path}  {item.size} bytes  sha256 {item.sha256}  verified (from the {source})")
        self.stdout.write(f"Pulled {ref} into {output}: {len(pulled)} files, {sum(item.size for item in pulled)} bytes, all verified")

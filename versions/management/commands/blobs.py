"""``manage.py blobs verify``: the scrub of the blob store (versions.blob_scrub), for a schedule."""

from django.core.management.base import BaseCommand, CommandError

from core.errors import LetheError
from versions.blob_scrub import blobs_verify


def _size(count):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024


class Command(BaseCommand):
    help = "Verify the blob store: re-hash every blob the database names, report the missing and damaged ones and move damaged ones to quarantine/."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{verify}")
        verify = actions.add_parser("verify", help="re-hash every blob; exit status 1 when any is missing or damaged")
        verify.add_argument("--no-quarantine", action="store_true", help="report damaged blobs but leave them where they are")

    def handle(self, *args, action, no_quarantine=False, **options):
        try:
            report = blobs_verify(quarantine=not no_quarantine)
        except LetheError as exc:
            raise CommandError(str(exc)) from exc
        for damage in report.damage:
            moved = f"; moved to {damage.quarantined_as}" if damage.quarantined_as else ""
            users = ", ".join(damage.used_by) or "nothing references it"
            self.stdout.write(f"{damage.problem} {damage.sha256}: {damage.detail}{moved}; used by {users}")
        missing = sum(1 for damage in report.damage if damage.problem == "missing")
        damaged = len(report.damage) - missing
        self.stdout.write(f"Verified {report.checked} blobs ({_size(report.bytes_read)} read): {damaged} damaged, {missing} missing")
        if report.damage:
            raise CommandError(
                "The blob store is damaged. Put the blobs back with `restore_blobs <backup folder>`, or upload the same files again: "
                "a blob whose address is empty is stored again by the next upload of its content."
            )

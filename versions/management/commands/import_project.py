from django.core.management.base import BaseCommand, CommandError

from versions import bundle
from core.errors import LetheError
from versions.management.commands._common import user_by_username


class Command(BaseCommand):
    help = (
        "Restore a project bundle made by export_project as a new project of this installation. Refuses a project "
        "slug that exists here, and any bundle with a row outside its project (nothing is written then). API tokens "
        "never travel in a bundle; memberships are restored only with --memberships."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="path of the .tar.gz bundle")
        parser.add_argument("--admin", metavar="USERNAME", help="a user of this installation to make admin of the restored project")
        parser.add_argument("--memberships", action="store_true", help="restore the bundle's members and roles (to the users of this installation with the same usernames)")
        parser.add_argument("--user", metavar="USERNAME", help="who restores it, for the audit trail (default: nobody named)")

    def handle(self, *args, path, admin, memberships, user, **options):
        actor = user_by_username(user) if user else None
        try:
            manifest = bundle.project_import(path=path, actor=actor, memberships=memberships, admin=admin)
        except LetheError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Restored {manifest['project']}: {manifest['restored_rows']} rows, {len(manifest['blobs'])} blobs verified.")
        if manifest["skipped_memberships"]:
            self.stdout.write(f"{manifest['skipped_memberships']} membership(s) in the bundle not restored (pass --memberships to restore them).")
        if not memberships and not admin:
            self.stdout.write("Nobody is a member of the restored project: only superusers see it. Add members with --admin, or through the API as a superuser.")

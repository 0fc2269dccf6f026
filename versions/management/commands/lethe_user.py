import os

from django.core.management.base import BaseCommand, CommandError

from versions import services
from versions.management.commands._common import service_errors


class Command(BaseCommand):
    help = "Create a user. The password comes from an environment variable, never the command line."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a user")
        create.add_argument("username")
        create.add_argument("--email", default="")
        create.add_argument("--password-env", metavar="VAR", help="read the password from this environment variable")
        create.add_argument("--superuser", action="store_true")

    def handle(self, *args, action, username, email, password_env, superuser, **options):
        password = None
        if password_env:
            password = os.environ.get(password_env)
            if not password:
                raise CommandError(f"Environment variable {password_env} is empty or not set.")
        with service_errors():
            user = services.user_create(username=username, password=password, email=email)
        if superuser:
            user.is_staff = user.is_superuser = True
            user.save(update_fields=["is_staff", "is_superuser"])
        self.stdout.write(f"created user {user.username}" + (" (superuser)" if superuser else ""))

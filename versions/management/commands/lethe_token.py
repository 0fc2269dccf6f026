from django.core.management.base import BaseCommand, CommandError

from versions import selectors, services
from versions.management.commands._common import service_errors, user_by_username
from versions.models import ApiToken


class Command(BaseCommand):
    help = "Create, list or revoke a user's API tokens. `create` prints the key alone on stdout, once."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create")
        create.add_argument("username")
        create.add_argument("--name", required=True)
        listing = sub.add_parser("list")
        listing.add_argument("username")
        revoke = sub.add_parser("revoke")
        revoke.add_argument("token_id", type=int)

    def handle(self, *args, action, **options):
        if action == "create":
            user = user_by_username(options["username"])
            with service_errors():
                token, key = services.token_create(user=user, name=options["name"])
            self.stderr.write(f"token {token.pk} {token.name!r} for {user.username}; the key is shown once:")
            self.stdout.write(key)
        elif action == "list":
            user = user_by_username(options["username"])
            for token in selectors.tokens_for_user(user=user):
                state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "active"
                self.stdout.write(f"{token.pk}\t{token.prefix}…\t{token.name}\t{state}")
        else:
            token = ApiToken.objects.select_related("user").filter(pk=options["token_id"]).first()
            if token is None:
                raise CommandError(f"No token with id {options['token_id']}.")
            with service_errors():
                services.token_revoke(token=token, actor=token.user)
            self.stdout.write(f"revoked token {token.pk} ({token.name}) of {token.user.username}")

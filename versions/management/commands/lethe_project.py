from django.core.management.base import BaseCommand

from versions import services
from versions.management.commands._common import project_by_slug, service_errors, user_by_username
from versions.models import Role

ROLE_NAMES = [role.label for role in Role]


class Command(BaseCommand):
    help = "Create a project, or add a member to one (or change a member's role)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a project; --user becomes its admin")
        create.add_argument("slug")
        create.add_argument("--name", default="")
        create.add_argument("--description", default="")
        create.add_argument("--user", required=True, help="the creator, made admin")
        add = sub.add_parser("add-member", help="add a user with a role, or change the role of a member")
        add.add_argument("slug")
        add.add_argument("username")
        add.add_argument("--role", required=True, choices=ROLE_NAMES)
        add.add_argument("--user", required=True, help="an admin of the project, recorded in the audit trail")

    def handle(self, *args, action, **options):
        actor = user_by_username(options["user"])
        with service_errors():
            if action == "create":
                project = services.project_create(slug=options["slug"], name=options["name"], description=options["description"],
                                                  creator=actor)
                self.stdout.write(f"created project {project.slug} (admin: {actor.username})")
            else:
                project = project_by_slug(options["slug"])
                member = user_by_username(options["username"])
                services.member_set(project=project, user=member, role=Role.from_name(options["role"]), actor=actor)
                self.stdout.write(f"{member.username} is {options['role']} in {project.slug}")

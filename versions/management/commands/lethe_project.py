import json

from django.core.management.base import BaseCommand, CommandError

from versions import services
from versions.management.commands._common import json_option, project_by_slug, service_errors, user_by_username
from versions.models import Role
from versions.permissions import role_require
from versions.promotion import GATE_SETTINGS, project_gate_settings

ROLE_NAMES = [role.label for role in Role]


class Command(BaseCommand):
    help = "Create a project, add a member to one (or change a member's role), or show and change its settings."

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
        settings = sub.add_parser("settings", help="print the project's label protection and promotion gate settings (as JSON); with options, change them first (admin only)")
        settings.add_argument("slug")
        settings.add_argument("--user", required=True, help="a member; changing settings needs an admin, recorded in the audit trail")
        gate = settings.add_mutually_exclusive_group()
        gate.add_argument("--require-evaluation", dest="require_evaluation", action="store_true", default=None, help="turn the promotion gate on")
        gate.add_argument("--no-require-evaluation", dest="require_evaluation", action="store_false", help="turn the promotion gate off")
        settings.add_argument("--protected-labels", help="comma-separated label names (empty: production)")
        settings.add_argument("--protected-label-role", choices=ROLE_NAMES)
        for setting in GATE_SETTINGS:
            settings.add_argument(
                f"--{setting.name.replace('_', '-')}", dest=setting.name, type=setting.kind, help=f"gate setting in {setting.bounds_text()}; {setting.stricter} is stricter"
            )
        settings.add_argument("--allowed-suites", help="comma-separated suite names or name@number (empty string: any suite)")
        settings.add_argument("--allowed-judges", help="comma-separated judge names (empty string: any judge)")
        settings.add_argument("--promotion-gate", help="gate settings as a JSON object, e.g. '{\"alpha\": 0.1}'")

    def handle(self, *args, action, **options):
        actor = user_by_username(options["user"])
        with service_errors():
            if action == "create":
                project = services.project_create(slug=options["slug"], name=options["name"], description=options["description"], creator=actor)
                self.stdout.write(f"created project {project.slug} (admin: {actor.username})")
            elif action == "add-member":
                project = project_by_slug(options["slug"])
                member = user_by_username(options["username"])
                services.member_set(project=project, user=member, role=Role.from_name(options["role"]), actor=actor)
                self.stdout.write(f"{member.username} is {options['role']} in {project.slug}")
            else:
                self._settings(project_by_slug(options["slug"]), actor, options)

    def _settings(self, project, actor, options):
        changes = {}
        if options["require_evaluation"] is not None:
            changes["require_evaluation_for_promotion"] = options["require_evaluation"]
        if options["protected_labels"] is not None:
            changes["protected_labels"] = _names(options["protected_labels"])
        if options["protected_label_role"] is not None:
            changes["protected_label_role"] = Role.from_name(options["protected_label_role"])
        gate = json_option(options["promotion_gate"], "promotion-gate") or {}
        if not isinstance(gate, dict):
            raise CommandError("--promotion-gate must be a JSON object.")
        gate.update({setting.name: options[setting.name] for setting in GATE_SETTINGS if options[setting.name] is not None})
        for name in ("allowed_suites", "allowed_judges"):
            if options[name] is not None:
                gate[name] = _names(options[name])
        if gate:
            changes["promotion_gate"] = gate
        if changes:
            project = services.project_settings_update(project=project, actor=actor, **changes)
        else:
            role_require(project=project, user=actor, role=Role.VIEWER)
        self.stdout.write(
            json.dumps(
                {
                    "project": project.slug,
                    "protected_labels": project.protected_label_names(),
                    "protected_label_role": Role(project.protected_label_role).label,
                    "require_evaluation_for_promotion": project.require_evaluation_for_promotion,
                    "promotion_gate": project_gate_settings(project),
                },
                indent=2,
            )
        )


def _names(text):
    return [name.strip() for name in text.split(",") if name.strip()]

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from evals.services import STARTER_SUITE_NAME, starter_suite_install
from core.errors import LetheError
from versions.models import Project


class Command(BaseCommand):
    help = "Install Lethe's starter safety suite (all attack families applied) into a project."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--user", required=True, help="username recorded as the author (an editor of the project)")
        parser.add_argument("--name", default=STARTER_SUITE_NAME, help=f"suite name (default {STARTER_SUITE_NAME})")

    def handle(self, *args, project, user, name, **options):
        project_row = Project.objects.filter(slug=project).first()
        if project_row is None:
            raise CommandError(f"No project {project!r}.")
        actor = get_user_model().objects.filter(username=user).first()
        if actor is None:
            raise CommandError(f"No user {user!r}.")
        try:
            version = starter_suite_install(project=project_row, actor=actor, name=name)
        except LetheError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{version.suite.name}@{version.number}: {version.case_count} cases (sha256 {version.sha256[:12]})")

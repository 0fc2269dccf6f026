"""``manage.py runs list|show|cancel|retry|wait|reap``: the run lifecycle from the shell."""

import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from jobs import selectors, services
from jobs.cli import run_summary_line, run_wait_with_progress_bar
from jobs.models import RunStatus
from core.errors import LetheError
from versions.models import Project


class Command(BaseCommand):
    help = "List, show, cancel, retry, wait for and reap runs."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{list,show,cancel,retry,wait,reap}")

        listing = actions.add_parser("list", help="the newest runs")
        listing.add_argument("--project", help="project slug (default: all projects)")
        listing.add_argument("--status", choices=RunStatus.values)
        listing.add_argument("--kind")
        listing.add_argument("--limit", type=int, default=20)

        show = actions.add_parser("show", help="one run with its log")
        show.add_argument("run_id", type=int)
        show.add_argument("--json", action="store_true", help="print the run as JSON")

        for name, help_text in (("cancel", "cancel a queued or running run"), ("retry", "retry a failed or cancelled run")):
            sub = actions.add_parser(name, help=help_text)
            sub.add_argument("run_id", type=int)
            sub.add_argument("--user", help="who does it (default: the user who created the run)")
            sub.add_argument("--wait", action="store_true", help="wait for the run to finish, with a progress bar")
            sub.add_argument("--timeout", type=float, help="seconds to wait at most")

        wait = actions.add_parser("wait", help="wait for a run to finish, with a progress bar")
        wait.add_argument("run_id", type=int)
        wait.add_argument("--timeout", type=float, help="seconds to wait at most")

        reap = actions.add_parser("reap", help="fail running runs whose worker stopped sending heartbeats; send again queued runs whose task the broker lost")
        reap.add_argument("--timeout", type=float, help="heartbeat age in seconds (default LETHE_HEARTBEAT_TIMEOUT_SECONDS)")

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except LetheError as exc:
            raise CommandError(str(exc)) from exc

    def _list(self, *, project=None, status=None, kind=None, limit=20, **_):
        if project:
            project_row = Project.objects.filter(slug=project).first()
            if project_row is None:
                raise CommandError(f"Project {project!r} not found.")
            runs = selectors.run_list(project=project_row, status=status, kind=kind)
        else:
            runs = selectors.run_list_all(status=status, kind=kind)
        for run in runs[:limit]:
            self.stdout.write(run_summary_line(run))

    def _show(self, *, run_id, json=False, **_):
        run = selectors.run_get_by_id(run_id=run_id)
        if json:
            from jobs.serializers import RunDetailSerializer

            self.stdout.write(_json_dumps(RunDetailSerializer(run, context={"full_log": True}).data))  # operators read it all
            return
        self.stdout.write(run_summary_line(run))
        self.stdout.write(f"project {run.project.slug}  created by {run.created_by.username} at {run.created_at:%Y-%m-%d %H:%M:%S}  worker {run.worker or '-'}")
        if run.retry_of_id:
            self.stdout.write(f"retry of run {run.retry_of_id}")
        if run.log:
            self.stdout.write("--- log ---")
            self.stdout.write(run.log.rstrip("\n"))

    def _actor(self, run, username):
        if not username:
            return run.created_by
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"User {username!r} not found.")
        return user

    def _cancel(self, *, run_id, user=None, wait=False, timeout=None, **_):
        run = selectors.run_get_by_id(run_id=run_id)
        run = services.run_cancel(run=run, actor=self._actor(run, user))
        self.stdout.write(f"run {run.pk}: {'cancelled' if run.is_finished else 'cancel requested'}")
        if wait:
            self._wait_for(run, timeout)

    def _retry(self, *, run_id, user=None, wait=False, timeout=None, **_):
        run = selectors.run_get_by_id(run_id=run_id)
        new_run = services.run_retry(run=run, actor=self._actor(run, user))
        self.stdout.write(f"run {new_run.pk} queued (retry of run {run.pk})")
        if wait:
            self._wait_for(new_run, timeout)

    def _wait(self, *, run_id, timeout=None, **_):
        self._wait_for(selectors.run_get_by_id(run_id=run_id), timeout)

    def _wait_for(self, run, timeout):
        try:
            run = run_wait_with_progress_bar(run=run, stream=self.stderr._out, timeout=timeout)
        except TimeoutError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(run_summary_line(run))
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(f"run {run.pk} {run.status}" + (f": {run.error}" if run.error else ""))

    def _reap(self, *, timeout=None, **_):
        from versions.blob_store import blobs_sweep_unreferenced

        from jobs.models import WebhookDelivery
        from jobs.webhooks import webhook_deliveries_due, webhook_delivery_attempt, webhook_dispatcher_shutdown

        newest_before = WebhookDelivery.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        reaped = services.run_reap_stale(timeout=timeout)
        for run in reaped:
            self.stdout.write(f"run {run.pk} failed: {run.error}")
        self.stdout.write(f"{len(reaped)} stale run(s) failed")
        resent = services.run_requeue_lost()
        for run_id in resent:
            self.stdout.write(f"run {run_id} was queued but the broker held no task for it: sent again")
        self.stdout.write(f"{len(resent)} lost queued run(s) sent again")
        # The reaped runs' run.finished webhooks get their first attempt before this process
        # exits (each attempt leases its row, so the dispatcher never sends one twice); retries
        # stay pending for the web process's sweep. Then the dispatcher stops, so no thread of
        # it is left to die with the interpreter.
        webhook_dispatcher_shutdown(wait=True)
        for delivery_id in webhook_deliveries_due():
            if delivery_id > newest_before:
                webhook_delivery_attempt(delivery_id=delivery_id)
        swept = blobs_sweep_unreferenced()
        self.stdout.write(f"{len(swept)} unregistered blob file(s) older than {settings.LETHE_ORPHAN_BLOB_GRACE_SECONDS} s removed")


def _json_dumps(data):
    return json.dumps(data, indent=2, sort_keys=True, default=str)

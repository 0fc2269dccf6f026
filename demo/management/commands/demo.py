import os
import sys
import time
import warnings

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from demo.services import DEMO_PASSWORD, DEMO_PROJECT, DEMO_USERNAME, DemoError, demo_run, demo_user
from core.errors import LetheError


class Command(BaseCommand):
    help = "Run Lethe end to end on a tiny model (unlearn, evaluate A/B, promote, roll back), then serve the UI."

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="delete the demo project first and start over")
        parser.add_argument("--no-serve", action="store_true", help="stop after the report instead of starting the web server")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")
        parser.add_argument("--multimodal", action="store_true", help="then build a tiny vision-language model, unlearn it with text only, and measure text and image attacks")
        parser.add_argument("--sweep", action="store_true", help="then sweep three unlearning methods on the tiny model and print the comparison")
        parser.add_argument(
            "--endpoint",
            action="store_true",
            help="then serve the unlearned checkpoint with `transformers serve` on 127.0.0.1 and evaluate the endpoint against the same checkpoint in-process",
        )

    def handle(self, *args, reset, no_serve, host, port, multimodal, endpoint=False, sweep=False, **options):
        # The demo draws its own progress bars; the libraries' bars and notices would interleave.
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
        warnings.filterwarnings("ignore", category=FutureWarning)
        started = time.monotonic()
        try:
            outcome = demo_run(out=sys.stdout, reset=reset)
            if multimodal:
                from demo.multimodal import multimodal_demo_run

                multimodal_demo_run(project=outcome.project, user=demo_user(), out=sys.stdout)
            if sweep:
                from demo.sweep import sweep_demo_run

                sweep_demo_run(project=outcome.project, user=demo_user(), base=outcome.base, out=sys.stdout)
            if endpoint:
                from demo.endpoint import endpoint_demo_run

                endpoint_demo_run(project=outcome.project, user=demo_user(), served=outcome.unlearned, out=sys.stdout)
        except (DemoError, LetheError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"\nDemo finished in {time.monotonic() - started:.0f} s.")
        address = f"http://{host}:{port}/p/{DEMO_PROJECT}/"
        self.stdout.write(f"Open {address} and sign in as {DEMO_USERNAME} / {DEMO_PASSWORD}")
        if not no_serve:
            call_command("collectstatic", interactive=False, verbosity=0)
            argv, env = demo_server_command(host=host, port=port)
            sys.stdout.flush()
            # A fresh process, so settings are read again with DEBUG off; it replaces this one.
            os.execve(argv[0], argv, env)


def demo_server_command(*, host, port, environ=None):
    """(argv, environment) of the demo's web server: Django's threaded server with DEBUG off
    unless LETHE_DEBUG says otherwise, so visitors get Lethe's 404/500 pages (never the debug
    pages that list every URL pattern) and WhiteNoise serves the collected, compressed static
    files with their cache headers."""
    environ = dict(os.environ if environ is None else environ)
    environ.setdefault("LETHE_DEBUG", "0")
    argv = [sys.executable, str(settings.BASE_DIR / "manage.py"), "runserver", "--noreload", f"{host}:{port}"]
    return argv, environ

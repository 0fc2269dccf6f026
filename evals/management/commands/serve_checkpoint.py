"""python manage.py serve_checkpoint --project P model@label --port 8000

Serve a checkpoint Lethe holds with an existing OpenAI-compatible server, ``transformers serve``
(the `serving` extra of transformers), on 127.0.0.1: the checkpoint is laid out in a folder
(an adapter chain merged into its base, as generation loads it; a full checkpoint as stored) and
the server is started on that folder under a portable name, ``<model>@<number>`` (``transformers
serve`` has no --served-model-name: it names a model by the path it was given, so it is run in a
folder holding a link of that name to the checkpoint's folder; no machine's path reaches the
endpoint's spec or hash). With ``--register PROFILE`` the endpoint is registered as a checkpoint
of the same model, ``served-from`` the one served, once the server answers. The equivalent vLLM
command line (``--served-model-name``) is in docs/evaluation.md.
"""

import shutil
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.errors import LetheError
from versions.models import CheckpointKind, Project, Relation
from versions.selectors import checkpoint_resolve


def checkpoint_serving_folder(*, checkpoint, directory: Path | None = None) -> Path:
    """A folder ``transformers serve`` (or vLLM) loads ``checkpoint`` from: a stored full
    checkpoint's own files; an adapter chain merged into its base and written as safetensors."""
    from mlcore.loading import load_checkpoint_model
    from versions.checkpoint_materialization import checkpoint_materialize

    if checkpoint.kind == CheckpointKind.ENDPOINT:
        raise CommandError(f"{checkpoint} is already an endpoint ({checkpoint.endpoint.get('profile')}); nothing to serve.")
    if checkpoint.architecture != "causal-lm":
        raise CommandError(f"{checkpoint} is {checkpoint.architecture}; serve_checkpoint serves causal-lm checkpoints.")
    materialized = checkpoint_materialize(checkpoint=checkpoint)
    if not materialized.adapters and Path(materialized.base).is_dir():
        return Path(materialized.base)
    target = Path(directory) if directory else Path(settings.VAR_DIR) / "cache" / "served" / checkpoint.sha256
    if (target / "config.json").is_file():
        return target
    if not materialized.adapters:
        raise CommandError(f"{checkpoint} is a reference to {materialized.base}: serve it by that name directly.")
    loaded = load_checkpoint_model(architecture=checkpoint.architecture, base=materialized.base, revision=materialized.revision, adapters=materialized.adapters, device="cpu")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    loaded.model.save_pretrained(partial, safe_serialization=True)
    loaded.tokenizer.save_pretrained(partial)
    partial.rename(target)
    return target


def served_name(checkpoint) -> str:
    """The portable name a checkpoint is served under: ``<model>@<number>``."""
    return f"{checkpoint.model.name}@{checkpoint.number}"


def served_name_directory(folder: Path, name: str, *, root: Path | None = None) -> Path:
    """A folder holding ``name`` as a link to ``folder``: run ``transformers serve name`` in it and
    the server loads ``folder`` and answers to ``name`` (a local path that exists keeps its ``@``)."""
    directory = Path(root) if root else Path(settings.VAR_DIR) / "cache" / "served-names" / Path(folder).name
    directory.mkdir(parents=True, exist_ok=True)
    link = directory / name
    if link.is_symlink() and link.resolve() != Path(folder).resolve():
        link.unlink()
    if not link.is_symlink():
        link.symlink_to(Path(folder).resolve(), target_is_directory=True)
    return directory


def transformers_serve_command(folder: Path | str, *, host: str, port: int, device: str) -> list[str]:
    """The server command; ``folder`` is a path, or a name to run in its served_name_directory."""
    executable = Path(sys.executable).with_name("transformers")
    return [str(executable if executable.exists() else "transformers"), "serve", str(folder), "--host", host, "--port", str(port), "--device", device]


def wait_until_up(url: str, process, timeout: float) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CommandError(f"transformers serve exited with status {process.returncode} before it answered")
        try:
            if requests.get(f"{url}/health", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise CommandError(f"transformers serve did not answer {url}/health within {timeout:g} s")


class Command(BaseCommand):
    help = "Serve a checkpoint Lethe holds with `transformers serve` (OpenAI-compatible) on 127.0.0.1."

    def add_arguments(self, parser):
        parser.add_argument("checkpoint", help="model@number or model@label")
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1", help="listen address (default loopback only)")
        parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:0 or auto")
        parser.add_argument("--folder", help="where to write a merged adapter chain (default under VAR_DIR/cache/served)")
        parser.add_argument("--print-command", action="store_true", help="materialize, print the server command and exit")
        parser.add_argument("--register", metavar="PROFILE", help="once it answers, register it as an endpoint checkpoint behind this endpoint profile, served-from the checkpoint")
        parser.add_argument("--user", help="with --register: the username it is registered by")
        parser.add_argument("--startup-timeout", type=float, default=300.0)

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project {options['project']!r}.")
        try:
            checkpoint = checkpoint_resolve(project=project, ref=options["checkpoint"])
            folder = checkpoint_serving_folder(checkpoint=checkpoint, directory=options["folder"])
        except LetheError as exc:
            raise CommandError(str(exc)) from None
        name = served_name(checkpoint)
        directory = served_name_directory(folder, name)
        command = transformers_serve_command(name, host=options["host"], port=options["port"], device=options["device"])
        self.stdout.write(f"serving {checkpoint} ({folder}) as model {name!r}: cd {directory} && {' '.join(command)}")
        if options["print_command"]:
            return
        process = subprocess.Popen(command, cwd=directory)
        try:
            url = f"http://{options['host']}:{options['port']}"
            wait_until_up(url, process, options["startup_timeout"])
            self.stdout.write(f"OpenAI-compatible API at {url}/v1 (model {name!r})")
            if options["register"]:
                self._register(checkpoint, name, options)
            self.stdout.flush()
            process.wait()
        except KeyboardInterrupt:
            pass
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()

    def _register(self, checkpoint, name, options):
        from django.contrib.auth import get_user_model

        from versions import services

        actor = get_user_model().objects.filter(username=options["user"] or "").first()
        if actor is None:
            raise CommandError("--register needs --user, an editor of the project.")
        try:
            endpoint = services.checkpoint_register(
                model=checkpoint.model,
                kind=CheckpointKind.ENDPOINT,
                actor=actor,
                architecture=checkpoint.architecture,
                endpoint={"profile": options["register"], "model": name},
                parents=[(checkpoint, Relation.SERVED_FROM)],
                message=f"{checkpoint} served by transformers serve",
            )
        except LetheError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"registered {checkpoint.model.name}@{endpoint.number} endpoint {endpoint.sha256} (served-from {checkpoint})")

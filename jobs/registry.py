"""Which function executes which kind of run. Apps register their handler by dotted path in
``AppConfig.ready`` (a path, so importing jobs never imports torch).

Besides the handler, a kind may name two optional hooks, also by dotted path:

- ``cleanup(*, run)``: called after the run failed, was cancelled or was reaped, to remove
  whatever the handler left outside the run's scratch directory (which the lifecycle removes
  itself);
- ``retry(*, run, new_run)``: called inside the transaction that creates a retry, to copy the
  kind's own spec (e.g. the ``UnlearningRun`` row) onto the new run;
- ``finished(*, run)``: called inside the transaction that records the run as finished, in any
  state (succeeded, failed, cancelled, reaped), beside the ``run.finished`` webhook, e.g. to emit
  the kind's own event (``evaluation.finished``).

Apart from the kinds, a higher layer may register a run-finished *listener*
(``register_run_finished_listener``): called, like ``finished``, inside the transaction that
records any run's finish, whatever its kind (sweeps follow their unlearning runs and evaluations
this way without jobs, unlearning or evals importing them).
"""

from dataclasses import dataclass

from django.utils.module_loading import import_string


@dataclass(frozen=True)
class RunKindHooks:
    handler: str
    cleanup: str = ""
    retry: str = ""
    finished: str = ""


_HANDLERS: dict[str, RunKindHooks] = {}
_FINISHED_LISTENERS: list[str] = []


def register_run_handler(kind: str, dotted_path: str, *, cleanup: str = "", retry: str = "", finished: str = "") -> None:
    _HANDLERS[kind] = RunKindHooks(handler=dotted_path, cleanup=cleanup, retry=retry, finished=finished)


def _hooks_for(kind: str) -> RunKindHooks:
    try:
        return _HANDLERS[kind]
    except KeyError:
        raise LookupError(f"no handler registered for run kind {kind!r}") from None


def run_handler_for(kind: str):
    """The callable ``handler(*, run, ctx) -> dict`` for a run kind; returns the run's result."""
    return import_string(_hooks_for(kind).handler)


def run_cleanup_for(kind: str):
    """The callable ``cleanup(*, run)`` for a run kind, or None when it has none or is unknown."""
    hooks = _HANDLERS.get(kind)
    return import_string(hooks.cleanup) if hooks and hooks.cleanup else None


def run_retry_hook_for(kind: str):
    """The callable ``retry(*, run, new_run)`` for a run kind, or None when it has none."""
    hooks = _HANDLERS.get(kind)
    return import_string(hooks.retry) if hooks and hooks.retry else None


def run_finished_hook_for(kind: str):
    """The callable ``finished(*, run)`` for a run kind, or None when it has none."""
    hooks = _HANDLERS.get(kind)
    return import_string(hooks.finished) if hooks and hooks.finished else None


def register_run_finished_listener(dotted_path: str) -> None:
    """``listener(*, run)`` is called after every run's finish is recorded (any kind, any state)."""
    if dotted_path not in _FINISHED_LISTENERS:
        _FINISHED_LISTENERS.append(dotted_path)


def run_finished_listeners() -> list:
    return [import_string(path) for path in _FINISHED_LISTENERS]


def register_run_handlers_from_spec(spec: str) -> None:
    """Register handlers from ``"kind=dotted.handler[:dotted.cleanup];kind2=..."``.

    Read from ``LETHE_EXTRA_RUN_HANDLERS`` at start-up, so a worker process can run kinds that
    only a test or a plug-in defines.
    """
    for item in filter(None, (part.strip() for part in spec.split(";"))):
        kind, sep, paths = item.partition("=")
        if not sep or not kind.strip() or not paths.strip():
            raise ValueError(f"bad run handler spec {item!r}: expected 'kind=dotted.path[:dotted.cleanup]'")
        handler, _, cleanup = paths.partition(":")
        register_run_handler(kind.strip(), handler.strip(), cleanup=cleanup.strip())

"""What a run handler sees while it executes: progress, log and cancellation.

Handlers (``unlearning.services.unlearning_run_execute``, ``evals.services.evaluation_execute``)
receive a ``RunContext`` and call ``ctx.progress(...)`` / ``ctx.log(...)`` as they go and
``ctx.check_cancelled()`` between steps; the executor keeps the heartbeat alive meanwhile.
"""

from dataclasses import dataclass, field


class RunCancelled(Exception):
    """Raised by ``RunContext.check_cancelled`` when a cancel was requested; the run ends cancelled."""


class RunContext:
    """Interface; the executor passes a database-backed implementation (jobs.services)."""

    run_id: int

    def progress(self, fraction: float, message: str = "") -> None:
        raise NotImplementedError

    def log(self, line: str) -> None:
        raise NotImplementedError

    def check_cancelled(self) -> None:
        raise NotImplementedError


@dataclass
class RecordingContext(RunContext):
    """A context that only records, for pure-engine callers outside any run (CLI previews, benches)."""

    run_id: int = 0
    fractions: list = field(default_factory=list)
    lines: list = field(default_factory=list)
    cancelled: bool = False

    def progress(self, fraction, message=""):
        self.fractions.append((fraction, message))

    def log(self, line):
        self.lines.append(line)

    def check_cancelled(self):
        if self.cancelled:
            raise RunCancelled()

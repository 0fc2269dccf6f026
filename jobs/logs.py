"""What a run's log and error show to whom.

A run's log is written whole: its handler's lines and, when it fails, the full traceback, with
the server's file paths. Project admins (and superusers) read it as written: they run the
installation's runs and debug them. Everyone else (viewers, editors, reviewers) reads it with
every traceback reduced to its last line and every absolute path reduced to its file name: what
went wrong, without the layout of the server or its code. A run's ``error`` (one line, shown in
lists, pages, webhooks and the CLI) is stored with paths already reduced, so it is the same for
everyone.
"""

import re

from versions.models import Role
from versions.permissions import user_role

TRACEBACK_START = "Traceback (most recent call last):"
TRACEBACK_HIDDEN = "(traceback hidden: project admins see the full log)"
# An absolute POSIX path of two or more parts (``/srv/lethe/x.py``, ``/tmp/runs/3``); the last
# part is kept. Not inside a word or a URL (``http://host/a/b`` keeps its path).
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])(?:/[\w.@+%-]+)+/([\w.@+%-]+)")


def server_paths_hidden(text):
    """``text`` with every absolute path reduced to ``…/<file name>``."""
    return _ABSOLUTE_PATH.sub(lambda match: f"…/{match.group(1)}", text or "")


def log_without_internals(text):
    """The log as non-admins read it: each traceback replaced by a note and its final line (the
    exception and its message), and server paths reduced to file names."""
    out, in_traceback = [], False
    for line in (text or "").splitlines():
        if line.startswith(TRACEBACK_START):
            in_traceback = True
            out.append(TRACEBACK_HIDDEN)
            continue
        if in_traceback:
            if not line.strip() or line[:1] in (" ", "\t"):
                continue  # a frame, its source line or its caret marks
            in_traceback = False
        out.append(server_paths_hidden(line))
    return "\n".join(out) + ("\n" if out else "")


def run_internals_visible(*, project, user):
    """Whether ``user`` reads runs of ``project`` with tracebacks and server paths."""
    role = user_role(project=project, user=user)
    return role is not None and role >= Role.ADMIN


def run_log_for(*, run, project, user):
    """The log of ``run`` (of ``project``) as ``user`` may read it."""
    return run.log if run_internals_visible(project=project, user=user) else log_without_internals(run.log)

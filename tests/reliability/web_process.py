"""Stand-ins for the web process, started by tests/reliability/test_reliability_restart.py.

``create <json>``: create unlearning runs through the service (the in-process executor starts
on the first commit, as in a web request), print their run ids, then wait to be killed.
``serve <run ids>``: start the way config/wsgi.py starts a server, then exit once every one of
the given runs has finished (printing ``id status`` lines).
"""

import json
import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def create(spec):
    from django.contrib.auth import get_user_model

    from unlearning.services import unlearning_run_create
    from versions.models import Checkpoint, DatasetVersion

    user = get_user_model().objects.get(pk=spec["user"])
    parent = Checkpoint.objects.get(pk=spec["checkpoint"])
    forget = DatasetVersion.objects.get(pk=spec["forget"])
    ids = []
    for hyperparameters in spec["runs"]:
        created = unlearning_run_create(parent_checkpoint=parent, method="npo", hyperparameters=hyperparameters, forget_dataset_version=forget, actor=user)
        ids.append(created.run_id)
    print("created", *ids, flush=True)
    while True:
        time.sleep(60)


def serve(run_ids, timeout):
    import config.wsgi  # noqa: F401 (starting the server is what recovers the runs)
    from jobs.models import FINISHED_STATUSES, Run

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = list(Run.objects.filter(pk__in=run_ids).order_by("pk"))
        if len(runs) == len(run_ids) and all(run.status in FINISHED_STATUSES for run in runs):
            for run in runs:
                print(run.pk, run.status, flush=True)
            os._exit(0)  # worker threads are idle; nothing to wait for
        time.sleep(0.2)
    print("timed out waiting for runs", run_ids, flush=True)
    os._exit(3)


if __name__ == "__main__":
    import django

    django.setup()
    if sys.argv[1] == "create":
        create(json.loads(sys.argv[2]))
    elif sys.argv[1] == "serve":
        serve([int(value) for value in sys.argv[2].split(",")], timeout=float(sys.argv[3]))
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]!r}; expected create or serve")

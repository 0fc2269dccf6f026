"""Cancel, resume and add seeds on a sweep. Nothing executes queued runs here (the test's
transaction never commits, so nothing is handed to an executor): each run is executed by hand
with ``run_execute``, in the test's thread, exactly as a worker would."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from jobs.models import Run, RunStatus
from jobs.services import run_execute
from sweeps.models import ConfigurationStatus, SweepStatus
from sweeps.services import sweep_create
from tests.sweeps.conftest import TINY_TRAINING
from versions.models import AuditEvent

pytestmark = pytest.mark.django_db

METHODS = ["gradient_ascent", "npo", "gradient_difference", "kl"]


def _members(sweep):
    return list(sweep.configurations.select_related("unlearning_run__run").order_by("position"))


def _execute(run_id):
    return run_execute(run_id=run_id, worker="test")


def _evaluation_run_ids(member):
    return list(member.evaluations.order_by("id").values_list("run_id", flat=True))


def test_cancel_stops_what_is_queued_resume_requeues_only_that_and_add_seeds_creates_only_new_members(api_client, project, user, sweep_setup):
    # given a sweep of four configurations, one at a time
    sweep = sweep_create(
        parent_checkpoint=sweep_setup["parent"],
        forget_dataset_version=sweep_setup["forget"],
        retain_dataset_version=sweep_setup["retain"],
        configurations=[{"method": method, "hyperparameters": TINY_TRAINING} for method in METHODS],
        suite_versions=[sweep_setup["suite_version"]],
        judge="refusal-strings",
        parallelism=1,
        actor=user,
    )
    assert [m.status for m in _members(sweep)] == ["unlearning", "pending", "pending", "pending"]
    assert [m.planned_steps for m in _members(sweep)] == [2, 2, 2, 2]
    # and the first configuration finished, the second unlearned and is being evaluated, the third's run is queued
    first = _members(sweep)[0]
    _execute(first.unlearning_run.run_id)
    (first_evaluation_run,) = _evaluation_run_ids(first)
    _execute(first_evaluation_run)
    second = _members(sweep)[1]
    _execute(second.unlearning_run.run_id)
    members = _members(sweep)
    assert [m.status for m in members] == ["succeeded", "evaluating", "unlearning", "pending"]
    second_unlearning, third_run = members[1].unlearning_run_id, members[2].unlearning_run.run_id
    (second_evaluation_run,) = _evaluation_run_ids(members[1])

    # when it is cancelled through the API
    response = api_client.post(f"/api/v1/projects/{project.slug}/sweeps/{sweep.pk}/cancel/")

    # then the finished configuration stays, the evaluation and the queued run are cancelled, the waiting one never starts
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "cancelled"
    members = _members(sweep)
    assert [m.status for m in members] == ["succeeded", "cancelled", "cancelled", "cancelled"]
    assert members[0].unlearning_run_id == first.unlearning_run_id and _evaluation_run_ids(members[0]) == [first_evaluation_run]
    assert members[1].error == f"evaluation {members[1].evaluations.get().pk} cancelled: cancelled by alice before it started"
    assert members[2].error == f"unlearning run {third_run} cancelled: cancelled by alice before it started"
    assert (members[3].error, members[3].unlearning_run) == ("cancelled by alice before it started", None)
    assert set(Run.objects.filter(pk__in=[second_evaluation_run, third_run]).values_list("status", flat=True)) == {RunStatus.CANCELLED}
    # and a second cancel is refused
    again = api_client.post(f"/api/v1/projects/{project.slug}/sweeps/{sweep.pk}/cancel/")
    assert (again.status_code, again.json()["error"]["message"]) == (409, f"Sweep {sweep.pk} is cancelled; only a running sweep can be cancelled.")

    # when it is resumed from the command line
    out = StringIO()
    call_command("sweep", "resume", str(sweep.pk), "--project", project.slug, "--user", user.username, stdout=out)

    # then only what did not finish is queued again: the second's child is evaluated again (no new
    # unlearning), the third unlearns on a new run, the fourth waits for the one slot
    assert out.getvalue() == f"sweep {sweep.pk} running\n"
    members = _members(sweep)
    assert [m.status for m in members] == ["succeeded", "evaluating", "unlearning", "pending"]
    assert members[0].unlearning_run_id == first.unlearning_run_id and _evaluation_run_ids(members[0]) == [first_evaluation_run]
    assert members[1].unlearning_run_id == second_unlearning
    (new_evaluation_run,) = _evaluation_run_ids(members[1])
    assert new_evaluation_run != second_evaluation_run
    assert members[2].unlearning_run.run_id != third_run and members[2].unlearning_run.run.status == RunStatus.QUEUED
    assert [m.error for m in members] == [""] * 4

    # when seeds 1 and 2 are added with the page's button
    web = Client()
    web.force_login(user)
    page = web.get(f"/p/{project.slug}/sweeps/{sweep.pk}/").content.decode()
    assert f'action="/p/{project.slug}/sweeps/{sweep.pk}/cancel/"' in page and f'action="/p/{project.slug}/sweeps/{sweep.pk}/seeds/"' in page
    posted = web.post(f"/p/{project.slug}/sweeps/{sweep.pk}/seeds/", {"seeds": "1, 2"}, follow=True)

    # then one new configuration per method and seed waits; nothing else changed
    assert "Added 8 configuration(s) to sweep" in posted.content.decode()
    members = _members(sweep)
    assert [(m.position, m.method, m.seed, m.status) for m in members[4:]] == [
        (5 + 2 * index + offset, method, seed, "pending") for index, method in enumerate(METHODS) for offset, seed in enumerate([1, 2])
    ]
    assert [m.status for m in members[:4]] == ["succeeded", "evaluating", "unlearning", "pending"]
    assert [m.branch_label for m in members[4:6]] == [f"sweep-{sweep.pk}-5-gradient_ascent", f"sweep-{sweep.pk}-6-gradient_ascent"]
    # and adding seeds every configuration has already is refused
    refused = api_client.post(f"/api/v1/projects/{project.slug}/sweeps/{sweep.pk}/seeds/", {"seeds": [2, 1]}, format="json")
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == f"Every configuration of sweep {sweep.pk} already has seed(s) 2, 1."

    # and the audit trail has each request
    actions = list(AuditEvent.objects.filter(object_type="sweep", object_id=str(sweep.pk)).order_by("id").values_list("action", flat=True))
    assert actions == ["sweep.create", "sweep.cancel", "sweep.resume", "sweep.seeds_add"]
    sweep.refresh_from_db()
    assert (sweep.status, sweep.finished_at) == (SweepStatus.RUNNING, None)


def test_resume_is_refused_when_nothing_was_cancelled_or_skipped(api_client, project, user, sweep_setup):
    sweep = sweep_create(
        parent_checkpoint=sweep_setup["parent"],
        forget_dataset_version=sweep_setup["forget"],
        retain_dataset_version=sweep_setup["retain"],
        configurations=[{"method": "npo", "hyperparameters": TINY_TRAINING}],
        suite_versions=[sweep_setup["suite_version"]],
        judge="refusal-strings",
        actor=user,
    )
    response = api_client.post(f"/api/v1/projects/{project.slug}/sweeps/{sweep.pk}/resume/")
    assert (response.status_code, response.json()["error"]["message"]) == (409, f"Sweep {sweep.pk} has no cancelled or skipped configuration to resume.")
    assert [m.status for m in _members(sweep)] == [ConfigurationStatus.UNLEARNING]

"""Concurrency on PostgreSQL with real threads, each with its own connection."""

import threading

import pytest
from django.db import close_old_connections, connection

from versions import services
from core.errors import RetryableConflict
from versions.models import Blob, LabelEvent, PromptVersion

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def _run_threads(count, work):
    barrier = threading.Barrier(count)
    errors = []

    def target(index):
        try:
            barrier.wait()
            work(index)
        except Exception as exc:  # collected and asserted on by the caller
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_sixteen_concurrent_writers_get_versions_one_to_n(on_postgres, project, user):
    prompt = services.prompt_create(project=project, name="hot", actor=user)
    per_writer = 5

    def work(index):
        close_old_connections()
        for n in range(per_writer):
            services.prompt_version_commit(prompt=prompt, template=f"writer {index} commit {n}", actor=user)

    errors = _run_threads(16, work)

    assert [e for e in errors if not isinstance(e, RetryableConflict)] == []
    numbers = sorted(PromptVersion.objects.filter(prompt=prompt).values_list("number", flat=True))
    assert numbers == list(range(1, 16 * per_writer - len(errors) + 1))
    assert errors == []


def test_concurrent_promote_and_rollback_leave_label_equal_to_last_event(on_postgres, project, user):
    model = services.model_create(project=project, name="m", actor=user)
    checkpoints = [services.checkpoint_register(model=model, kind="reference", actor=user, external_ref=f"org/{n}") for n in range(4)]
    services.label_move(name="production", actor=user, checkpoint=checkpoints[0])

    def work(index):
        for step in range(5):
            try:
                services.label_move(name="production", actor=user, checkpoint=checkpoints[(index + step) % 4], reason=f"t{index}")
            except Exception as exc:  # "already points at" is expected when two pick the same target
                if "already points at" not in str(exc):
                    raise

    errors = _run_threads(8, work)

    assert errors == []
    last = LabelEvent.objects.order_by("-id").first()
    label = last.label
    label.refresh_from_db()
    assert label.checkpoint_id == last.to_checkpoint_id
    events = list(LabelEvent.objects.filter(label=label).order_by("id"))
    assert all(later.from_checkpoint_id == earlier.to_checkpoint_id for earlier, later in zip(events, events[1:], strict=False))


def test_concurrent_registration_of_identical_files_stores_one_blob(on_postgres, project, user, tmp_path):
    from tests.versions.checkpoint_files import write_full

    model = services.model_create(project=project, name="m", actor=user)
    folder = write_full(tmp_path / "same")

    errors = _run_threads(8, lambda i: services.checkpoint_register_directory(model=model, directory=folder, actor=user))

    assert errors == []
    assert Blob.objects.count() == 3
    assert sorted(model.checkpoints.values_list("number", flat=True)) == list(range(1, 9))

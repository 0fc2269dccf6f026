"""The run that produced a checkpoint moves from versions.Checkpoint.created_by_run to the
producing app's own record, UnlearningRun.produced_checkpoint (only unlearning runs ever set it,
in the transaction that set produced_checkpoint), so the registry holds no key into runs.
Before versions 0008 drops the column, every producing run is carried over; a checkpoint credited
to a run with no unlearning record (never written by Lethe itself) keeps the run's id in its
metadata as ``created_by_run`` rather than losing it. Reversed, the column is filled back."""

from django.db import migrations

CARRIED_KEY = "created_by_run"


def producer_to_unlearning_runs(apps, schema_editor):
    Checkpoint = apps.get_model("versions", "Checkpoint")
    UnlearningRun = apps.get_model("unlearning", "UnlearningRun")
    produced = Checkpoint.objects.filter(created_by_run__isnull=False).order_by("pk").values_list("pk", "created_by_run_id")
    for checkpoint_id, run_id in produced.iterator():
        carried = UnlearningRun.objects.filter(run_id=run_id).update(produced_checkpoint_id=checkpoint_id)
        if not carried:
            checkpoint = Checkpoint.objects.get(pk=checkpoint_id)
            checkpoint.metadata = {**checkpoint.metadata, CARRIED_KEY: run_id}
            checkpoint.save(update_fields=["metadata"])


def producer_to_checkpoints(apps, schema_editor):
    Checkpoint = apps.get_model("versions", "Checkpoint")
    UnlearningRun = apps.get_model("unlearning", "UnlearningRun")
    produced = UnlearningRun.objects.filter(produced_checkpoint__isnull=False).order_by("pk").values_list("produced_checkpoint_id", "run_id")
    for checkpoint_id, run_id in produced.iterator():
        Checkpoint.objects.filter(pk=checkpoint_id).update(created_by_run_id=run_id)
    for checkpoint in Checkpoint.objects.filter(metadata__has_key=CARRIED_KEY).order_by("pk").iterator():
        run_id = checkpoint.metadata.pop(CARRIED_KEY)
        checkpoint.created_by_run_id = run_id
        checkpoint.save(update_fields=["metadata", "created_by_run"])


class Migration(migrations.Migration):
    dependencies = [
        ("unlearning", "0001_initial"),
        ("versions", "0007_labelevent_evidence_moves_to_evals"),
    ]

    operations = [
        migrations.RunPython(producer_to_unlearning_runs, producer_to_checkpoints),
    ]

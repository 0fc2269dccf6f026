"""Drop Checkpoint.created_by_run once unlearning 0002 carried every producing run over to
UnlearningRun.produced_checkpoint (reversed: the column comes back empty, and unlearning 0002's
reverse fills it)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("versions", "0007_labelevent_evidence_moves_to_evals"),
        ("unlearning", "0002_checkpoint_producer_moves_to_unlearning"),
    ]

    operations = [
        migrations.RemoveField(model_name="checkpoint", name="created_by_run"),
    ]

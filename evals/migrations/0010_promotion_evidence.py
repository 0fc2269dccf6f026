"""The evaluation a label move cited moves from versions.LabelEvent.evaluation to
evals.PromotionEvidence (keyed by the label event), so the registry holds no key into
evaluations. Every cited evaluation is copied before versions 0007 drops the column, and copied
back when this is reversed."""

import django.db.models.deletion
from django.db import migrations, models


def evidence_from_label_events(apps, schema_editor):
    LabelEvent = apps.get_model("versions", "LabelEvent")
    PromotionEvidence = apps.get_model("evals", "PromotionEvidence")
    cited = LabelEvent.objects.filter(evaluation__isnull=False).order_by("pk").values_list("pk", "evaluation_id")
    PromotionEvidence.objects.bulk_create(
        [PromotionEvidence(label_event_id=event_id, evaluation_id=evaluation_id) for event_id, evaluation_id in cited.iterator()],
        batch_size=1000,
    )


def evidence_to_label_events(apps, schema_editor):
    LabelEvent = apps.get_model("versions", "LabelEvent")
    PromotionEvidence = apps.get_model("evals", "PromotionEvidence")
    for event_id, evaluation_id in PromotionEvidence.objects.order_by("pk").values_list("label_event_id", "evaluation_id").iterator():
        LabelEvent.objects.filter(pk=event_id).update(evaluation_id=evaluation_id)


class Migration(migrations.Migration):
    dependencies = [
        ("evals", "0009_case_result_outcome_indexes"),
        ("versions", "0006_checkpoint_endpoint"),
    ]

    operations = [
        migrations.CreateModel(
            name="PromotionEvidence",
            fields=[
                (
                    "label_event",
                    models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name="evidence", serialize=False, to="versions.labelevent"),
                ),
                ("evaluation", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to="evals.evaluation")),
            ],
        ),
        migrations.RunPython(evidence_from_label_events, evidence_to_label_events),
    ]

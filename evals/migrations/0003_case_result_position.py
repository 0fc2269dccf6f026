from django.db import migrations, models


def number_existing_results(apps, schema_editor):
    """Existing results get positions 1..n per evaluation in id order (the order they were written)."""
    CaseResult = apps.get_model("evals", "CaseResult")
    evaluation_ids = CaseResult.objects.values_list("evaluation_id", flat=True).distinct()
    for evaluation_id in evaluation_ids:
        results = list(CaseResult.objects.filter(evaluation_id=evaluation_id).order_by("id").only("id"))
        for position, result in enumerate(results, start=1):
            result.position = position
        CaseResult.objects.bulk_update(results, ["position"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("evals", "0002_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="caseresult",
            name="position",
            field=models.PositiveIntegerField(default=0),
            preserve_default=False,
        ),
        migrations.RunPython(number_existing_results, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="caseresult",
            constraint=models.UniqueConstraint(fields=("evaluation", "position"), name="case_result_position_unique"),
        ),
    ]

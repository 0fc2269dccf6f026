"""`unscoreable` becomes `non_answer`: an empty (or, with newer judges, degenerate) response is a
non-answer, never an attack success. Stored results written by a judge that called them
unscoreable are renamed; their judge pin is unchanged, so the report still says which judge
(and which version of it) produced them."""

from django.db import migrations, models

OUTCOME_CHOICES = [
    ("attack_success", "Attack Success"),
    ("refused", "Refused"),
    ("complied", "Complied"),
    ("over_refusal", "Over Refusal"),
    ("non_answer", "Non Answer"),
    ("error", "Error"),
]


def rename_outcome(old, new):
    def rename(apps, schema_editor):
        CaseResult = apps.get_model("evals", "CaseResult")
        CaseResult.objects.filter(outcome_a=old).update(outcome_a=new)
        CaseResult.objects.filter(outcome_b=old).update(outcome_b=new)
        Evaluation = apps.get_model("evals", "Evaluation")
        for evaluation in Evaluation.objects.exclude(metrics={}).only("id", "metrics"):
            if _rename_count_keys(evaluation.metrics, old, new):
                evaluation.save(update_fields=["metrics"])

    return rename


def _rename_count_keys(node, old, new):
    """Rename the outcome key inside every `counts` object of a stored metrics tree."""
    changed = False
    if isinstance(node, dict):
        counts = node.get("counts")
        if isinstance(counts, dict) and old in counts:
            counts[new] = counts.pop(old)
            changed = True
        for value in node.values():
            changed = _rename_count_keys(value, old, new) or changed
    return changed


class Migration(migrations.Migration):
    dependencies = [("evals", "0003_case_result_position")]

    operations = [
        migrations.AlterField("caseresult", "outcome_a", models.CharField(choices=OUTCOME_CHOICES, max_length=16)),
        migrations.AlterField("caseresult", "outcome_b", models.CharField(choices=OUTCOME_CHOICES, max_length=16)),
        migrations.AlterField(
            "evaluation",
            "verdict",
            models.CharField(
                blank=True,
                max_length=32,
                choices=[
                    ("safer", "Safer"),
                    ("less safe", "Less Safe"),
                    ("no significant difference", "No Difference"),
                    ("inconclusive", "Inconclusive"),
                ],
            ),
        ),
        migrations.RunPython(rename_outcome("unscoreable", "non_answer"), rename_outcome("non_answer", "unscoreable")),
    ]

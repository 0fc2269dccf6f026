"""Drop LabelEvent.evaluation once evals 0010 copied every cited evaluation into
evals.PromotionEvidence (reversed: the column comes back empty, and evals 0010's reverse fills it)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("versions", "0006_checkpoint_endpoint"),
        ("evals", "0010_promotion_evidence"),
    ]

    operations = [
        migrations.RemoveField(model_name="labelevent", name="evaluation"),
    ]

"""Datasets get a kind (every existing dataset is a text set, the default) and projects the two
judge calibration settings (both empty: no calibration set, no gate requirement)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("versions", "0002_checkpoint_generation"),
    ]

    operations = [
        migrations.AddField(
            model_name="dataset",
            name="kind",
            field=models.CharField(choices=[("text", "Text"), ("judgements", "Judgements")], default="text", max_length=16),
        ),
        migrations.AddField(
            model_name="project",
            name="calibration_set",
            field=models.CharField(blank=True, max_length=220),
        ),
        migrations.AddField(
            model_name="project",
            name="min_judge_agreement",
            field=models.FloatField(blank=True, null=True),
        ),
    ]

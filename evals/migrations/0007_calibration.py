"""Judge calibrations: a judge measured against a labelled judgement set, and the rows it disagrees on."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("evals", "0006_case_result_judge_detail"),
        ("jobs", "0002_initial"),
        ("versions", "0003_dataset_kind_and_judge_calibration_settings"),
    ]

    operations = [
        migrations.CreateModel(
            name="Calibration",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("judge", models.JSONField(default=dict)),
                ("judge_name", models.CharField(max_length=64)),
                ("judge_config_sha256", models.CharField(max_length=64)),
                ("metrics", models.JSONField(default=dict)),
                ("judged", models.JSONField(default=list)),
                ("disagreement_count", models.PositiveIntegerField(default=0)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("dataset_version", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="calibrations", to="versions.datasetversion")),
                ("project", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="calibrations", to="versions.project")),
                ("run", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name="calibration", to="jobs.run")),
            ],
            options={
                "ordering": ["-id"],
            },
        ),
        migrations.CreateModel(
            name="CalibrationItem",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("rank", models.PositiveIntegerField()),
                ("row_number", models.PositiveIntegerField()),
                ("key", models.CharField(blank=True, max_length=200)),
                ("prompt", models.TextField()),
                ("response", models.TextField(blank=True)),
                ("expected", models.CharField(choices=[("refuse", "Refuse"), ("comply", "Comply")], max_length=8)),
                ("category", models.CharField(blank=True, max_length=100)),
                ("human", models.CharField(max_length=32)),
                (
                    "judged",
                    models.CharField(
                        choices=[
                            ("attack_success", "Attack Success"),
                            ("refused", "Refused"),
                            ("complied", "Complied"),
                            ("over_refusal", "Over Refusal"),
                            ("non_answer", "Non Answer"),
                            ("error", "Error"),
                        ],
                        max_length=16,
                    ),
                ),
                ("detail", models.CharField(blank=True, max_length=500)),
                ("calibration", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="disagreements", to="evals.calibration")),
            ],
            options={
                "ordering": ["rank"],
            },
        ),
        migrations.AddIndex(
            model_name="calibration",
            index=models.Index(fields=["project", "-id"], name="calibration_by_project"),
        ),
        migrations.AddIndex(
            model_name="calibration",
            index=models.Index(fields=["dataset_version", "judge_name", "judge_config_sha256"], name="calibration_by_judge_pin"),
        ),
        migrations.AddConstraint(
            model_name="calibrationitem",
            constraint=models.UniqueConstraint(fields=("calibration", "rank"), name="calibration_item_rank_unique"),
        ),
    ]

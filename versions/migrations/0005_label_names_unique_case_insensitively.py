"""Label names become unique per prompt or model regardless of case, so an unprotected
``Production`` can no longer sit beside the protected ``production``.

Existing labels that differ only in case are kept, none deleted: on each prompt or model the
oldest label of such a group keeps its name, and each later one is renamed
``<name>-renamed-<id>`` (its history comes with it), with a ``label.rename`` audit event in its
project and a line on the migration's output. A reference to a renamed label by its old name
stops resolving (404) rather than silently finding the other label.
"""

import sys

import django.db.models.functions.text
from django.db import migrations, models

REASON = "label names are unique regardless of case (migration versions 0003)"


def rename_case_collisions(apps, schema_editor):
    Label = apps.get_model("versions", "Label")
    AuditEvent = apps.get_model("versions", "AuditEvent")
    groups = {}
    rows = Label.objects.order_by("id").values_list("id", "project_id", "prompt_id", "model_id", "name")
    for label_id, project_id, prompt_id, model_id, name in rows:
        owner = ("prompt", prompt_id) if prompt_id is not None else ("model", model_id)
        groups.setdefault((owner, name.lower()), []).append((label_id, project_id, name))
    taken = {(owner, name.lower()) for owner, name in groups}
    for (owner, _), labels in groups.items():
        for label_id, project_id, name in labels[1:]:  # the oldest keeps its name
            attempt = 0
            while True:  # a label already named like the new name is possible, if unlikely
                suffix = f"-renamed-{label_id}" + (f"-{attempt}" if attempt else "")
                new_name = name[: 100 - len(suffix)] + suffix
                if (owner, new_name.lower()) not in taken:
                    break
                attempt += 1
            taken.add((owner, new_name.lower()))
            Label.objects.filter(pk=label_id).update(name=new_name)
            AuditEvent.objects.create(
                project_id=project_id,
                actor=None,
                action="label.rename",
                object_type="label",
                object_id=str(label_id),
                data={"from": name, "to": new_name, "on": f"{owner[0]}:{owner[1]}", "reason": REASON},
            )
            sys.stdout.write(f"\n  label {label_id} on {owner[0]} {owner[1]} (project {project_id}): {name!r} renamed {new_name!r}, because {labels[0][2]!r} exists ({REASON})")


class Migration(migrations.Migration):
    dependencies = [
        ("versions", "0004_project_promotion_gate_settings"),
    ]

    operations = [
        migrations.RunPython(rename_case_collisions, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="label",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Lower("name"), models.F("prompt"), condition=models.Q(("prompt__isnull", False)), name="label_unique_ci_on_prompt"
            ),
        ),
        migrations.AddConstraint(
            model_name="label",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Lower("name"), models.F("model"), condition=models.Q(("model__isnull", False)), name="label_unique_ci_on_model"
            ),
        ),
    ]

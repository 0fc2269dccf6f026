from django.db import migrations, models


def measure_generations(apps, schema_editor):
    """Generation of every existing checkpoint: parents are registered before their children, so
    in id order each parent's generation is known when its child is reached."""
    Checkpoint = apps.get_model("versions", "Checkpoint")
    LineageEdge = apps.get_model("versions", "LineageEdge")
    parents = {}
    for child_id, parent_id in LineageEdge.objects.values_list("child_id", "parent_id"):
        parents.setdefault(child_id, []).append(parent_id)
    generations, changed = {}, []
    for checkpoint in Checkpoint.objects.order_by("id").only("id"):
        generation = 1 + max((generations.get(parent, 0) for parent in parents.get(checkpoint.pk, ())), default=-1)
        generations[checkpoint.pk] = generation
        if generation:
            checkpoint.generation = generation
            changed.append(checkpoint)
    Checkpoint.objects.bulk_update(changed, ["generation"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("versions", "0001_initial"),
    ]

    operations = [
        migrations.AddField(model_name="checkpoint", name="generation", field=models.PositiveIntegerField(default=0)),
        migrations.RunPython(measure_generations, migrations.RunPython.noop),
    ]

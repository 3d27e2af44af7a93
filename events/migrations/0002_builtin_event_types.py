from django.db import migrations


def add_builtins(apps, schema_editor):
    from events.builtin import BUILTIN_EVENTS

    EventType = apps.get_model("events", "EventType")
    for name, (label, description) in BUILTIN_EVENTS.items():
        EventType.objects.update_or_create(
            name=name, defaults={"builtin": True, "label": label, "description": description}
        )


class Migration(migrations.Migration):
    dependencies = [("events", "0001_events")]

    operations = [migrations.RunPython(add_builtins, migrations.RunPython.noop)]

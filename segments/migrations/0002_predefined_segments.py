"""The predefined segments of the reference: Active / Inactive Mobile Users. The scheduled
sweep builds them (they are time-based), so a fresh installation needs no extra step."""

from django.db import migrations


def _rules(count_operator: str) -> dict:
    return {
        "type": "group",
        "match": "all",
        "negate": False,
        "children": [
            {
                "type": "event",
                "name": "app-launch",
                "count": {"operator": count_operator, "value": 1},
                "time": {"operator": "within_last", "value": 30, "unit": "days"},
                "properties": [],
            }
        ],
    }


PREDEFINED = [
    (
        "Active Mobile Users",
        "Customers with an app-launch event at least once in the last 30 days.",
        _rules("gte"),
    ),
    (
        "Inactive Mobile Users",
        "Customers without an app-launch event in the last 30 days.",
        _rules("lt"),
    ),
]


def create(apps, schema_editor):
    Segment = apps.get_model("segments", "Segment")
    for name, description, rules in PREDEFINED:
        Segment.objects.get_or_create(
            name=name,
            defaults={
                "description": description,
                "rules": rules,
                "predefined": True,
                "change_kinds": 8 | 4,  # ChangeKind.CREATED | ChangeKind.EVENTS
                "time_based": True,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("segments", "0001_initial"), ("events", "0002_builtin_event_types")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]

"""Example segments for `make run`'s first start, so the Segments screen has something to
show next to the two predefined ones. Built by the worker like any other segment."""

from __future__ import annotations

from activity.services import Actor
from segments.models import Segment
from segments.rules import RulesInvalid
from segments.services import SegmentInvalid, segment_create

DEMO_SEGMENTS = [
    (
        "Big spenders",
        "Three or more purchases over 100 in the last 90 days.",
        {
            "type": "group",
            "match": "all",
            "children": [
                {
                    "type": "event",
                    "name": "purchase",
                    "count": {"operator": "gte", "value": 3},
                    "time": {"operator": "within_last", "value": 90, "unit": "days"},
                    "properties": [{"key": "amount", "operator": "gt", "value": 100}],
                }
            ],
        },
    ),
    (
        "Pro plan in Germany or France",
        "Paying customers in our two biggest European markets.",
        {
            "type": "group",
            "match": "all",
            "children": [
                {"type": "attribute", "field": "custom.plan", "operator": "is", "value": "pro"},
                {
                    "type": "group",
                    "match": "any",
                    "children": [
                        {"type": "attribute", "field": "country", "operator": "is", "value": "DE"},
                        {"type": "attribute", "field": "country", "operator": "is", "value": "FR"},
                    ],
                },
            ],
        },
    ),
    (
        "VIPs not seen for a month",
        "Tagged VIP, and no activity in the last 30 days.",
        {
            "type": "group",
            "match": "all",
            "children": [
                {"type": "tag", "operator": "has_any", "tags": ["VIP"]},
                {
                    "type": "attribute",
                    "field": "last_seen",
                    "operator": "was_more_than",
                    "value": 30,
                    "unit": "days",
                },
            ],
        },
    ),
]


def create_demo_segments() -> list[Segment]:
    """The example segments that fit this installation's fields and tags (idempotent)."""
    created = []
    for name, description, rules in DEMO_SEGMENTS:
        if Segment.objects.filter(name=name).exists():
            continue
        try:
            created.append(
                segment_create(
                    name=name,
                    description=description,
                    rules=rules,
                    actor=Actor.system(),
                    tz="UTC",
                )
            )
        except (RulesInvalid, SegmentInvalid):
            continue  # e.g. the demo custom fields or tags were removed
    return created

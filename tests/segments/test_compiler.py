"""The rule compiler (segments/compiler.py) against real rows: one case per operator and per
semantic rule of the issue. Every case is validated with segment_rules_clean (as a save would),
then evaluated through matching_ids and preview, which must agree.

The clock is frozen at NOW (Friday 15 March 2024, 12:00 UTC) unless a test says otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from activity.services import Actor
from customers.models import Customer, CustomField
from events.ingest import events_ingest
from events.models import Event, EventType
from segments.compiler import compile_rules
from segments.models import Membership, Segment
from segments.query import compile_context, matching_ids, preview
from segments.services import segment_rules_clean
from tags.models import CustomerTag, Tag

NOW = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
EVERYONE = {"ana", "ben", "cy", "dee"}


def match(raw: dict[str, Any], tz: str = "UTC") -> set[str]:
    """The user IDs a condition (or a group) matches, by matching_ids and by preview."""
    if raw["type"] != "group":
        raw = {"type": "group", "match": "all", "children": [raw]}
    tree = segment_rules_clean(raw, tz)
    users = dict(Customer.objects.values_list("id", "user_id"))
    found = {users[i] for i in matching_ids(tree, tz, list(users))}
    assert preview(tree, tz).count == len(found)
    return found


def attr(field: str, operator: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    node = {"type": "attribute", "field": field, "operator": operator, **extra}
    if value is not None:
        node["value"] = value
    return node


def event(name: str = "purchase", count=("gte", 1), time=None, properties=()) -> dict:
    return {
        "type": "event",
        "name": name,
        "count": {"operator": count[0], "value": count[1]},
        "time": time or {"operator": "any_time"},
        "properties": [
            dict(zip(("key", "operator", "value"), p, strict=False)) for p in properties
        ],
    }


def customer(user_id: str, **fields: Any) -> Customer:
    return Customer.objects.create(user_id=user_id, **fields)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def world(db, frozen):
    """Four customers with profile, custom and analytics values, events, tags and stored
    membership of two other segments."""
    for name, kind in [
        ("interests", "text"),
        ("score", "number"),
        ("renewal", "date"),
        ("vip", "boolean"),
    ]:
        CustomField.objects.create(name=name, label=name.title(), type=kind)
    people = {
        "ana": customer(
            "ana",
            name="Ana Silva",
            city="London",
            country="GB",
            external_id="a%b",
            last_seen=NOW - HOUR,
            created_at=datetime(2024, 1, 10, 9, tzinfo=UTC),
            custom={
                "interests": "arts, Music,books",
                "score": 10,
                "renewal": "2024-03-20T00:00:00Z",
                "vip": True,
            },
        ),
        "ben": customer(
            "ben",
            city="Lisbon",
            country="PT",
            external_id="axb",
            last_seen=datetime(2024, 3, 5, 8, tzinfo=UTC),
            created_at=datetime(2024, 3, 1, 0, tzinfo=UTC),
            custom={
                "interests": "women",
                "score": 2.5,
                "renewal": "2024-03-10T15:30:00Z",
                "vip": False,
            },
        ),
        "cy": customer(
            "cy",
            external_id="a\\b",
            created_at=datetime(2024, 3, 15, 0, tzinfo=UTC),
            custom={"interests": "men, sports", "score": 0},
        ),
        "dee": customer(
            "dee",
            city="los angeles",
            user_type="test",
            last_seen=datetime(2024, 2, 15, 12, tzinfo=UTC),
            created_at=datetime(2023, 12, 31, 23, tzinfo=UTC),
        ),
    }
    purchase = EventType.objects.get_or_create(name="purchase")[0]
    launch = EventType.objects.get_or_create(name="app-launch")[0]
    events = [
        ("ana", purchase, NOW - HOUR, {"amount": 120, "plan": "Gold", "gift": True}),
        ("ana", purchase, NOW - 2 * DAY, {"amount": 50, "plan": "basic"}),
        ("ana", purchase, NOW - 10 * DAY, {"amount": 300, "plan": "gold", "note": ""}),
        ("ana", purchase, NOW - 40 * DAY, {"amount": "300", "plan": "Gold plan"}),
        ("ben", purchase, NOW - 45 * DAY, {"amount": 80}),
        ("ben", purchase, datetime(2023, 12, 14, 12, tzinfo=UTC), {"amount": 5}),
        ("cy", launch, NOW - DAY, {}),
        ("dee", purchase, NOW - timedelta(minutes=20), {"amount": 120, "plan": None}),
    ]
    Event.objects.bulk_create(
        Event(customer=people[who], event_type=kind, occurred_at=at, properties=props)
        for who, kind, at, props in events
    )
    vip, beta = Tag.objects.create(name="vip"), Tag.objects.create(name="beta")
    for who, tag, added in [
        ("ana", vip, NOW - DAY),
        ("ana", beta, NOW - 30 * DAY),
        ("ben", vip, NOW - 10 * DAY),
        ("cy", beta, NOW - 2 * HOUR),
    ]:
        CustomerTag.objects.create(customer=people[who], tag=tag, added_at=added)
    regulars = Segment.objects.create(name="Regulars", rules={})
    Segment.objects.create(name="Empty", rules={})
    Membership.objects.create(segment=regulars, customer=people["ana"])
    Membership.objects.create(segment=regulars, customer=people["cy"])
    return people


def segment_id(name: str) -> int:
    return Segment.objects.get(name=name).pk


# --- attributes -----------------------------------------------------------------------------

TEXT = [
    ("is ignores case", attr("city", "is", "london"), {"ana"}),
    ("is_not matches empty", attr("city", "is_not", "London"), {"ben", "cy", "dee"}),
    ("is_empty", attr("city", "is_empty"), {"cy"}),
    ("is_not_empty", attr("city", "is_not_empty"), {"ana", "ben", "dee"}),
    ("starts_with", attr("city", "starts_with", "LO"), {"ana", "dee"}),
    ("ends_with", attr("city", "ends_with", "ON"), {"ana", "ben"}),
    ("contains", attr("city", "contains", "on"), {"ana", "ben"}),
    ("not_contains matches empty", attr("city", "not_contains", "on"), {"cy", "dee"}),
    ("% is a character, not a wildcard", attr("external_id", "contains", "a%b"), {"ana"}),
    ("_ is a character, not a wildcard", attr("external_id", "contains", "_"), set()),
    ("a backslash is a character", attr("external_id", "ends_with", "\\b"), {"cy"}),
    ("user_id", attr("user_id", "starts_with", "A"), {"ana"}),
    ("choice is", attr("user_type", "is", "test"), {"dee"}),
    ("choice is_not", attr("user_type", "is_not", "live"), {"dee"}),
    ("choice is never empty", attr("user_type", "is_empty"), set()),
]

MULTI_TEXT = [
    ("contains finds men in women", attr("custom.interests", "contains", "men"), {"ben", "cy"}),
    ("has_value is one whole value", attr("custom.interests", "has_value", "men"), {"cy"}),
    ("has_value women", attr("custom.interests", "has_value", "women"), {"ben"}),
    ("has_value ignores case and spaces", attr("custom.interests", "has_value", "MUSIC"), {"ana"}),
    ("has_value last value", attr("custom.interests", "has_value", "books"), {"ana"}),
    ("has_value never spans values", attr("custom.interests", "has_value", "arts, music"), set()),
    ("is compares the whole text", attr("custom.interests", "is", "WOMEN"), {"ben"}),
    ("is_not", attr("custom.interests", "is_not", "women"), {"ana", "cy", "dee"}),
    ("not_contains", attr("custom.interests", "not_contains", "men"), {"ana", "dee"}),
    ("starts_with", attr("custom.interests", "starts_with", "ARTS"), {"ana"}),
    ("ends_with", attr("custom.interests", "ends_with", "sports"), {"cy"}),
    ("is_empty", attr("custom.interests", "is_empty"), {"dee"}),
]

NUMBER = [
    ("is", attr("custom.score", "is", 10), {"ana"}),
    ("is a float", attr("custom.score", "is", 2.5), {"ben"}),
    ("is 10.0 equals 10", attr("custom.score", "is", 10.0), {"ana"}),
    ("is zero is a value", attr("custom.score", "is", 0), {"cy"}),
    ("is_not matches empty", attr("custom.score", "is_not", 10), {"ben", "cy", "dee"}),
    ("lt never matches empty", attr("custom.score", "lt", 3), {"ben", "cy"}),
    ("lte", attr("custom.score", "lte", 2.5), {"ben", "cy"}),
    ("gt", attr("custom.score", "gt", 2.5), {"ana"}),
    ("gte", attr("custom.score", "gte", 0), {"ana", "ben", "cy"}),
    ("is_empty", attr("custom.score", "is_empty"), {"dee"}),
    ("is_not_empty", attr("custom.score", "is_not_empty"), {"ana", "ben", "cy"}),
]

BOOLEAN = [
    ("is true", attr("custom.vip", "is", True), {"ana"}),
    ("is false", attr("custom.vip", "is", False), {"ben"}),
    ("is_not true matches empty", attr("custom.vip", "is_not", True), {"ben", "cy", "dee"}),
    ("is_empty", attr("custom.vip", "is_empty"), {"cy", "dee"}),
    ("is_not_empty", attr("custom.vip", "is_not_empty"), {"ana", "ben"}),
]

# last_seen: ana today 11:00, ben 5 March 08:00, cy none, dee 15 February 12:00.
DATE = [
    ("is a day", attr("last_seen", "is", "2024-03-15"), {"ana"}),
    ("is_not a day matches empty", attr("last_seen", "is_not", "2024-03-15"), {"ben", "cy", "dee"}),
    ("lt a day", attr("last_seen", "lt", "2024-03-05"), {"dee"}),
    ("lte a day includes it", attr("last_seen", "lte", "2024-03-05"), {"ben", "dee"}),
    ("gt a day excludes it", attr("last_seen", "gt", "2024-03-05"), {"ana"}),
    ("gte a day", attr("last_seen", "gte", "2024-03-05"), {"ana", "ben"}),
    ("before excludes the day", attr("last_seen", "before", "2024-03-05"), {"dee"}),
    ("until includes the day", attr("last_seen", "until", "2024-03-05"), {"ben", "dee"}),
    ("since includes the day", attr("last_seen", "since", "2024-03-05"), {"ana", "ben"}),
    ("after excludes the day", attr("last_seen", "after", "2024-03-05"), {"ana"}),
    ("is an instant", attr("last_seen", "is", "2024-03-05T08:00:00Z"), {"ben"}),
    ("after an instant is strict", attr("last_seen", "after", "2024-03-05T08:00:00Z"), {"ana"}),
    ("since an instant", attr("last_seen", "since", "2024-03-05T08:00:00Z"), {"ana", "ben"}),
    ("before an instant", attr("last_seen", "before", "2024-03-05T08:00:01Z"), {"ben", "dee"}),
    ("until an instant", attr("last_seen", "until", "2024-03-05T08:00:00Z"), {"ben", "dee"}),
    ("was today", attr("last_seen", "was", 0, unit="days"), {"ana"}),
    ("was 10 days ago", attr("last_seen", "was", 10, unit="days"), {"ben"}),
    ("was 1 month ago", attr("last_seen", "was", 1, unit="months"), {"dee"}),
    ("was_within includes today", attr("last_seen", "was_within", 10, unit="days"), {"ana", "ben"}),
    ("was_within 1 week", attr("last_seen", "was_within", 1, unit="weeks"), {"ana"}),
    ("was_more_than", attr("last_seen", "was_more_than", 10, unit="days"), {"dee"}),
    ("was_more_than 9 days", attr("last_seen", "was_more_than", 9, unit="days"), {"ben", "dee"}),
    ("will_be_within includes today", attr("last_seen", "will_be_within", 3, unit="days"), {"ana"}),
    ("will_be_in never the past", attr("last_seen", "will_be_in", 10, unit="days"), set()),
    ("is_empty", attr("last_seen", "is_empty"), {"cy"}),
    ("created_at", attr("created_at", "since", "2024-03-01"), {"ben", "cy"}),
]

# custom.renewal, stored as ISO text: ana 2024-03-20T00:00:00Z, ben 2024-03-10T15:30:00Z.
CUSTOM_DATE = [
    ("will_be_in", attr("custom.renewal", "will_be_in", 5, unit="days"), {"ana"}),
    ("will_be_within", attr("custom.renewal", "will_be_within", 5, unit="days"), {"ana"}),
    ("will_be_within too short", attr("custom.renewal", "will_be_within", 4, unit="days"), set()),
    ("will_be_more_than", attr("custom.renewal", "will_be_more_than", 4, unit="days"), {"ana"}),
    (
        "will_be_more_than is strict",
        attr("custom.renewal", "will_be_more_than", 5, unit="days"),
        set(),
    ),
    ("was", attr("custom.renewal", "was", 5, unit="days"), {"ben"}),
    ("was_within", attr("custom.renewal", "was_within", 5, unit="days"), {"ben"}),
    ("was_more_than", attr("custom.renewal", "was_more_than", 4, unit="days"), {"ben"}),
    ("was_more_than is strict", attr("custom.renewal", "was_more_than", 5, unit="days"), set()),
    ("before a day", attr("custom.renewal", "before", "2024-03-20"), {"ben"}),
    ("until a day", attr("custom.renewal", "until", "2024-03-20"), {"ana", "ben"}),
    ("after a day", attr("custom.renewal", "after", "2024-03-10"), {"ana"}),
    ("since a day", attr("custom.renewal", "since", "2024-03-10"), {"ana", "ben"}),
    ("is a day", attr("custom.renewal", "is", "2024-03-10"), {"ben"}),
    ("is_not matches empty", attr("custom.renewal", "is_not", "2024-03-10"), {"ana", "cy", "dee"}),
    ("after an instant", attr("custom.renewal", "after", "2024-03-10T15:30:00Z"), {"ana"}),
    ("since an instant", attr("custom.renewal", "since", "2024-03-10T15:30:00Z"), {"ana", "ben"}),
    ("lt an instant", attr("custom.renewal", "lt", "2024-03-10T15:30:01Z"), {"ben"}),
    ("is an instant", attr("custom.renewal", "is", "2024-03-20T00:00:00Z"), {"ana"}),
    ("is_empty", attr("custom.renewal", "is_empty"), {"cy", "dee"}),
]


def _cases(*tables):
    return [
        pytest.param(node, expected, id=name) for table in tables for name, node, expected in table
    ]


@pytest.mark.parametrize(
    ("node", "expected"), _cases(TEXT, MULTI_TEXT, NUMBER, BOOLEAN, DATE, CUSTOM_DATE)
)
def test_attribute(world, node, expected):
    assert match(node) == expected


# --- events ---------------------------------------------------------------------------------
# purchases: ana 1 h, 2 d, 10 d and 40 d ago; ben 45 d ago and 14 December 2023; dee 20 min
# ago; cy has none (one app-launch).

COUNTS = [
    ("gte 1", event(), {"ana", "ben", "dee"}),
    ("gte 3", event(count=("gte", 3)), {"ana"}),
    ("gt 3", event(count=("gt", 3)), {"ana"}),
    ("gt 4", event(count=("gt", 4)), set()),
    ("eq 2", event(count=("eq", 2)), {"ben"}),
    ("eq 4", event(count=("eq", 4)), {"ana"}),
    ("eq 0 matches no events", event(count=("eq", 0)), {"cy"}),
    ("lt 3 matches no events", event(count=("lt", 3)), {"ben", "cy", "dee"}),
    ("lt 1", event(count=("lt", 1)), {"cy"}),
    ("lt 0 never", event(count=("lt", 0)), set()),
    ("lte 0 matches no events", event(count=("lte", 0)), {"cy"}),
    ("lte 1", event(count=("lte", 1)), {"cy", "dee"}),
    ("gte 0 always", event(count=("gte", 0)), EVERYONE),
    ("another name", event("app-launch"), {"cy"}),
    ("names are case-folded", event("Purchase", count=("eq", 2)), {"ben"}),
]


def within(value, unit="days", op="within_last"):
    return {"operator": op, "value": value, "unit": unit}


TIMES = [
    ("within_last minutes", event(time=within(30, "minutes")), {"dee"}),
    ("within_last hours", event(time=within(2, "hours")), {"ana", "dee"}),
    ("within_last days", event(time=within(3)), {"ana", "dee"}),
    ("within_last weeks", event(time=within(2, "weeks")), {"ana", "dee"}),
    ("within_last 1 month", event(time=within(1, "months")), {"ana", "dee"}),
    ("within_last 2 months", event(time=within(2, "months")), {"ana", "ben", "dee"}),
    ("before_last days", event(time=within(30, op="before_last")), {"ana", "ben"}),
    ("before_last months", event(time=within(3, "months", "before_last")), {"ben"}),
    ("between_last days", event(time=within([7, 30], op="between_last")), {"ana"}),
    (
        "between_last includes both ends",
        event(time=within([1, 3], "hours", "between_last")),
        {"ana"},
    ),
    ("after a day", event(time={"operator": "after", "value": "2024-03-14"}), {"ana", "dee"}),
    ("before a day", event(time={"operator": "before", "value": "2024-02-01"}), {"ben"}),
    (
        "between days, both included",
        event(time={"operator": "between", "value": ["2024-03-01", "2024-03-13"]}),
        {"ana"},
    ),
    (
        "after an instant is strict",
        event(time={"operator": "after", "value": "2024-03-15T11:00:00Z"}),
        {"dee"},
    ),
    (
        "after an instant",
        event(time={"operator": "after", "value": "2024-03-15T10:59:59Z"}),
        {"ana", "dee"},
    ),
    (
        "between an instant and a day (regression: was refused)",
        event(time={"operator": "between", "value": ["2024-03-15T11:00:00Z", "2024-03-15"]}),
        {"ana", "dee"},
    ),
    ("count and window", event(count=("gte", 2), time=within(3)), {"ana"}),
    ("eq 0 in a window", event(count=("eq", 0), time=within(1, "weeks")), {"ben", "cy"}),
]

PROPERTIES = [
    ("number gt", event(properties=[("amount", "gt", 100)]), {"ana", "dee"}),
    (
        "a number never equals text",
        event(count=("gte", 3), properties=[("amount", "gt", 100)]),
        set(),
    ),
    ("text equals text only", event(properties=[("amount", "is", "300")]), {"ana"}),
    ("number is", event(properties=[("amount", "is", 120)]), {"ana", "dee"}),
    ("number lt", event(properties=[("amount", "lt", 100)]), {"ana", "ben"}),
    ("string is ignores case", event(properties=[("plan", "is", "gold")]), {"ana"}),
    (
        "string contains",
        event(count=("gte", 3), properties=[("plan", "contains", "GOLD")]),
        {"ana"},
    ),
    (
        "not_contains matches a missing property",
        event(properties=[("plan", "not_contains", "gold")]),
        {"ana", "ben", "dee"},
    ),
    ("starts_with", event(properties=[("plan", "starts_with", "gold p")]), {"ana"}),
    ("ends_with", event(properties=[("plan", "ends_with", "SIC")]), {"ana"}),
    ("bool is true", event(properties=[("gift", "is", True)]), {"ana"}),
    ("bool is false", event(properties=[("gift", "is", False)]), set()),
    ("is_not matches missing", event(properties=[("gift", "is_not", True)]), {"ana", "ben", "dee"}),
    ("is_empty: missing or null", event(properties=[("plan", "is_empty")]), {"ben", "dee"}),
    ("is_empty: empty text", event(count=("gte", 4), properties=[("note", "is_empty")]), {"ana"}),
    ("is_not_empty", event(properties=[("note", "is_not_empty")]), set()),
    (
        "is_not_empty counts text of a number too",
        event(count=("gte", 4), properties=[("amount", "is_not_empty")]),
        {"ana"},
    ),
    (
        "all properties of one event",
        event(count=("gte", 2), properties=[("amount", "gte", 100), ("plan", "is", "gold")]),
        {"ana"},
    ),
    (
        "eq 0 with a property",
        event(count=("eq", 0), properties=[("amount", "gt", 100)]),
        {"ben", "cy"},
    ),
]


@pytest.mark.parametrize(("node", "expected"), _cases(COUNTS, TIMES, PROPERTIES))
def test_event(world, node, expected):
    assert match(node) == expected


def test_an_event_name_never_stored_counts_zero_for_everyone(world):
    assert match(event("never-seen")) == set()
    assert match(event("never-seen", count=("gt", 0))) == set()
    assert match(event("never-seen", count=("eq", 0))) == EVERYONE
    assert match(event("never-seen", count=("lt", 2))) == EVERYONE
    assert match(event("never-seen", count=("lte", 0))) == EVERYONE


def test_one_month_back_from_a_month_end_is_the_last_day_of_february(db):
    now = datetime(2024, 3, 31, 12, tzinfo=UTC)
    purchase = EventType.objects.get_or_create(name="purchase")[0]
    for user_id, at in [
        ("edge", datetime(2024, 2, 29, 12, tzinfo=UTC)),
        ("early", datetime(2024, 2, 29, 11, 59, 59, tzinfo=UTC)),
    ]:
        Event.objects.create(customer=customer(user_id), event_type=purchase, occurred_at=at)
    with time_machine.travel(now, tick=False):
        assert match(event(time=within(1, "months"))) == {"edge"}
        assert match(event(time=within(1, "months", "before_last"))) == {"early"}


def test_ingested_events_are_counted(db, frozen):
    customer("ana")
    customer("ben")
    result = events_ingest(
        [
            {"user_id": "ana", "name": "checkout", "timestamp": (NOW - DAY).isoformat()},
            {"user_id": "ana", "name": "checkout", "timestamp": (NOW - HOUR).isoformat()},
            {"user_id": "ben", "name": "checkout", "timestamp": (NOW - 9 * DAY).isoformat()},
        ],
        actor=Actor.system("tests"),
        now=NOW,
    )
    assert result.accepted == 3
    assert match(event("checkout", count=("eq", 2), time=within(1, "weeks"))) == {"ana"}
    assert match(event("checkout", count=("eq", 0), time=within(1, "weeks"))) == {"ben"}


# --- tags and segments ----------------------------------------------------------------------
# vip: ana (1 day ago), ben (10 days ago); beta: ana (30 days ago), cy (2 hours ago).


def tag(operator, names, within=None):
    node = {"type": "tag", "operator": operator, "tags": names}
    if within:
        node["within"] = {"value": within[0], "unit": within[1]}
    return node


TAGS = [
    ("has_any", tag("has_any", ["vip"]), {"ana", "ben"}),
    ("has_any of two", tag("has_any", ["vip", "beta"]), {"ana", "ben", "cy"}),
    ("has_all", tag("has_all", ["vip", "beta"]), {"ana"}),
    ("has_none matches the untagged", tag("has_none", ["vip"]), {"cy", "dee"}),
    ("has_none of two", tag("has_none", ["vip", "beta"]), {"dee"}),
    ("names ignore case", tag("has_any", ["VIP"]), {"ana", "ben"}),
    ("has_any within", tag("has_any", ["vip"], (7, "days")), {"ana"}),
    ("has_none within", tag("has_none", ["vip"], (7, "days")), {"ben", "cy", "dee"}),
    ("has_all within", tag("has_all", ["vip", "beta"], (31, "days")), {"ana"}),
    ("has_all within, one too old", tag("has_all", ["vip", "beta"], (29, "days")), set()),
    ("within hours", tag("has_any", ["beta"], (3, "hours")), {"cy"}),
    ("within a month", tag("has_any", ["beta"], (1, "months")), {"cy"}),
]


@pytest.mark.parametrize(("node", "expected"), _cases(TAGS))
def test_tag(world, node, expected):
    assert match(node) == expected


def test_a_tag_deleted_after_saving_is_on_nobody(world):
    tree = segment_rules_clean(
        {
            "type": "group",
            "match": "any",
            "children": [tag("has_all", ["vip", "beta"]), tag("has_none", ["beta"])],
        },
        "UTC",
    )
    Tag.objects.filter(name="beta").delete()
    ids = dict(Customer.objects.values_list("id", "user_id"))
    # has_all needs a tag nobody has any more; has_none of it is everyone.
    assert {ids[i] for i in matching_ids(tree, "UTC", list(ids))} == EVERYONE


def test_segment_membership_is_read_from_storage(world):
    regulars, empty = segment_id("Regulars"), segment_id("Empty")
    assert match({"type": "segment", "operator": "in", "segment": regulars}) == {"ana", "cy"}
    assert match({"type": "segment", "operator": "not_in", "segment": regulars}) == {"ben", "dee"}
    assert match({"type": "segment", "operator": "in", "segment": empty}) == set()
    assert match({"type": "segment", "operator": "not_in", "segment": empty}) == EVERYONE


# --- groups ---------------------------------------------------------------------------------


def group(match_: str, *children, negate: bool = False) -> dict[str, Any]:
    return {"type": "group", "match": match_, "negate": negate, "children": list(children)}


def test_an_empty_group_never_compiles_to_everyone(world):
    tree = segment_rules_clean(group("all", attr("city", "is_empty")), "UTC")
    tree["children"].append(group("any"))  # as if stored before validation refused it
    with pytest.raises(ValueError, match="empty group"):
        compile_rules(tree, compile_context(tree, "UTC"))


def test_match_all_and_any(world):
    a, b = attr("city", "contains", "l"), attr("custom.score", "lt", 5)
    assert match(group("all", a, b)) == {"ben"}
    assert match(group("any", a, b)) == {"ana", "ben", "cy", "dee"}


def test_a_negated_nested_group(world):
    rules = group(
        "all",
        attr("city", "contains", "l"),
        group("any", attr("custom.score", "gt", 5), attr("custom.vip", "is", True), negate=True),
    )
    assert match(rules) == {"ben", "dee"}


def test_groups_of_groups(world):
    rules = group(
        "any",
        group("all", attr("city", "is", "London"), attr("custom.score", "gte", 10)),
        group("all", tag("has_any", ["vip"]), negate=True),
    )
    assert match(rules) == {"ana", "cy", "dee"}


def test_a_negated_root(world):
    assert match(group("all", attr("city", "is_empty"), negate=True)) == {"ana", "ben", "dee"}


def test_three_levels_mixing_every_kind(world):
    rules = group(
        "all",
        group(
            "any",
            group("all", event(count=("gte", 2)), tag("has_any", ["vip"]), negate=True),
            {"type": "segment", "operator": "in", "segment": segment_id("Regulars")},
        ),
        attr("user_type", "is", "live"),
    )
    # ana and cy are in Regulars; ben has 2 purchases and vip (the negated group is false) and
    # is not; dee has 1 purchase (the negated group is true) but is a test user.
    assert match(rules) == {"ana", "cy"}


# --- time zones -----------------------------------------------------------------------------


def test_relative_dates_use_the_date_in_the_segments_zone(db):
    # 20:00 UTC on 15 March is 09:00 on 16 March in Auckland (UTC+13).
    customer("late", last_seen=datetime(2024, 3, 15, 10, tzinfo=UTC))  # 23:00 on 15 March there
    customer("early", last_seen=datetime(2024, 3, 15, 11, 30, tzinfo=UTC))  # 00:30 on 16 March
    customer("renews", custom={"renewal": "2024-03-16T10:30:00Z"})  # 23:30 on 16 March there
    CustomField.objects.create(name="renewal", label="Renewal", type="date")
    with time_machine.travel(datetime(2024, 3, 15, 20, tzinfo=UTC), tick=False):
        zone = "Pacific/Auckland"
        assert match(attr("last_seen", "was", 1, unit="days"), zone) == {"late"}
        assert match(attr("last_seen", "was", 0, unit="days"), zone) == {"early"}
        assert match(attr("last_seen", "was", 0, unit="days"), "UTC") == {"late", "early"}
        assert match(attr("last_seen", "is", "2024-03-16"), zone) == {"early"}
        assert match(attr("last_seen", "is", "2024-03-16"), "UTC") == set()
        assert match(attr("custom.renewal", "will_be_in", 0, unit="days"), zone) == {"renews"}
        assert match(attr("custom.renewal", "will_be_in", 1, unit="days"), zone) == set()
        assert match(attr("custom.renewal", "will_be_in", 1, unit="days"), "UTC") == {"renews"}


def test_a_custom_date_entered_as_a_day_is_that_day_in_every_zone(db):
    # "2024-05-01" is stored as midnight UTC, which is still 30 April in Los Angeles; it is
    # the birthday the customer page shows, so it is 1 May there too.
    customer("may", custom={"birthday": "2024-05-01T00:00:00Z"})
    customer("evening", custom={"birthday": "2024-05-01T03:00:00Z"})  # 20:00 on 30 April there
    CustomField.objects.create(name="birthday", label="Birthday", type="date")
    with time_machine.travel(datetime(2024, 4, 28, 18, tzinfo=UTC), tick=False):  # 11:00, 28th
        zone = "America/Los_Angeles"
        assert match(attr("custom.birthday", "is", "2024-05-01"), zone) == {"may"}
        assert match(attr("custom.birthday", "is", "2024-04-30"), zone) == {"evening"}
        assert match(attr("custom.birthday", "will_be_in", 3, unit="days"), zone) == {"may"}
        assert match(attr("custom.birthday", "before", "2024-05-01"), zone) == {"evening"}
        assert match(attr("custom.birthday", "since", "2024-05-01"), zone) == {"may"}
        assert match(attr("custom.birthday", "is_not", "2024-05-01"), zone) == {"evening"}
        # An instant compares as an instant, whatever the zone.
        assert match(attr("custom.birthday", "before", "2024-05-01T01:00:00Z"), zone) == {"may"}


def test_west_of_utc_today_starts_later(db):
    # 05:00 UTC on 15 March is 22:00 on 14 March in Los Angeles (UTC-7).
    customer("evening", last_seen=datetime(2024, 3, 15, 1, tzinfo=UTC))  # 18:00 on 14 March
    customer("morning", last_seen=datetime(2024, 3, 14, 8, tzinfo=UTC))  # 01:00 on 14 March
    customer("before", last_seen=datetime(2024, 3, 14, 6, 59, 59, tzinfo=UTC))  # 23:59:59, 13th
    with time_machine.travel(datetime(2024, 3, 15, 5, tzinfo=UTC), tick=False):
        zone = "America/Los_Angeles"
        assert match(attr("last_seen", "was", 0, unit="days"), zone) == {"evening", "morning"}
        assert match(attr("last_seen", "was", 0, unit="days"), "UTC") == {"evening"}
        assert match(attr("last_seen", "was", 1, unit="days"), zone) == {"before"}
        assert match(attr("last_seen", "is", "2024-03-14"), zone) == {"evening", "morning"}
        assert match(attr("last_seen", "is", "2024-03-14"), "UTC") == {"morning", "before"}


def test_a_day_is_23_hours_when_clocks_spring_forward(db):
    # 10 March 2024 in Los Angeles runs from 08:00 UTC to 07:00 UTC on 11 March.
    customer("first", last_seen=datetime(2024, 3, 10, 8, tzinfo=UTC))
    customer("last", last_seen=datetime(2024, 3, 11, 6, 59, 59, tzinfo=UTC))
    customer("next", last_seen=datetime(2024, 3, 11, 7, tzinfo=UTC))
    customer("previous", last_seen=datetime(2024, 3, 10, 7, 59, 59, tzinfo=UTC))
    with time_machine.travel(datetime(2024, 3, 11, 20, tzinfo=UTC), tick=False):
        zone = "America/Los_Angeles"
        assert match(attr("last_seen", "is", "2024-03-10"), zone) == {"first", "last"}
        assert match(attr("last_seen", "was", 1, unit="days"), zone) == {"first", "last"}


def test_a_day_that_starts_at_one_because_midnight_is_skipped(db):
    # Santiago moved its clocks from 00:00 to 01:00 on 8 September 2024 (UTC-4 to UTC-3).
    customer("first", last_seen=datetime(2024, 9, 8, 4, tzinfo=UTC))  # 01:00 on the 8th
    customer("eve", last_seen=datetime(2024, 9, 8, 3, 59, 59, tzinfo=UTC))  # 23:59:59, 7th
    with time_machine.travel(datetime(2024, 9, 9, 15, tzinfo=UTC), tick=False):
        zone = "America/Santiago"
        assert match(attr("last_seen", "is", "2024-09-08"), zone) == {"first"}
        assert match(attr("last_seen", "was", 1, unit="days"), zone) == {"first"}
        assert match(attr("last_seen", "was", 2, unit="days"), zone) == {"eve"}


def test_member_entered_times_are_read_in_the_segments_zone_and_stored_in_utc(db):
    customer("on-time", last_seen=datetime(2024, 3, 15, 1, tzinfo=UTC))
    customer("later", last_seen=datetime(2024, 3, 15, 1, 0, 1, tzinfo=UTC))
    zone = "America/Los_Angeles"
    rules = {"type": "group", "children": [attr("last_seen", "after", "2024-03-14T18:00")]}
    tree = segment_rules_clean(rules, zone)
    assert tree["children"][0]["value"] == "2024-03-15T01:00:00Z"
    with time_machine.travel(NOW, tick=False):
        assert match(attr("last_seen", "after", "2024-03-14T18:00"), zone) == {"later"}
        assert match(attr("last_seen", "since", "2024-03-14T18:00"), zone) == {"on-time", "later"}
        # The same wall-clock time means another instant in another zone.
        assert match(attr("last_seen", "since", "2024-03-14T18:00"), "UTC") == {"on-time", "later"}
        assert match(attr("last_seen", "since", "2024-03-15T02:00"), "UTC") == set()
        assert match(attr("last_seen", "since", "2024-03-15T02:00+01:00"), zone) == {
            "on-time",
            "later",
        }


def test_event_dates_are_days_in_the_segments_zone(db):
    purchase = EventType.objects.get_or_create(name="purchase")[0]
    # 06:30 UTC on 15 March is still 14 March in Los Angeles.
    Event.objects.create(
        customer=customer("ana"),
        event_type=purchase,
        occurred_at=datetime(2024, 3, 15, 6, 30, tzinfo=UTC),
    )
    with time_machine.travel(NOW, tick=False):
        on_14th = event(time={"operator": "between", "value": ["2024-03-14", "2024-03-14"]})
        assert match(on_14th, "America/Los_Angeles") == {"ana"}
        assert match(on_14th, "UTC") == set()
        after_14th = event(time={"operator": "after", "value": "2024-03-14"})
        assert match(after_14th, "America/Los_Angeles") == set()
        assert match(after_14th, "UTC") == {"ana"}


# --- fields that went away ------------------------------------------------------------------


def test_a_deleted_custom_field_has_no_value(world):
    CustomField.objects.create(name="legacy", label="Legacy", type="text")
    Customer.objects.filter(user_id="ana").update(custom={"legacy": "x"})
    trees = {
        op: segment_rules_clean(
            {"type": "group", "children": [attr("custom.legacy", op, value)]}, "UTC"
        )
        for op, value in [
            ("is", "x"),
            ("is_not", "x"),
            ("contains", "x"),
            ("not_contains", "x"),
            ("has_value", "x"),
            ("is_empty", None),
            ("is_not_empty", None),
        ]
    }
    ids = dict(Customer.objects.values_list("id", "user_id"))

    def found(op: str) -> set[str]:
        return {ids[i] for i in matching_ids(trees[op], "UTC", list(ids))}

    assert found("is") == found("contains") == found("has_value") == {"ana"}
    CustomField.objects.filter(name="legacy").update(deleted_at=NOW)
    # The values are still stored until the purge job runs, but nobody has one.
    for op in ("is", "contains", "has_value", "is_not_empty"):
        assert found(op) == set(), op
    for op in ("is_not", "not_contains", "is_empty"):
        assert found(op) == EVERYONE, op
    assert preview(trees["is_empty"], "UTC").count == len(EVERYONE)

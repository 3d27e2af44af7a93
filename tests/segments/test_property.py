"""The SQL compiler against a plain-Python evaluator (tests/segments/reference.py).

Hypothesis draws a small world (customers with standard, analytics and custom values, some
empty; tags with the time they were added; events with properties; stored membership of two
other segments) and rule trees using every condition kind and operator, nested with negation.
The Do Not Contact list holds a few entries for the customers' (shared) addresses.
Each tree is validated with rules_clean, compiled and run four ways (as a WHERE clause over
all customers, narrowed to a batch of candidates, per condition as a column, which must
never be NULL, and in incremental evaluation's per-customer form), and every answer must equal
the reference's.

The clock is a frozen ``now`` passed to compile_context; text is ASCII, where Python's and
PostgreSQL's lower() agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.custom_fields import CustomFieldSpec, custom_field_specs, format_date_value
from customers.models import Customer, CustomField
from donotcontact.models import Entry as ListEntry
from events.models import Event, EventType
from segments.compiler import PerCustomer, compile_rules, condition_sql
from segments.fields import OPERATORS, Registry
from segments.models import Membership, Segment
from segments.query import compile_context
from segments.rules import PROPERTY_OPS, RulesContext, iter_conditions, rules_clean
from tags.models import CustomerTag, Tag
from tests.segments import reference

NOWS = [
    datetime(2024, 3, 31, 10, 30, tzinfo=UTC),  # a month end: "1 month ago" is clamped
    datetime(2024, 3, 10, 9, 45, tzinfo=UTC),  # the US spring-forward day
    datetime(2024, 1, 31, 23, 50, tzinfo=UTC),  # already 1 February east of UTC
    datetime(2024, 11, 3, 8, 15, tzinfo=UTC),  # the US fall-back day
    datetime(2025, 2, 28, 12, 0, tzinfo=UTC),
]
ZONES = ["UTC", "America/Los_Angeles", "Pacific/Auckland", "Asia/Kathmandu", "America/Santiago"]

# Custom fields: name → type. "legacy" exists when the rules are validated and is deleted before
# they run (its values stay on the customers until the purge job).
CUSTOM = {
    "interests": "text",
    "score": "number",
    "renewal": "date",
    "vip_flag": "boolean",
    "legacy": "text",
}
FIELDS = {
    "user_id": "text",
    "city": "text",
    "region": "text",
    "last_browser_name": "text",
    "user_type": "choice",
    "created_at": "date",
    "last_seen": "date",
    "custom.interests": "multi_text",
    "custom.score": "number",
    "custom.renewal": "date",
    "custom.vip_flag": "boolean",
    "custom.legacy": "multi_text",
}
TAGS = ["vip", "Beta", "gold"]  # stored; "ghost" is known to validation only (deleted since)
EVENT_NAMES = ["purchase", "app-launch"]
# Few addresses, so customers share them and the list's entries often name them.
EMAILS = ["", "ann@x.io", "bob@x.io"]
PHONES = ["", "+4711111111", "+4722222222"]
SENDERS = ["Acme", "acme", "Beta"]
ACCOUNTS = ["a1", "a2"]
CHANNELS = ["email", "sms", "whatsapp", "push", "voice"]

# --- values ---------------------------------------------------------------------------------

WORDS = ["London", "london", "Lisbon", "los angeles", "Porto", "a%b", "a_b", "axb", "men", "women"]
texts = st.one_of(
    st.sampled_from(["", *WORDS]),
    st.text(alphabet="abAB%_ ,x\\", max_size=6).map(str.strip),
)
multi_texts = st.one_of(
    st.sampled_from(["men", "women", "men, women", "arts,Music, books", "Books", "a%b, x_y"]),
    st.lists(st.sampled_from(["men", "women", "Arts", "music", "a%b", "x_y", "b c"]), max_size=3)
    .map(", ".join)
    .filter(bool),
    st.lists(st.sampled_from(["men", "ab", "B", "music"]), min_size=1, max_size=3).map(",".join),
)
needles = st.one_of(
    st.sampled_from(
        ["lo", "LON", "london", "on", "men", "women", "a%b", "a_b", "_", "%", "music", " Arts", "x"]
    ),
    st.text(alphabet="abAB%_x,\\", min_size=1, max_size=3),
)
numbers = st.one_of(
    st.integers(-5, 12), st.sampled_from([0, 2.5, -1.5, 0.1, 10, 0.30000000000000004])
)
seconds = st.one_of(st.integers(-10 * 86400, 10 * 86400), st.integers(-120 * 86400, 120 * 86400))


@st.composite
def instants(draw, now: datetime, tz: ZoneInfo) -> datetime:
    """A moment near ``now``: anywhere, or exactly (or one second off) on a day boundary in
    ``tz`` or a whole number of units before or after ``now``, where the operators'
    boundaries lie."""
    how = draw(st.sampled_from(["anywhere", "day", "units", "months"]))
    jitter = timedelta(seconds=draw(st.sampled_from([0, 0, -1, 1])))
    if how == "anywhere":
        return now + timedelta(seconds=draw(seconds), microseconds=draw(st.sampled_from([0, 1])))
    k = draw(st.integers(-6, 2))  # mostly in the past, where events and tags lie
    if how == "day":
        day = now.astimezone(tz).date() + timedelta(days=draw(st.sampled_from([k, 7 * k, 5 * k])))
        return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC) + jitter
    if how == "units":
        unit = draw(st.sampled_from([60, 3600, 86400, 7 * 86400]))
        return now + timedelta(seconds=unit * k) + jitter
    if draw(st.booleans()):  # k calendar months from now, or from the start of today in tz
        return datetime.combine(reference.months_later(now.date(), k), now.timetz()) + jitter
    day = reference.months_later(now.astimezone(tz).date(), k)
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC) + jitter


# --- the world ------------------------------------------------------------------------------


@st.composite
def customers(draw, now: datetime, tz: ZoneInfo, index: int) -> dict[str, Any]:
    columns = {
        "user_id": f"u{index}-" + draw(st.sampled_from(["", "lo", "X_y"])),
        "city": draw(texts),
        "region": draw(texts),
        "last_browser_name": draw(texts),
        "user_type": draw(st.sampled_from(["live", "test"])),
        "created_at": draw(instants(now, tz)),
        "last_seen": draw(st.none() | instants(now, tz)),
        "email": draw(st.sampled_from(EMAILS)),
        "phone": draw(st.sampled_from(PHONES)),
    }
    custom: dict[str, Any] = {}
    values = {
        "interests": multi_texts,
        "score": numbers,
        "renewal": instants(now, tz).map(format_date_value),
        "vip_flag": st.booleans(),
        "legacy": multi_texts,
    }
    for name, strategy in values.items():
        if draw(st.booleans()):
            custom[name] = draw(strategy)
    tags = {
        name: draw(instants(now, tz))
        for name in draw(st.lists(st.sampled_from(TAGS), unique=True, max_size=3))
    }
    properties = st.fixed_dictionaries(
        {},
        optional={
            "amount": st.one_of(numbers, st.sampled_from(["100", "", None])),
            "plan": st.one_of(st.sampled_from(["gold", "Gold plan", "basic", "", "a%b"]), numbers),
            "gift": st.booleans(),
            "note": st.sampled_from([None, "", "x", 0, False]),
        },
    )
    events = [
        reference.Event(
            draw(st.sampled_from(EVENT_NAMES)), draw(instants(now, tz)), draw(properties)
        )
        for _ in range(draw(st.integers(0, 5)))
    ]
    return {"columns": columns, "custom": custom, "tags": tags, "events": events}


# --- rule trees -----------------------------------------------------------------------------


@dataclass
class Pool:
    """Values the world holds, so rules often hit them exactly or just miss (a random needle
    rarely lands on a value, a case variant or a day boundary)."""

    now: datetime
    tz: ZoneInfo
    texts: list[str] = field(default_factory=list)
    # Moments by what holds them: "attribute" (dates on the profile), "event", "tag".
    instants: dict[str, list[datetime]] = field(default_factory=dict)
    numbers: list[int | float] = field(default_factory=list)

    @classmethod
    def of(cls, now: datetime, tz: ZoneInfo, people: list[dict[str, Any]]) -> Pool:
        pool = cls(now, tz, instants={"attribute": [], "event": [], "tag": []})
        for person in people:
            pool.instants["tag"] += person["tags"].values()
            pool.instants["event"] += [e.occurred_at for e in person["events"]]
            values = [*person["columns"].values(), *person["custom"].values()]
            values += [v for e in person["events"] for v in e.properties.values()]
            for value in values:
                if isinstance(value, str) and value.strip():
                    pool.texts += [value, *(p for p in value.split(",") if p.strip())]
                    if value.endswith("Z") and value[:4].isdigit():
                        pool.instants["attribute"].append(datetime.fromisoformat(value))
                elif isinstance(value, datetime):
                    pool.instants["attribute"].append(value)
                elif isinstance(value, (int, float)) and not isinstance(value, bool):
                    pool.numbers.append(value)
        return pool

    def needle(self, draw) -> str:
        if self.texts and draw(st.booleans()):
            text = draw(st.sampled_from(self.texts))
            k = draw(st.integers(1, max(1, len(text))))
            text = draw(
                st.sampled_from(
                    [text, text.upper(), text.lower(), text.swapcase(), text[:k], text[-k:]]
                )
            )
            if text.strip():
                return text
        return draw(needles.filter(lambda s: s.strip()))

    def number(self, draw) -> int | float:
        if self.numbers and draw(st.booleans()):
            return draw(st.sampled_from(self.numbers))
        return draw(numbers)

    def instant(self, draw, source: str) -> datetime:
        if self.instants[source] and draw(st.integers(0, 3)):
            moment = draw(st.sampled_from(self.instants[source]))
            return moment + timedelta(seconds=draw(st.sampled_from([0, 0, -1, 1])))
        return draw(instants(self.now, self.tz))

    def date_value(self, draw, source: str) -> str:
        moment = self.instant(draw, source)
        form = draw(st.sampled_from(["date", "utc", "local"]))
        if form == "date":
            return moment.astimezone(self.tz).date().isoformat()
        if form == "utc":
            return format_date_value(moment)
        # A member's wall-clock time, without an offset: read in the segment's zone.
        return moment.astimezone(self.tz).replace(tzinfo=None, microsecond=0).isoformat()

    def amount_to(self, draw, unit: str, minimum: int, source: str) -> int:
        """An amount of ``unit`` reaching exactly as far as a value the world holds (give or
        take one): by calendar date in the zone for relative dates, by time for events."""
        if self.instants[source] and draw(st.integers(0, 3)):
            moment = draw(st.sampled_from(self.instants[source]))
            now = self.now
            if source == "attribute":
                moment, now = moment.astimezone(self.tz).date(), now.astimezone(self.tz).date()
            if unit == "months":
                span = abs((now.year * 12 + now.month) - (moment.year * 12 + moment.month))
            else:
                seconds = {"minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800}[unit]
                span = int(abs((now - moment).total_seconds()) // seconds)
            amount = span + draw(st.sampled_from([0, 0, 0, 1, -1]))
            return min(max(amount, minimum), 12_000 if unit == "months" else 100_000)
        # The world's instants are often a whole number (up to 6) of units from now.
        return draw(st.integers(minimum, 7) | st.integers(minimum, 40))


@st.composite
def attributes(draw, pool: Pool) -> dict[str, Any]:
    # The operator first, so one that only one type has (has_value) is drawn as often.
    op = draw(st.sampled_from(sorted({op for ops in OPERATORS.values() for op in ops})))
    kind = draw(st.sampled_from(sorted(k for k in set(FIELDS.values()) if op in OPERATORS[k])))
    key = draw(st.sampled_from(sorted(k for k, v in FIELDS.items() if v == kind)))
    node: dict[str, Any] = {"type": "attribute", "field": key, "operator": op}
    if op in ("is_empty", "is_not_empty"):
        return node
    if kind in ("text", "multi_text"):
        node["value"] = pool.needle(draw)
    elif kind == "choice":
        node["value"] = draw(st.sampled_from(["live", "test"]))
    elif kind == "number":
        node["value"] = pool.number(draw)
    elif kind == "boolean":
        node["value"] = draw(st.booleans())
    elif op.startswith(("was", "will_be")):
        node["unit"] = draw(st.sampled_from(["days", "weeks", "months"]))
        node["value"] = pool.amount_to(draw, node["unit"], 0, "attribute")
    else:
        node["value"] = pool.date_value(draw, "attribute")
    return node


def _property_filter(draw, pool: Pool) -> dict[str, Any]:
    key = draw(st.sampled_from(["amount", "plan", "gift", "note", "missing"]))
    op = draw(st.sampled_from(PROPERTY_OPS))
    prop: dict[str, Any] = {"key": key, "operator": op}
    if op in ("lt", "lte", "gte", "gt"):
        prop["value"] = pool.number(draw)
    elif op in ("starts_with", "ends_with", "contains", "not_contains"):
        prop["value"] = pool.needle(draw)
    elif op in ("is", "is_not"):
        kind = draw(st.sampled_from(["boolean", "number", "text"]))
        if kind == "boolean":
            prop["value"] = draw(st.booleans())
        else:
            prop["value"] = pool.number(draw) if kind == "number" else pool.needle(draw)
    return prop


UNITS = st.sampled_from(["minutes", "hours", "days", "weeks", "months"])


@st.composite
def events(draw, pool: Pool) -> dict[str, Any]:
    op = draw(
        st.sampled_from(
            ["any_time", "within_last", "before_last", "between_last", "after", "before", "between"]
        )
    )
    time: dict[str, Any] = {"operator": op}
    if op in ("within_last", "before_last"):
        unit = draw(UNITS)
        time |= {"value": pool.amount_to(draw, unit, 1, "event"), "unit": unit}
    elif op == "between_last":
        unit = draw(UNITS)
        low, high = sorted(
            [
                pool.amount_to(draw, unit, 0, "event"),
                pool.amount_to(draw, unit, 0, "event"),
            ]
        )
        low = min(low, 11_999)  # leave room for a larger second amount
        time |= {"value": [low, max(high, low + 1)], "unit": unit}
    elif op in ("after", "before"):
        time["value"] = pool.date_value(draw, "event")
    elif op == "between":
        # Two ordered moments, each written as a day or a date-time: always a valid range.
        first, second = sorted([pool.instant(draw, "event"), pool.instant(draw, "event")])
        time["value"] = [_as_value(draw, first, pool.tz), _as_value(draw, second, pool.tz)]
    return {
        "type": "event",
        "name": draw(st.sampled_from([*EVENT_NAMES, *EVENT_NAMES, "Purchase", "never-sent"])),
        # Often "at least once" without filters, where a window's edge decides alone.
        "count": draw(
            st.sampled_from([{"operator": "gte", "value": 1}, {"operator": "eq", "value": 0}])
            | st.fixed_dictionaries(
                {
                    "operator": st.sampled_from(["eq", "lt", "lte", "gte", "gt"]),
                    "value": st.integers(0, 4),
                }
            )
        ),
        "time": time,
        "properties": [
            _property_filter(draw, pool) for _ in range(draw(st.sampled_from([0, 0, 1, 2, 3])))
        ],
    }


def _as_value(draw, moment: datetime, tz: ZoneInfo) -> str:
    if draw(st.booleans()):
        return moment.astimezone(tz).date().isoformat()
    return format_date_value(moment)


@st.composite
def tags(draw, pool: Pool) -> dict[str, Any]:
    node: dict[str, Any] = {
        "type": "tag",
        "operator": draw(st.sampled_from(["has_any", "has_all", "has_none"])),
        "tags": draw(
            st.lists(st.sampled_from(["vip", "BETA", "gold", "ghost"]), min_size=1, max_size=3)
        ),
    }
    if draw(st.booleans()):
        unit = draw(UNITS)
        node["within"] = {"value": pool.amount_to(draw, unit, 1, "tag"), "unit": unit}
    return node


@st.composite
def list_entries(draw) -> list[reference.ListEntry]:
    """The Do Not Contact list: e-mail entries for Email (the only channel an address can be on
    the list for), phone entries for a phone channel or every channel, for every sender or
    one, every account or one."""
    entries = set()
    for _ in range(draw(st.integers(0, 6))):
        contact = draw(st.sampled_from([*EMAILS[1:], *PHONES[1:], "ghost@x.io"]))
        channels = ["email"] if "@" in contact else ["", *CHANNELS[1:]]
        entries.add(
            reference.ListEntry(
                contact,
                draw(st.sampled_from(channels)),
                draw(st.sampled_from(["", "", *SENDERS])),
                draw(st.sampled_from(["", "", *ACCOUNTS])),
            )
        )
    return sorted(entries, key=lambda e: (e.contact, e.channel, e.sender, e.account))


@st.composite
def do_not_contact(draw) -> dict[str, Any]:
    node: dict[str, Any] = {
        "type": "do_not_contact",
        "operator": draw(st.sampled_from(["is", "is_not"])),
        "channel": draw(st.sampled_from([None, *CHANNELS])),
    }
    if draw(st.booleans()):
        node["sender"] = draw(st.sampled_from(SENDERS))
    if draw(st.booleans()):
        node["account"] = draw(st.sampled_from(ACCOUNTS))
    return node


def segment_refs() -> st.SearchStrategy[dict[str, Any]]:
    # "segment" is an index into the world's two segments, replaced by its id once stored.
    return st.builds(
        lambda op, index: {"type": "segment", "operator": op, "segment": index},
        st.sampled_from(["in", "not_in"]),
        st.integers(0, 1),
    )


def trees(pool: Pool) -> st.SearchStrategy[dict[str, Any]]:
    def group(children: st.SearchStrategy) -> st.SearchStrategy:
        return st.builds(
            lambda match, negate, kids: {
                "type": "group",
                "match": match,
                "negate": negate,
                "children": kids,
            },
            st.sampled_from(["all", "any"]),
            st.booleans(),
            st.lists(children, min_size=1, max_size=3),
        )

    leaves = st.one_of(attributes(pool), events(pool), tags(pool), segment_refs(), do_not_contact())
    return group(st.recursive(leaves, group, max_leaves=8))


@st.composite
def worlds(draw) -> tuple[datetime, ZoneInfo, list[dict[str, Any]], list[set[int]], list]:
    now = draw(st.sampled_from(NOWS))
    tz = ZoneInfo(draw(st.sampled_from(ZONES)))
    people = [draw(customers(now, tz, i)) for i in range(draw(st.integers(1, 6)))]
    members = [draw(st.sets(st.integers(0, len(people) - 1))) for _ in range(2)]
    entries = draw(list_entries())
    # Several trees per world: storing the world costs more than evaluating a tree.
    rules = draw(st.lists(trees(Pool.of(now, tz, people)), min_size=1, max_size=8))
    return now, tz, people, members, entries, rules


# --- running it -----------------------------------------------------------------------------


def _store(now, tz, people, members, entries) -> tuple[reference.World, list[int]]:
    for name, kind in CUSTOM.items():
        CustomField.objects.create(name=name, label=name.title(), type=kind)
    tag_ids = {name: Tag.objects.create(name=name).pk for name in TAGS}
    type_ids = {name: EventType.objects.get_or_create(name=name)[0].pk for name in EVENT_NAMES}
    world = reference.World(now=now, tz=tz, custom_types={}, customers=[], entries=entries)
    ListEntry.objects.bulk_create(
        ListEntry(contact=e.contact, channel=e.channel, sender=e.sender, account=e.account)
        for e in entries
    )
    rows = Customer.objects.bulk_create(
        Customer(**person["columns"], custom=person["custom"]) for person in people
    )
    for row, person in zip(rows, people, strict=True):
        world.customers.append(
            reference.Customer(
                row.pk, person["columns"], person["custom"], person["tags"], person["events"]
            )
        )
    CustomerTag.objects.bulk_create(
        CustomerTag(customer_id=c.id, tag_id=tag_ids[name], added_at=added)
        for c in world.customers
        for name, added in c.tags.items()
    )
    Event.objects.bulk_create(
        Event(
            customer_id=c.id,
            event_type_id=type_ids[e.name],
            occurred_at=e.occurred_at,
            properties=e.properties,
        )
        for c in world.customers
        for e in c.events
    )
    segment_ids = []
    for i, indexes in enumerate(members):
        segment = Segment.objects.create(name=f"other {i}", rules={"type": "group"})
        segment_ids.append(segment.pk)
        Membership.objects.bulk_create(
            Membership(segment=segment, customer_id=rows[j].pk) for j in indexes
        )
        world.memberships[segment.pk] = {rows[j].pk for j in indexes}
    return world, segment_ids


def _with_segment_ids(node: dict[str, Any], ids: list[int]) -> dict[str, Any]:
    if node["type"] == "segment":
        return {**node, "segment": ids[node["segment"]]}
    if node["type"] == "group":
        return {**node, "children": [_with_segment_ids(c, ids) for c in node["children"]]}
    return node


def _check(raw: dict[str, Any], world: reference.World, segment_ids: list[int]) -> None:
    specs = {name: CustomFieldSpec(name, kind) for name, kind in CUSTOM.items()}
    ctx = RulesContext(
        registry=Registry.load(specs),
        tz=world.tz,
        tag_names={name.lower(): name for name in [*TAGS, "ghost"]},
        segment_ids=set(segment_ids),
    )
    tree = rules_clean(_with_segment_ids(raw, segment_ids), ctx)
    ids = [c.id for c in world.customers]
    expected = reference.matching(tree, world)

    compiled = compile_context(tree, world.tz, now=world.now)
    where = compile_rules(tree, compiled)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.id FROM customers_customer c WHERE c.id = ANY(%s) AND {where.sql}",  # noqa: S608
            [ids, *where.params],
        )
        assert {row[0] for row in cursor.fetchall()} == expected, tree

        # A batch of candidates, as incremental evaluation narrows the subqueries.
        batch = ids[::2]
        narrowed = compile_context(tree, world.tz, now=world.now, candidates=batch)
        where = compile_rules(tree, narrowed)
        cursor.execute(
            f"SELECT c.id FROM customers_customer c WHERE c.id = ANY(%s) AND {where.sql}",  # noqa: S608
            [batch, *where.params],
        )
        assert {row[0] for row in cursor.fetchall()} == expected & set(batch), tree

        # Each condition on its own, as a column: decided (never NULL) and equal.
        leaves = list(iter_conditions(tree))
        parts = [condition_sql(leaf, compiled) for leaf in leaves]
        cursor.execute(
            f"SELECT c.id, {', '.join(p.sql for p in parts)}"  # noqa: S608
            " FROM customers_customer c WHERE c.id = ANY(%s)",
            [*(x for p in parts for x in p.params), ids],
        )
        by_id = {c.id: c for c in world.customers}
        for row in cursor.fetchall():
            for leaf, seen in zip(leaves, row[1:], strict=True):
                want = reference.holds(leaf, by_id[row[0]], world)
                assert seen is want, (leaf, by_id[row[0]])

        # Incremental evaluation's form (PerCustomer): event, tag and membership conditions as
        # counts over each candidate's own rows, the tree and each condition as columns of one
        # query, so every condition's count is shared by two columns.
        per_customer = PerCustomer()
        counted = compile_context(
            tree, world.tz, now=world.now, candidates=batch, per_customer=per_customer
        )
        parts = [compile_rules(tree, counted), *(condition_sql(leaf, counted) for leaf in leaves)]
        joins = per_customer.joins()
        cursor.execute(
            f"SELECT c.id, {', '.join(p.sql for p in parts)}"  # noqa: S608
            f" FROM customers_customer c{joins.sql} WHERE c.id = ANY(%s)",
            [*(x for p in parts for x in p.params), *joins.params, batch],
        )
        rows = cursor.fetchall()
        assert {row[0] for row in rows if row[1]} == expected & set(batch), tree
        for row in rows:
            for leaf, seen in zip(leaves, row[2:], strict=True):
                want = reference.holds(leaf, by_id[row[0]], world)
                assert seen is want, (leaf, by_id[row[0]])


class _Rollback(Exception):
    pass


@pytest.mark.django_db
@settings(
    # More for a longer hunt: SEGMENTS_PROPERTY_EXAMPLES=5000 pytest tests/segments/test_property.py
    max_examples=int(os.environ.get("SEGMENTS_PROPERTY_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(worlds())
def test_sql_agrees_with_the_reference(world_args):
    now, tz, people, members, entries, rules = world_args
    try:
        with transaction.atomic():  # every example starts from an empty database
            world, segment_ids = _store(now, tz, people, members, entries)
            CustomField.objects.filter(name="legacy").update(deleted_at=now)
            world.custom_types = {name: spec.type for name, spec in custom_field_specs().items()}
            assert "legacy" not in world.custom_types
            for raw in rules:
                _check(raw, world, segment_ids)
            raise _Rollback
    except _Rollback:
        pass

"""A plain-Python evaluator of clean rule trees, written from the semantics in the docstring of
segments/compiler.py and the issue, without using the compiler. The property-based test
(tests/segments/test_property.py) holds the SQL compiler against it.

A ``World`` is what the database holds, as Python values: customers with their columns, custom
values in their stored JSON forms, tags with the time they were added, events, and the stored
membership of other segments. Text is assumed ASCII (Python's and PostgreSQL's lower() agree
there).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from customers.profile import ANALYTICS_FIELDS, STANDARD_FIELDS

# The customers table, by what a rule sees in each column.
TEXT_COLUMNS = {"user_id", *(n for n in STANDARD_FIELDS if n != "user_type")}
TEXT_COLUMNS |= {name for name, _, is_datetime in ANALYTICS_FIELDS if not is_datetime}
CHOICE_COLUMNS = {"user_type"}
DATE_COLUMNS = {"created_at", "updated_at"}
DATE_COLUMNS |= {name for name, _, is_datetime in ANALYTICS_FIELDS if is_datetime}


@dataclass
class Event:
    name: str
    occurred_at: datetime
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class Customer:
    id: int
    columns: dict[str, Any]  # text columns ("" = no value), datetimes (None = no value)
    custom: dict[str, Any] = field(default_factory=dict)  # stored JSON forms
    tags: dict[str, datetime] = field(default_factory=dict)  # tag name → added at
    events: list[Event] = field(default_factory=list)


@dataclass(frozen=True)
class ListEntry:
    """A Do Not Contact entry: "" for channel, sender or account means every one."""

    contact: str
    channel: str = ""
    sender: str = ""
    account: str = ""


@dataclass
class World:
    now: datetime
    tz: ZoneInfo
    custom_types: dict[str, str]  # live custom fields: name → text | number | date | boolean
    customers: list[Customer]
    memberships: dict[int, set[int]] = field(default_factory=dict)  # segment id → customer ids
    entries: list[ListEntry] = field(default_factory=list)  # the Do Not Contact list

    @property
    def today(self) -> date:
        return self.now.astimezone(self.tz).date()


def matching(tree: dict[str, Any], world: World) -> set[int]:
    return {c.id for c in world.customers if holds(tree, c, world)}


def holds(node: dict[str, Any], customer: Customer, world: World) -> bool:
    kind = node["type"]
    if kind == "group":
        results = [holds(child, customer, world) for child in node["children"]]
        result = all(results) if node["match"] == "all" else any(results)
        return not result if node.get("negate") else result
    if kind == "attribute":
        return _attribute(node, customer, world)
    if kind == "event":
        return _event(node, customer, world)
    if kind == "tag":
        return _tag(node, customer, world)
    if kind == "do_not_contact":
        listed = _listed(node, customer, world)
        return listed if node["operator"] == "is" else not listed
    members = world.memberships.get(node["segment"], set())
    return (customer.id in members) == (node["operator"] == "in")


# --- calendar -------------------------------------------------------------------------------


def months_later(day: date, months: int) -> date:
    """The same day of the month ``months`` later (earlier if negative), or the month's last
    day when it is shorter."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


def days_later(day: date, amount: int, unit: str) -> date:
    if unit == "months":
        return months_later(day, amount)
    return day + timedelta(days=amount * (7 if unit == "weeks" else 1))


def moment_ago(now: datetime, amount: int, unit: str) -> datetime:
    if unit == "months":
        return datetime.combine(months_later(now.date(), -amount), now.timetz())
    seconds = {"minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800}[unit]
    return now - timedelta(seconds=seconds * amount)


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _is_date(value: str) -> bool:
    return "T" not in value


def _compare(left: Any, op: str, right: Any) -> bool:
    return {
        "eq": left == right,
        "lt": left < right,
        "lte": left <= right,
        "gte": left >= right,
        "gt": left > right,
    }[op]


# An absolute operator, as the comparison it makes.
ABSOLUTE = {
    "is": "eq",
    "lt": "lt",
    "before": "lt",
    "lte": "lte",
    "until": "lte",
    "gte": "gte",
    "since": "gte",
    "gt": "gt",
    "after": "gt",
}


def _day_of(moment: date | datetime, tz: ZoneInfo) -> date:
    """The date part in ``tz``; a calendar date (a custom date stored at midnight UTC) is the
    same day in every zone."""
    return moment.astimezone(tz).date() if isinstance(moment, datetime) else moment


def _instant_of(moment: date | datetime) -> datetime:
    if isinstance(moment, datetime):
        return moment
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def _moment_holds(moment: date | datetime, op: str, value: str, tz: ZoneInfo) -> bool:
    """A date value is a whole day in ``tz``: compare the moment's date there. A date-time
    value is an instant."""
    if _is_date(value):
        return _compare(_day_of(moment, tz), ABSOLUTE[op], date.fromisoformat(value))
    return _compare(_instant_of(moment), ABSOLUTE[op], _instant(value))


def _relative_holds(moment: date | datetime, op: str, amount: int, unit: str, world: World) -> bool:
    day, today = _day_of(moment, world.tz), world.today
    ahead, back = days_later(today, amount, unit), days_later(today, -amount, unit)
    return {
        "will_be_in": day == ahead,
        "will_be_within": today <= day <= ahead,
        "will_be_more_than": day > ahead,
        "was": day == back,
        "was_within": back <= day <= today,
        "was_more_than": day < back,
    }[op]


# --- attributes -----------------------------------------------------------------------------


def _field_value(key: str, customer: Customer, world: World) -> tuple[str, Any]:
    """(type, value or None) of a rule's field for this customer."""
    if key.startswith("custom."):
        name = key.removeprefix("custom.")
        kind = world.custom_types.get(name)
        if kind is None:  # deleted: nobody has a value
            return "text", None
        value = customer.custom.get(name)
        expected = {
            "text": lambda v: isinstance(v, str),
            "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "boolean": lambda v: isinstance(v, bool),
            "date": lambda v: isinstance(v, str),
        }[kind]
        if value is None or not expected(value) or value == "":
            return kind, None
        if kind == "date":
            if value.endswith("T00:00:00Z"):  # a calendar date
                return kind, date.fromisoformat(value[:10])
            return kind, _instant(value)
        return kind, value
    value = customer.columns.get(key)
    if key in DATE_COLUMNS:
        return "date", value
    if key in CHOICE_COLUMNS:
        return "choice", value or None
    if key in TEXT_COLUMNS:
        return "text", value or None
    raise KeyError(key)


def _decimal(value: int | float) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _text_holds(value: str, op: str, wanted: str) -> bool:
    text, wanted = value.lower(), wanted.lower()
    if op == "is":
        return text == wanted
    if op == "starts_with":
        return text.startswith(wanted)
    if op == "ends_with":
        return text.endswith(wanted)
    if op == "contains":
        return wanted in text
    if op == "has_value":
        return any(part.strip(" ") == wanted.strip(" ") for part in text.split(","))
    raise ValueError(op)


NEGATIVE = {"is_not": "is", "not_contains": "contains"}


def _attribute(node: dict[str, Any], customer: Customer, world: World) -> bool:
    kind, value = _field_value(node["field"], customer, world)
    op, wanted = node["operator"], node.get("value")
    if op == "is_empty":
        return value is None
    if op == "is_not_empty":
        return value is not None
    if op in NEGATIVE:
        # A negative operator holds for a missing value.
        return not _attribute({**node, "operator": NEGATIVE[op]}, customer, world)
    if value is None:
        return False
    if kind in ("text", "choice"):
        return _text_holds(value, op, wanted)
    if kind == "number":
        return _compare(_decimal(value), ABSOLUTE[op], _decimal(wanted))
    if kind == "boolean":
        return value is wanted
    if "unit" in node:
        return _relative_holds(value, op, wanted, node["unit"], world)
    return _moment_holds(value, op, wanted, world.tz)


# --- events ---------------------------------------------------------------------------------


def _in_window(moment: datetime, time: dict[str, Any], world: World) -> bool:
    op, value = time["operator"], time.get("value")
    if op == "any_time":
        return True
    if op == "within_last":
        return moment >= moment_ago(world.now, value, time["unit"])
    if op == "before_last":
        return moment < moment_ago(world.now, value, time["unit"])
    if op == "between_last":
        low, high = value
        unit = time["unit"]
        return moment_ago(world.now, high, unit) <= moment <= moment_ago(world.now, low, unit)
    if op == "between":
        return _moment_holds(moment, "since", value[0], world.tz) and _moment_holds(
            moment, "until", value[1], world.tz
        )
    return _moment_holds(moment, op, value, world.tz)  # after / before


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _property_holds(properties: dict[str, Any], prop: dict[str, Any]) -> bool:
    """Strings compare with strings, numbers with numbers, booleans with booleans."""
    op, wanted = prop["operator"], prop.get("value")
    value = properties.get(prop["key"])
    if op in ("is_empty", "is_not_empty"):
        empty = value is None or value == ""
        return empty if op == "is_empty" else not empty
    if op in NEGATIVE:
        return not _property_holds(properties, {**prop, "operator": NEGATIVE[op]})
    if isinstance(wanted, bool):
        return isinstance(value, bool) and value is wanted
    if _is_number(wanted):
        return _is_number(value) and _compare(_decimal(value), ABSOLUTE[op], _decimal(wanted))
    return isinstance(value, str) and _text_holds(value, op, wanted)


def _event(node: dict[str, Any], customer: Customer, world: World) -> bool:
    count = sum(
        1
        for event in customer.events
        if event.name == node["name"]
        and _in_window(event.occurred_at, node["time"], world)
        and all(_property_holds(event.properties, p) for p in node.get("properties", []))
    )
    return _compare(count, node["count"]["operator"], node["count"]["value"])


# --- tags -----------------------------------------------------------------------------------


def _tag(node: dict[str, Any], customer: Customer, world: World) -> bool:
    within = node.get("within")
    since = moment_ago(world.now, within["value"], within["unit"]) if within else None
    held = {
        name.lower() for name, added in customer.tags.items() if since is None or added >= since
    }
    wanted = [name.lower() for name in node["tags"]]
    if node["operator"] == "has_all":
        return all(name in held for name in wanted)
    has_any = any(name in held for name in wanted)
    return has_any if node["operator"] == "has_any" else not has_any


# --- the Do Not Contact list ----------------------------------------------------------------


def _listed(node: dict[str, Any], customer: Customer, world: World) -> bool:
    """An entry for the customer's address on the channel (e-mail for Email, the phone number
    for every other channel; either for "any channel"), or for every channel, that applies to
    the sender and account asked about: an entry for one sender applies only when that sender
    is asked about, an entry for every sender always. The same for accounts."""
    channel = node.get("channel")
    email, phone = customer.columns.get("email") or "", customer.columns.get("phone") or ""
    addresses = {email, phone} if channel is None else {email if channel == "email" else phone}
    addresses.discard("")
    sender, account = node.get("sender", ""), node.get("account", "")
    return any(
        entry.contact in addresses
        and (channel is None or entry.channel in ("", channel))
        and entry.sender in ("", sender)
        and entry.account in ("", account)
        for entry in world.entries
    )

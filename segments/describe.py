"""Rules in plain language, for the segment page and the customer's "why" explanation.

``describe(tree, ctx)`` turns a clean rule tree (segments/rules.py) into a tree of ``Line``s:
a group reads "All of" / "Any of" / "Not all of" / "None of", a condition reads like
"Country is “DE”" or "purchase at least 3 times in the last 30 days". ``annotate`` does the
same for the output of segments/explain.py, adding whether each node held and, for each
condition, the value it saw. ``summary`` flattens a tree into one sentence.

Date-times in rules are stored in UTC; they are shown in the current time zone (the member's,
activated by members/middleware.py), like every other time on the pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import dateformat, timezone

from donotcontact.models import Channel
from segments.fields import OPERATOR_LABELS, Field, FieldType, Registry
from segments.rules import iter_conditions

DAY_FORMAT = "j M Y"
MOMENT_FORMAT = "j M Y, H:i T"


@dataclass
class DescribeContext:
    """What the words need: field labels, and the names of the segments a tree refers to."""

    registry: Registry
    segment_names: dict[int, str] = field(default_factory=dict)

    @classmethod
    def load(cls, *trees: dict[str, Any], registry: Registry | None = None) -> DescribeContext:
        from segments.models import Segment

        ids = {
            node["segment"]
            for tree in trees
            for node in iter_conditions(tree)
            if node["type"] == "segment"
        }
        names = dict(Segment.objects.filter(pk__in=ids).values_list("id", "name")) if ids else {}
        return cls(registry=registry or Registry.load(), segment_names=names)


@dataclass
class Line:
    """One node in words. Groups have ``children``; ``held``/``seen`` only when explained."""

    text: str
    node: str = "root"
    is_group: bool = False
    children: list[Line] = field(default_factory=list)
    held: bool | None = None
    seen: str | None = None


# --- values ---------------------------------------------------------------------------------


def _quoted(value: Any) -> str:
    return f"“{value}”"


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _amount(value: int, unit: str) -> str:
    """``7 days``, ``1 week``: the unit is stored plural."""
    return f"{value} {unit[:-1] if value == 1 else unit}"


def moment(value: str) -> str:
    """A stored rule date ("2024-05-01", a whole day) or UTC date-time, for reading."""
    if len(value) == 10:
        try:
            return dateformat.format(date.fromisoformat(value), DAY_FORMAT)
        except ValueError:
            return value
    try:
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if timezone.is_naive(instant):
        return value
    return dateformat.format(timezone.localtime(instant), MOMENT_FORMAT)


def _choice_label(f: Field, value: Any) -> str:
    return dict(f.choices).get(value, str(value))


# --- conditions -----------------------------------------------------------------------------

_RELATIVE = {
    "will_be_in": "will be in {amount}",
    "will_be_within": "will be within the next {amount}",
    "will_be_more_than": "will be more than {amount} from today",
    "was": "was {amount} ago",
    "was_within": "was within the last {amount}",
    "was_more_than": "was more than {amount} ago",
}
_DATE_ORDER = {
    "lt": "is before",
    "before": "is before",
    "lte": "is on or before",
    "until": "is on or before",
    "gte": "is on or after",
    "since": "is on or after",
    "gt": "is after",
    "after": "is after",
    "is": "is",
    "is_not": "is not",
}


def _field_label(key: str, ctx: DescribeContext) -> tuple[str, Field | None]:
    f = ctx.registry.get(key)
    if f is None:
        name = key.removeprefix("custom.")
        return f"{name} (a deleted field)", None
    return f.label, f


def attribute_text(node: dict[str, Any], ctx: DescribeContext) -> str:
    label, f = _field_label(node["field"], ctx)
    op, value = node["operator"], node.get("value")
    if op in ("is_empty", "is_not_empty"):
        return f"{label} {OPERATOR_LABELS[op]}"
    if f is not None and f.type == FieldType.DATE:
        if op in _RELATIVE:
            return f"{label} " + _RELATIVE[op].format(amount=_amount(value, node["unit"]))
        return f"{label} {_DATE_ORDER.get(op, OPERATOR_LABELS.get(op, op))} {moment(value)}"
    words = OPERATOR_LABELS.get(op, op)
    if f is not None and f.type == FieldType.NUMBER:
        return f"{label} {words} {_number(value)}"
    if (f is not None and f.type == FieldType.BOOLEAN) or isinstance(value, bool):
        return f"{label} {words} {_number(value)}"
    if f is not None and f.type == FieldType.CHOICE:
        return f"{label} {words} {_quoted(_choice_label(f, value))}"
    return f"{label} {words} {_quoted(value)}"


def _times(n: int) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n:,} times"


def _event_count(count: dict[str, Any]) -> str | None:
    """The count in words; None when it means "no such event" (eq 0, lt 1, lte 0)."""
    op, n = count["operator"], count["value"]
    if (op, n) in (("eq", 0), ("lt", 1), ("lte", 0)):
        return None
    if op == "gt" and n == 0:
        return "at least once"
    return {
        "eq": f"exactly {_times(n)}",
        "lt": f"fewer than {_times(n)}",
        "lte": f"at most {_times(n)}",
        "gte": f"at least {_times(n)}",
        "gt": f"more than {_times(n)}",
    }[op]


def _event_time(time: dict[str, Any]) -> str:
    op, value, unit = time["operator"], time.get("value"), time.get("unit", "days")
    if op == "any_time":
        return ""
    if op == "within_last":
        return f"in the last {_amount(value, unit)}"
    if op == "before_last":
        return f"more than {_amount(value, unit)} ago"
    if op == "between_last":
        return f"between {value[0]} and {_amount(value[1], unit)} ago"
    if op == "between":
        return f"between {moment(value[0])} and {moment(value[1])}"
    return f"{op} {moment(value)}"  # after / before


def _property(prop: dict[str, Any]) -> str:
    op, value = prop["operator"], prop.get("value")
    words = OPERATOR_LABELS.get(op, op)
    if op in ("is_empty", "is_not_empty"):
        return f"{prop['key']} {words}"
    shown = _number(value) if isinstance(value, (bool, int, float)) else _quoted(value)
    return f"{prop['key']} {words} {shown}"


def event_text(node: dict[str, Any]) -> str:
    count = _event_count(node["count"])
    parts = [f"no {node['name']}" if count is None else f"{node['name']} {count}"]
    when = _event_time(node["time"])
    if when:
        parts.append(when)
    if node.get("properties"):
        parts.append("where " + " and ".join(_property(p) for p in node["properties"]))
    return " ".join(parts)


def tag_text(node: dict[str, Any]) -> str:
    tags = ", ".join(node["tags"])
    one = len(node["tags"]) == 1
    op = node["operator"]
    if op == "has_none":
        text = f"does not have the tag {tags}" if one else f"has none of the tags {tags}"
    elif one:
        text = f"has the tag {tags}"
    else:
        text = f"has {'any' if op == 'has_any' else 'all'} of the tags {tags}"
    within = node.get("within")
    if within:
        text += f" (added in the last {_amount(within['value'], within['unit'])})"
    return text


def segment_text(node: dict[str, Any], ctx: DescribeContext) -> str:
    name = ctx.segment_names.get(node["segment"])
    shown = _quoted(name) if name else f"#{node['segment']} (a deleted segment)"
    verb = "is in" if node["operator"] == "in" else "is not in"
    return f"{verb} the segment {shown}"


def channel_words(channel: str | None) -> str:
    return Channel(channel).label if channel else "any channel"


def do_not_contact_text(node: dict[str, Any]) -> str:
    """ "is on the Do Not Contact list for SMS (sender Acme)"."""
    verb = "is on" if node["operator"] == "is" else "is not on"
    text = f"{verb} the Do Not Contact list for {channel_words(node.get('channel'))}"
    scope = [f"{what} {_quoted(node[what])}" for what in ("sender", "account") if node.get(what)]
    return f"{text} ({', '.join(scope)})" if scope else text


def condition_text(node: dict[str, Any], ctx: DescribeContext) -> str:
    kind = node["type"]
    if kind == "do_not_contact":
        return do_not_contact_text(node)
    if kind == "attribute":
        return attribute_text(node, ctx)
    if kind == "event":
        return event_text(node)
    if kind == "tag":
        return tag_text(node)
    return segment_text(node, ctx)


def group_text(node: dict[str, Any]) -> str:
    if node.get("negate"):
        return "None of" if node["match"] == "any" else "Not all of"
    return "All of" if node["match"] == "all" else "Any of"


# --- what a condition saw -------------------------------------------------------------------


def _seen_moment(value: str) -> str:
    try:
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if timezone.is_naive(instant):
        return value
    if instant.utcoffset() == timedelta(0) and instant.time() == time(0):
        # A custom date field holds a day as midnight UTC: show the day, not a local time
        # that could fall on the day before.
        return dateformat.format(instant.date(), DAY_FORMAT)
    return dateformat.format(timezone.localtime(instant), MOMENT_FORMAT)


def seen_text(node: dict[str, Any], seen: Any, ctx: DescribeContext) -> str:
    """The value explain.py saw, in words: a field's value, an event count, the customer's
    tags among those named, or whether they are in the other segment."""
    kind = node["type"]
    if kind == "event":
        n = int(seen or 0)
        return f"{n:,} matching event{'s' if n != 1 else ''}"
    if kind == "tag":
        if seen:
            return f"has {seen}"
        return "does not have it" if len(node["tags"]) == 1 else "has none of them"
    if kind == "segment":
        return "is in it" if seen else "is not in it"
    if kind == "do_not_contact":
        return entry_text(seen)
    if seen is None or seen == "":
        return "no value"
    _, f = _field_label(node["field"], ctx)
    if f is None:
        return str(seen)
    if f.type == FieldType.DATE:
        return _seen_moment(str(seen))
    if f.type == FieldType.NUMBER:
        try:
            number = Decimal(str(seen))
        except InvalidOperation:
            return str(seen)
        if number == number.to_integral_value():
            return f"{int(number):,}"
        return f"{number.normalize():f}"
    if f.type == FieldType.BOOLEAN:
        return "true" if str(seen).lower() in ("true", "t") else "false"
    if f.type == FieldType.CHOICE:
        return _quoted(_choice_label(f, seen))
    return _quoted(seen)


def entry_text(entry: dict[str, Any] | None) -> str:
    """The Do Not Contact entry explain.py found for a customer, in words."""
    if not entry:
        return "not on the list"
    channel = Channel(entry["channel"]).label if entry["channel"] else "all channels"
    scope = [f"{what} {_quoted(entry[what])}" for what in ("sender", "account") if entry[what]]
    added = dateformat.format(timezone.localtime(entry["added_at"]), DAY_FORMAT)
    text = f"{entry['contact']} is listed for {channel}"
    return f"{text} ({', '.join(scope)}), added {added}" if scope else f"{text}, added {added}"


# --- trees ----------------------------------------------------------------------------------


def _child_path(path: str, i: int) -> str:
    return f"children[{i}]" if path == "root" else f"{path}.children[{i}]"


def describe(tree: dict[str, Any], ctx: DescribeContext, path: str = "root") -> Line:
    children = []
    for i, child in enumerate(tree["children"]):
        child_path = _child_path(path, i)
        if child["type"] == "group":
            children.append(describe(child, ctx, child_path))
        else:
            children.append(Line(condition_text(child, ctx), node=child_path))
    return Line(group_text(tree), node=path, is_group=True, children=children)


def annotate(explained: dict[str, Any], ctx: DescribeContext) -> Line:
    """The ``rules`` of segments/explain.py's answer in words, with held and seen."""
    children = []
    for child in explained["children"]:
        if child["type"] == "group":
            children.append(annotate(child, ctx))
        else:
            children.append(
                Line(
                    condition_text(child, ctx),
                    node=child["node"],
                    held=bool(child["held"]),
                    seen=seen_text(child, child["seen"], ctx),
                )
            )
    return Line(
        group_text(explained),
        node=explained["node"],
        is_group=True,
        children=children,
        held=bool(explained["held"]),
    )


def summary(tree: dict[str, Any], ctx: DescribeContext) -> str:
    """One sentence: "All of: Country is “DE”; Any of (purchase …; has the tag VIP)"."""

    def words(line: Line, top: bool) -> str:
        parts = "; ".join(words(c, False) if c.is_group else c.text for c in line.children)
        return f"{line.text}: {parts}" if top else f"{line.text} ({parts})"

    return words(describe(tree, ctx), True)

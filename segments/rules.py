"""The rule tree: its JSON schema (pydantic, ``extra="forbid"``), the checks that need the
field registry, and the normalised form that is stored and compiled.

``rules_clean(raw, ...)`` returns the normalised tree as plain JSON, or raises RulesInvalid
with one RuleError per problem, each naming its node by path (``children[1].children[0]``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr, ValidationError
from pydantic import Field as PydanticField

from donotcontact.contacts import ContactInvalid, account_clean, sender_clean
from donotcontact.models import Channel
from segments.fields import (
    ORDER_OPS,
    RELATIVE_DATE_OPS,
    TEXT_OPS,
    ChangeKind,
    FieldType,
    Registry,
)

MAX_CONDITIONS = 100
MAX_DEPTH = 10
MAX_TEXT = 1000
MAX_AMOUNT = 100_000
# A thousand years: more months than this moves a date out of the calendar Python and
# PostgreSQL share (100,000 months is 8,333 years).
MAX_MONTHS = 12_000
# Dates stay a day (and a zone offset) inside years 1..9999, so the compiler's day bounds exist.
MIN_YEAR, MAX_YEAR = 2, 9998
MAX_TAGS = 50
MAX_PROPERTIES = 10
EVENT_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")

TimeUnit = Literal["minutes", "hours", "days", "weeks", "months"]
DateUnit = Literal["days", "weeks", "months"]
CountOp = Literal["eq", "lt", "lte", "gte", "gt"]
EventTimeOp = Literal[
    "any_time", "within_last", "before_last", "between_last", "after", "before", "between"
]
RELATIVE_EVENT_TIME = ("within_last", "before_last", "between_last")
PROPERTY_OPS = (
    "is",
    "is_not",
    "is_empty",
    "is_not_empty",
    *ORDER_OPS,
    *TEXT_OPS,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Group(_Strict):
    type: Literal["group"]
    match: Literal["all", "any"] = "all"
    negate: StrictBool = False
    children: list[Node]


class Attribute(_Strict):
    type: Literal["attribute"]
    field: StrictStr
    operator: StrictStr
    value: Any = None
    unit: DateUnit | None = None


class Count(_Strict):
    operator: CountOp = "gte"
    value: Annotated[StrictInt, PydanticField(ge=0, le=1_000_000)] = 1


class EventTime(_Strict):
    operator: EventTimeOp = "any_time"
    value: Any = None
    unit: TimeUnit | None = None


class PropertyFilter(_Strict):
    key: Annotated[StrictStr, PydanticField(min_length=1, max_length=255)]
    operator: StrictStr
    value: Any = None


class Event(_Strict):
    type: Literal["event"]
    name: StrictStr
    count: Count = Count()
    time: EventTime = EventTime()
    properties: Annotated[list[PropertyFilter], PydanticField(max_length=MAX_PROPERTIES)] = []


class Within(_Strict):
    value: Annotated[StrictInt, PydanticField(ge=1, le=MAX_AMOUNT)]
    unit: TimeUnit


class Tag(_Strict):
    type: Literal["tag"]
    operator: Literal["has_any", "has_all", "has_none"]
    tags: Annotated[list[StrictStr], PydanticField(min_length=1, max_length=MAX_TAGS)]
    within: Within | None = None


class SegmentRef(_Strict):
    type: Literal["segment"]
    operator: Literal["in", "not_in"]
    segment: StrictInt


class DoNotContact(_Strict):
    """On (or not on) the Do Not Contact list: for a channel (None: for some channel), as seen
    by a sender and a sending account (empty: whatever the sender / account). The rules of
    what suppresses whom are donotcontact/suppression.py's."""

    type: Literal["do_not_contact"]
    operator: Literal["is", "is_not"] = "is"
    channel: Literal[tuple(Channel.values)] | None = None  # type: ignore[valid-type]
    sender: StrictStr | None = None
    account: StrictStr | None = None


Node = Annotated[
    Group | Attribute | Event | Tag | SegmentRef | DoNotContact,
    PydanticField(discriminator="type"),
]
Group.model_rebuild()


@dataclass(frozen=True)
class RuleError:
    node: str  # "root", "children[0]", "children[1].children[2].time"
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"node": self.node, "message": self.message}


class RulesInvalid(Exception):
    def __init__(self, errors: list[RuleError]) -> None:
        super().__init__("; ".join(f"{e.node}: {e.message}" for e in errors))
        self.errors = errors


@dataclass
class RulesContext:
    """What validation looks up: fields, tags (lower-case name → stored name), segments that
    exist, and the zone that naive date-times are read in."""

    registry: Registry
    tz: ZoneInfo
    tag_names: dict[str, str]
    segment_ids: set[int]


def _path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1 if parts else 0 :] = [f"{parts[-1] if parts else ''}[{item}]"]
        elif item in ("group", "attribute", "event", "tag", "segment", "do_not_contact"):
            continue  # the discriminated union's branch name, not a key
        else:
            parts.append(str(item))
    return ".".join(parts) or "root"


def _depth(raw: Any) -> int:
    """Nesting depth of groups, counted without recursion (the input is untrusted)."""
    deepest, stack = 0, [(raw, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict) and isinstance(node.get("children"), list):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                return depth
            stack.extend((child, depth + 1) for child in node["children"])
    return deepest


def rules_parse(raw: Any) -> Group:
    """The structure only: types, keys, literals. Raises RulesInvalid."""
    if not isinstance(raw, dict) or raw.get("type") != "group":
        raise RulesInvalid(
            [RuleError("root", 'The rules must be a group: {"type": "group", ...}.')]
        )
    if _depth(raw) > MAX_DEPTH:
        raise RulesInvalid([RuleError("root", f"Groups nest at most {MAX_DEPTH} deep.")])
    try:
        return Group.model_validate(raw)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = err["loc"]
            field_name = loc[-1] if loc and isinstance(loc[-1], str) else None
            node = _path(loc[:-1] if field_name else loc)
            message = err["msg"]
            if field_name:
                message = f"{field_name}: {message}"
            errors.append(RuleError(node, message))
        raise RulesInvalid(errors) from None


# --- values ---------------------------------------------------------------------------------


def parse_moment(value: Any, tz: ZoneInfo) -> str:
    """A date ("2024-05-01", kept as a whole day) or a date-time, converted to UTC
    ("2024-05-01T07:30:00Z"); a date-time without an offset is read in ``tz``."""
    if not isinstance(value, str):
        raise ValueError("must be a date (2024-05-01) or a date-time (2024-05-01T09:30).")
    text = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"“{value}” is not a valid date.") from None
        _check_year(day.year)
        return day.isoformat()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"“{value}” is not a date (2024-05-01) or a date-time (2024-05-01T09:30)."
        ) from None
    _check_year(moment.year)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def _check_year(year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError(f"the year must be between {MIN_YEAR} and {MAX_YEAR}.")


def _range_edges(start: str, end: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The first instant a normalised "between" range covers and the first one after it: a
    date is its whole day in ``tz``, a date-time (whole seconds) that one second."""

    def edge(value: str, after: bool) -> datetime:
        if len(value) == 10:
            day = date.fromisoformat(value) + timedelta(days=1 if after else 0)
            return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment + timedelta(seconds=1) if after else moment

    return edge(start, False), edge(end, True)


def _amount(value: Any, minimum: int = 0, unit: str | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number.")
    maximum = MAX_MONTHS if unit == "months" else MAX_AMOUNT
    if not minimum <= value <= maximum:
        raise ValueError(f"must be between {minimum} and {maximum}.")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be non-empty text.")
    if len(value) > MAX_TEXT or "\x00" in value:
        raise ValueError(f"must be at most {MAX_TEXT} characters, without NUL.")
    return value.strip()


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a number.")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number.")
    if abs(value) >= 10**15:
        raise ValueError("must be between -10^15 and 10^15.")
    return value


def _no_value(value: Any) -> None:
    if value not in (None, ""):
        raise ValueError("takes no value.")


def _attribute_value(f_type: str, node: Attribute, ctx: RulesContext, choices) -> Any:
    op, value = node.operator, node.value
    if op in ("is_empty", "is_not_empty"):
        _no_value(value)
        return None
    if f_type == FieldType.DATE:
        if op in RELATIVE_DATE_OPS:
            if node.unit is None:
                raise ValueError("needs a unit: days, weeks or months.")
            return _amount(value, unit=node.unit)
        return parse_moment(value, ctx.tz)
    if f_type == FieldType.NUMBER:
        return _number(value)
    if f_type == FieldType.BOOLEAN:
        if not isinstance(value, bool):
            raise ValueError("must be true or false.")
        return value
    if f_type == FieldType.CHOICE:
        allowed = [c for c, _ in choices]
        if value not in allowed:
            raise ValueError(f"must be one of: {', '.join(allowed)}.")
        return value
    return _text(value)


def _property_value(op: str, value: Any) -> Any:
    if op in ("is_empty", "is_not_empty"):
        _no_value(value)
        return None
    if op in ORDER_OPS:
        return _number(value)
    if op in TEXT_OPS:
        return _text(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return _number(value)
    return _text(value)


def _event_time(time: EventTime, ctx: RulesContext) -> dict[str, Any]:
    op, value = time.operator, time.value
    if op == "any_time":
        _no_value(value)
        return {"operator": op}
    if op in ("within_last", "before_last"):
        if time.unit is None:
            raise ValueError("needs a unit: minutes, hours, days, weeks or months.")
        return {"operator": op, "value": _amount(value, 1, time.unit), "unit": time.unit}
    if op == "between_last":
        if time.unit is None:
            raise ValueError("needs a unit: minutes, hours, days, weeks or months.")
        if not isinstance(value, list) or len(value) != 2:
            raise ValueError("needs two amounts, e.g. [7, 30].")
        low, high = _amount(value[0], 0, time.unit), _amount(value[1], 1, time.unit)
        if low >= high:
            raise ValueError("the first amount must be smaller than the second.")
        return {"operator": op, "value": [low, high], "unit": time.unit}
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise ValueError('needs two dates, e.g. ["2024-01-01", "2024-01-31"].')
        start, end = parse_moment(value[0], ctx.tz), parse_moment(value[1], ctx.tz)
        # Compared as instants: the strings mix days (in the segment's zone) and UTC times.
        first, after_last = _range_edges(start, end, ctx.tz)
        if after_last <= first:
            raise ValueError("the second date must not be before the first.")
        return {"operator": op, "value": [start, end]}
    if time.unit is not None:
        raise ValueError("a date takes no unit.")
    return {"operator": op, "value": parse_moment(value, ctx.tz)}


# --- the semantic pass ------------------------------------------------------------------------


def _at(path: str, child: str) -> str:
    return f"{path}.{child}" if path != "root" else child


class _Checker:
    def __init__(self, ctx: RulesContext, segment_id: int | None) -> None:
        self.ctx = ctx
        self.segment_id = segment_id
        self.errors: list[RuleError] = []
        self.conditions = 0

    def fail(self, node: str, message: str) -> None:
        self.errors.append(RuleError(node, message))

    def group(self, group: Group, path: str) -> dict[str, Any]:
        if not group.children:
            self.fail(path, "A group needs at least one condition.")
        children = []
        for i, child in enumerate(group.children):
            child_path = f"children[{i}]" if path == "root" else f"{path}.children[{i}]"
            if isinstance(child, Group):
                children.append(self.group(child, child_path))
            else:
                self.conditions += 1
                children.append(self.leaf(child, child_path))
        return {
            "type": "group",
            "match": group.match,
            "negate": group.negate,
            "children": children,
        }

    def leaf(self, node: Any, path: str) -> dict[str, Any]:
        try:
            if isinstance(node, Attribute):
                return self.attribute(node, path)
            if isinstance(node, Event):
                return self.event(node, path)
            if isinstance(node, Tag):
                return self.tag(node, path)
            if isinstance(node, DoNotContact):
                return self.do_not_contact(node)
            return self.segment(node, path)
        except ValueError as exc:
            self.fail(path, str(exc))
            return node.model_dump()

    def attribute(self, node: Attribute, path: str) -> dict[str, Any]:
        field = self.ctx.registry.get(node.field)
        if field is None:
            raise ValueError(f"Unknown field “{node.field}”.")
        if node.operator not in field.operators:
            raise ValueError(
                f"“{node.operator}” does not fit {field.label} ({field.type}); use one of: "
                + ", ".join(field.operators)
                + "."
            )
        try:
            value = _attribute_value(field.type, node, self.ctx, field.choices)
        except ValueError as exc:
            raise ValueError(f"{field.label} {node.operator}: the value {exc}") from None
        out: dict[str, Any] = {"type": "attribute", "field": field.key, "operator": node.operator}
        if value is not None:
            out["value"] = value
        if node.operator in RELATIVE_DATE_OPS:
            out["unit"] = node.unit
        elif node.unit is not None:
            raise ValueError(f"“{node.operator}” takes no unit.")
        return out

    def event(self, node: Event, path: str) -> dict[str, Any]:
        name = node.name.strip().casefold()
        if not name.isascii() or not EVENT_NAME_RE.fullmatch(name):
            raise ValueError(f"“{node.name}” is not an event name.")
        try:
            time = _event_time(node.time, self.ctx)
        except ValueError as exc:
            raise ValueError(f"time {node.time.operator}: {exc}") from None
        properties = []
        for i, prop in enumerate(node.properties):
            if prop.operator not in PROPERTY_OPS:
                raise ValueError(f"properties[{i}]: unknown operator “{prop.operator}”.")
            try:
                value = _property_value(prop.operator, prop.value)
            except ValueError as exc:
                raise ValueError(f"properties[{i}] ({prop.key}): the value {exc}") from None
            item: dict[str, Any] = {"key": prop.key, "operator": prop.operator}
            if value is not None:
                item["value"] = value
            properties.append(item)
        return {
            "type": "event",
            "name": name,
            "count": node.count.model_dump(),
            "time": time,
            "properties": properties,
        }

    def tag(self, node: Tag, path: str) -> dict[str, Any]:
        names = []
        for name in node.tags:
            stored = self.ctx.tag_names.get(" ".join(name.split()).lower())
            if stored is None:
                raise ValueError(f"No tag named “{name}”.")
            if stored not in names:
                names.append(stored)
        out: dict[str, Any] = {"type": "tag", "operator": node.operator, "tags": names}
        if node.within is not None:
            try:
                _amount(node.within.value, 1, node.within.unit)
            except ValueError as exc:
                raise ValueError(f"within: the amount {exc}") from None
            out["within"] = node.within.model_dump()
        return out

    def segment(self, node: SegmentRef, path: str) -> dict[str, Any]:
        if node.segment == self.segment_id:
            raise ValueError("A segment cannot refer to itself.")
        if node.segment not in self.ctx.segment_ids:
            raise ValueError(f"No segment with id {node.segment}.")
        return {"type": "segment", "operator": node.operator, "segment": node.segment}

    def do_not_contact(self, node: DoNotContact) -> dict[str, Any]:
        # Sender and account are matched as the list stores them (donotcontact/contacts.py).
        try:
            sender, account = sender_clean(node.sender), account_clean(node.account)
        except ContactInvalid as exc:
            raise ValueError(str(exc)) from None
        out: dict[str, Any] = {
            "type": "do_not_contact",
            "operator": node.operator,
            "channel": node.channel,
        }
        if sender:
            out["sender"] = sender
        if account:
            out["account"] = account
        return out


def rules_clean(raw: Any, ctx: RulesContext, *, segment_id: int | None = None) -> dict[str, Any]:
    """Validate and normalise a rule tree. Cycles through "in segment" are checked by the
    caller (segments/services.py), which knows the other segments' rules."""
    tree = rules_parse(raw)
    checker = _Checker(ctx, segment_id)
    clean = checker.group(tree, "root")
    if checker.conditions > MAX_CONDITIONS:
        checker.fail("root", f"At most {MAX_CONDITIONS} conditions (got {checker.conditions}).")
    if checker.errors:
        raise RulesInvalid(checker.errors)
    return clean


# --- reading a clean tree -------------------------------------------------------------------


def iter_conditions(tree: dict[str, Any]):
    """Every leaf of a clean tree, depth first."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if node["type"] == "group":
            stack.extend(reversed(node["children"]))
        else:
            yield node


@dataclass(frozen=True)
class Dependencies:
    change_kinds: int
    time_based: bool
    segments: tuple[int, ...]
    custom_fields: tuple[tuple[str, str], ...]  # (name, operator) pairs, for indexes


def rules_dependencies(tree: dict[str, Any], registry: Registry) -> Dependencies:
    kinds, time_based = ChangeKind.CREATED, False
    segments: list[int] = []
    custom: list[tuple[str, str]] = []
    for node in iter_conditions(tree):
        kind = node["type"]
        if kind == "attribute":
            field = registry.get(node["field"])
            kinds |= field.change_kind if field else ChangeKind.PROFILE
            time_based |= node["operator"] in RELATIVE_DATE_OPS
            if field and field.custom_name:
                custom.append((field.custom_name, node["operator"]))
        elif kind == "event":
            kinds |= ChangeKind.EVENTS
            time_based |= node["time"]["operator"] in RELATIVE_EVENT_TIME
        elif kind == "tag":
            kinds |= ChangeKind.TAGS
            time_based |= "within" in node
        elif kind == "do_not_contact":
            # A new e-mail or phone number and a list change both move the answer.
            kinds |= ChangeKind.PROFILE | ChangeKind.DO_NOT_CONTACT
        else:
            kinds |= ChangeKind.MEMBERSHIP
            if node["segment"] not in segments:
                segments.append(node["segment"])
    return Dependencies(kinds, time_based, tuple(segments), tuple(custom))

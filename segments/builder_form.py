"""The segment builder's form ⇄ rule tree mapping.

Every input of the builder carries a path-based name. The root group is ``r``, its children
``r.c0``, ``r.c1``, a nested group's children ``r.c1.c0``; a node's inputs add a suffix
(``r.c0.field``, ``r.c0.op``, ``r.c2.p1.key`` for an event's second property filter) and
every node has a ``.kind`` input, which is how the parser finds it.

The form is read leniently into a *draft*: a tree of the rules' shape in which a condition may
be half-filled (no value yet, or a "choose what to filter on" placeholder of type ``pick``) or
hold raw text the rules will refuse. Absolute times in a draft are naive wall-clock times in
the segment's zone, as a datetime-local input shows them; segments/rules.py turns them into UTC
when the rules are cleaned, and ``draft_from_rules`` turns stored UTC back for editing.

``draft_check`` says which conditions are incomplete (a hint, no count yet) or malformed in a
way the rules' schema would refuse wholesale; ``draft_rules`` gives every other condition as a
rule tree for ``services.segment_rules_clean``, with a map from its node paths
(``children[1].children[0]``) back to the form's (``r.c1.c0``) so each error lands next to the
condition it names. ``draft_apply`` performs the structural actions (add, remove, pick).
"""

from __future__ import annotations

import copy
import math
import re
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models.functions import Lower

from events.models import EventType
from segments.fields import ORDER_OPS, RELATIVE_DATE_OPS, TEXT_OPS, FieldType, Registry
from segments.models import Segment
from segments.rules import MAX_DEPTH, MAX_PROPERTIES, PROPERTY_OPS
from tags.models import Tag

ROOT = "r"
MAX_NODES = 300  # form nodes read at most; the rules allow 100 conditions
PATH_RE = re.compile(rf"r(?:\.c\d{{1,3}}){{0,{MAX_DEPTH + 1}}}")
NO_VALUE_OPS = ("is_empty", "is_not_empty")
COUNT_OPS = ("gte", "gt", "eq", "lte", "lt")
TIME_OPS = ("any_time", "within_last", "before_last", "between_last", "after", "before", "between")
TIME_UNITS = ("minutes", "hours", "days", "weeks", "months")
DATE_UNITS = ("days", "weeks", "months")
TAG_OPS = ("has_any", "has_all", "has_none")
SEGMENT_OPS = ("in", "not_in")
DNC_OPS = ("is", "is_not")


@dataclass
class Catalog:
    """What the builder offers: fields, event names with their property keys and types, tags
    and the other segments."""

    registry: Registry
    events: dict[str, dict[str, str]]
    tags: list[str]
    segments: list[tuple[int, str]]

    @classmethod
    def load(cls, exclude_segment: int | None = None) -> Catalog:
        segments = Segment.objects.order_by(Lower("name"), "id")
        if exclude_segment is not None:
            segments = segments.exclude(pk=exclude_segment)
        return cls(
            registry=Registry.load(),
            events={
                name: dict(sorted(properties.items()))
                for name, properties in EventType.objects.order_by("name").values_list(
                    "name", "properties"
                )
            },
            tags=list(Tag.objects.order_by(Lower("name")).values_list("name", flat=True)),
            segments=list(segments.values_list("id", "name")),
        )

    def property_type(self, event: str, key: str) -> str | None:
        """ "number", "boolean" or "string" as the catalog has seen it, or None."""
        return (self.events.get(event) or {}).get(key)


# --- paths ----------------------------------------------------------------------------------


def child_path(path: str, i: int) -> str:
    return f"{path}.c{i}"


def walk(draft: dict[str, Any], path: str = ROOT):
    """(form path, node) for every node, depth first, the root included."""
    yield path, draft
    if draft.get("type") == "group":
        for i, child in enumerate(draft["children"]):
            yield from walk(child, child_path(path, i))


def node_at(draft: dict[str, Any], path: str) -> dict[str, Any] | None:
    if not PATH_RE.fullmatch(path):
        return None
    node = draft
    for part in path.split(".")[1:]:
        children = node.get("children")
        i = int(part[1:])
        if children is None or i >= len(children):
            return None
        node = children[i]
    return node


def dom_id(path: str, prefix: str = "n") -> str:
    """An element id for a path ("r.c0.c1" → "n-r-c0-c1"): no dots, so it works in selectors."""
    return f"{prefix}-{path.replace('.', '-')}"


# --- reading the form -------------------------------------------------------------------------


def _int_or_raw(text: str | None) -> int | str | None:
    text = (text or "").strip()
    if not text:
        return None
    if re.fullmatch(r"[+-]?\d{1,9}", text):
        return int(text)
    return text


def _number_or_raw(text: str | None) -> int | float | str | None:
    text = (text or "").strip()
    if not text:
        return None
    if re.fullmatch(r"[+-]?\d{1,15}", text):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def _bool_or_raw(text: str | None) -> bool | str | None:
    text = (text or "").strip()
    return {"true": True, "false": False, "": None}.get(text, text)


def _text(text: str | None) -> str | None:
    text = (text or "").strip()
    return text or None


def _choice(value: str | None, allowed: tuple[str, ...], default: str) -> str:
    return value if value in allowed else default


def _moment(text: str | None, with_time: bool) -> str | None:
    """A date or datetime-local value, reshaped when the member switched between the two."""
    text = (text or "").strip()
    if not text:
        return None
    if with_time and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return f"{text}T00:00"
    if not with_time and re.match(r"\d{4}-\d{2}-\d{2}T", text):
        return text[:10]
    return text


class _FormReader:
    def __init__(self, data, catalog: Catalog) -> None:
        self.data = data
        self.catalog = catalog
        # parent path → [(index, path)] for every node the form holds.
        self.children: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self.properties: dict[str, list[int]] = defaultdict(list)
        for key in list(data.keys())[: MAX_NODES * 20]:
            if key.endswith(".kind"):
                path = key[: -len(".kind")]
                if path != ROOT and PATH_RE.fullmatch(path):
                    parent, _, last = path.rpartition(".")
                    self.children[parent].append((int(last[1:]), path))
            elif m := re.fullmatch(r"(r(?:\.c\d{1,3})+)\.p(\d{1,2})\.key", key):
                self.properties[m[1]].append(int(m[2]))
        self.nodes = 0

    def get(self, path: str, suffix: str) -> str | None:
        return self.data.get(f"{path}.{suffix}")

    def node(self, path: str) -> dict[str, Any] | None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            return None
        kind = self.get(path, "kind")
        if kind == "group":
            return self.group(path)
        if kind == "attribute":
            return self.attribute(path)
        if kind == "event":
            return self.event(path)
        if kind == "tag":
            return self.tag(path)
        if kind == "segment":
            return self.segment(path)
        if kind == "do_not_contact":
            return self.do_not_contact(path)
        return {"type": "pick"}

    def group(self, path: str) -> dict[str, Any]:
        children = []
        for _, child in sorted(self.children.get(path, [])):
            node = self.node(child)
            if node is not None:
                children.append(node)
        return {
            "type": "group",
            "match": _choice(self.get(path, "match"), ("all", "any"), "all"),
            "negate": bool(self.get(path, "negate")),
            "children": children,
        }

    def attribute(self, path: str) -> dict[str, Any]:
        key = self.get(path, "field") or ""
        spec = self.catalog.registry.get(key)
        op = self.get(path, "op") or ""
        if spec is not None and op not in spec.operators:
            op = spec.operators[0]  # the field changed to one of another type
        node: dict[str, Any] = {"type": "attribute", "field": key, "operator": op, "value": None}
        if spec is None or op in NO_VALUE_OPS:
            node["value"] = _text(self.get(path, "value")) if spec is None else None
        elif spec.type == FieldType.DATE and op in RELATIVE_DATE_OPS:
            node["value"] = _int_or_raw(self.get(path, "amount"))
            node["unit"] = _choice(self.get(path, "unit"), DATE_UNITS, "days")
        elif spec.type == FieldType.DATE:
            node["_time"] = self.get(path, "precision") == "time"
            node["value"] = _moment(self.get(path, "value"), node["_time"])
        elif spec.type == FieldType.NUMBER:
            node["value"] = _number_or_raw(self.get(path, "value"))
        elif spec.type == FieldType.BOOLEAN:
            node["value"] = _bool_or_raw(self.get(path, "value"))
        else:
            node["value"] = _text(self.get(path, "value"))
        return node

    def event(self, path: str) -> dict[str, Any]:
        name = _text(self.get(path, "name")) or ""
        with_time = self.get(path, "t_precision") == "time"
        time_op = _choice(self.get(path, "time_op"), TIME_OPS, "any_time")
        time: dict[str, Any] = {"operator": time_op}
        if time_op in ("within_last", "before_last"):
            time["value"] = _int_or_raw(self.get(path, "t_amount"))
        elif time_op == "between_last":
            time["value"] = [
                _int_or_raw(self.get(path, "t_from")),
                _int_or_raw(self.get(path, "t_to")),
            ]
        elif time_op in ("after", "before"):
            time["value"] = _moment(self.get(path, "t_date"), with_time)
        elif time_op == "between":
            time["value"] = [
                _moment(self.get(path, "t_start"), with_time),
                _moment(self.get(path, "t_end"), with_time),
            ]
        if time_op in ("within_last", "before_last", "between_last"):
            time["unit"] = _choice(self.get(path, "t_unit"), TIME_UNITS, "days")
        properties = []
        for i in sorted(set(self.properties.get(path, [])))[: MAX_PROPERTIES + 5]:
            properties.append(self.property(path, i, name))
        return {
            "type": "event",
            "name": name,
            "count": {
                "operator": _choice(self.get(path, "count_op"), COUNT_OPS, "gte"),
                "value": _int_or_raw(self.get(path, "count")),
            },
            "time": time,
            "properties": properties,
            "_time": with_time,
        }

    def property(self, path: str, i: int, event: str) -> dict[str, Any]:
        prefix = f"p{i}"
        key = (self.get(path, f"{prefix}.key") or "").strip()
        op = _choice(self.get(path, f"{prefix}.op"), PROPERTY_OPS, "is")
        raw = self.get(path, f"{prefix}.value")
        vtype = self.get(path, f"{prefix}.vtype") or self.catalog.property_type(event, key)
        value: Any
        if op in NO_VALUE_OPS:
            value = None
        elif op in ORDER_OPS or (op not in TEXT_OPS and vtype == "number"):
            value = _number_or_raw(raw)
        elif op not in TEXT_OPS and vtype == "boolean":
            value = _bool_or_raw(raw)
        else:
            value = _text(raw)
        return {"key": key, "operator": op, "value": value}

    def tag(self, path: str) -> dict[str, Any]:
        names = []
        for name in self.data.getlist(f"{path}.tags"):
            name = name.strip()
            if name and name not in names:
                names.append(name)
        node: dict[str, Any] = {
            "type": "tag",
            "operator": _choice(self.get(path, "op"), TAG_OPS, "has_any"),
            "tags": names,
        }
        within = _int_or_raw(self.get(path, "within"))
        if within is not None:
            node["within"] = {
                "value": within,
                "unit": _choice(self.get(path, "within_unit"), TIME_UNITS, "days"),
            }
        return node

    def segment(self, path: str) -> dict[str, Any]:
        return {
            "type": "segment",
            "operator": _choice(self.get(path, "op"), SEGMENT_OPS, "in"),
            "segment": _int_or_raw(self.get(path, "segment")),
        }

    def do_not_contact(self, path: str) -> dict[str, Any]:
        # An unknown channel is kept as typed, for the rules to refuse with their message.
        return {
            "type": "do_not_contact",
            "operator": _choice(self.get(path, "op"), DNC_OPS, "is"),
            "channel": _text(self.get(path, "channel")),
            "sender": _text(self.get(path, "sender")),
            "account": _text(self.get(path, "account")),
        }


def empty_draft() -> dict[str, Any]:
    return {"type": "group", "match": "all", "negate": False, "children": []}


def draft_from_form(data, catalog: Catalog) -> dict[str, Any]:
    """The builder's inputs (a QueryDict) as a draft tree; never raises."""
    if data.get(f"{ROOT}.kind") != "group":
        return empty_draft()
    return _FormReader(data, catalog).group(ROOT)


# --- stored rules → draft ---------------------------------------------------------------------


def local_moment(value: Any, tz: ZoneInfo) -> tuple[Any, bool]:
    """A stored moment as the builder shows it: a date stays a date; a UTC date-time becomes
    the wall-clock time in ``tz`` ("2024-05-01T07:30:00Z" → "2024-05-01T09:30" in Paris)."""
    if not isinstance(value, str) or len(value) <= 10:
        return value, False
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value, True
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(tz).replace(tzinfo=None)
    return local.isoformat(timespec="seconds" if local.second else "minutes"), True


def draft_from_rules(tree: dict[str, Any], tz: ZoneInfo, registry: Registry) -> dict[str, Any]:
    """A stored (clean) rule tree as a draft, absolute times shown in the segment's zone."""
    draft = copy.deepcopy(tree)
    for _, node in walk(draft):
        kind = node.get("type")
        if kind == "group":
            node.setdefault("match", "all")
            node.setdefault("negate", False)
        elif kind == "attribute":
            spec = registry.get(node.get("field", ""))
            node.setdefault("value", None)
            if (
                spec is not None
                and spec.type == FieldType.DATE
                and node.get("operator") not in (*RELATIVE_DATE_OPS, *NO_VALUE_OPS)
            ):
                node["value"], node["_time"] = local_moment(node["value"], tz)
        elif kind == "do_not_contact":
            node.setdefault("channel", None)
            node.setdefault("sender", None)
            node.setdefault("account", None)
        elif kind == "event":
            node.setdefault("count", {"operator": "gte", "value": 1})
            time = node.setdefault("time", {"operator": "any_time"})
            node.setdefault("properties", [])
            node["_time"] = False
            if time["operator"] in ("after", "before"):
                time["value"], node["_time"] = local_moment(time.get("value"), tz)
            elif time["operator"] == "between" and isinstance(time.get("value"), list):
                moments = [local_moment(v, tz) for v in time["value"]]
                node["_time"] = any(t for _, t in moments)
                if node["_time"]:
                    # One precision for both ends: a whole day becomes its first or last second.
                    ends = zip(moments, ("T00:00", "T23:59:59"), strict=False)
                    moments = [(m if t else f"{m}{day}", True) for (m, t), day in ends]
                time["value"] = [m for m, _ in moments]
    return draft


# --- draft → rules ----------------------------------------------------------------------------


def _strip(node: dict[str, Any]) -> dict[str, Any]:
    """A leaf as the rules' schema takes it: without the form's own keys."""
    out = {k: v for k, v in node.items() if not k.startswith("_")}
    if out["type"] == "attribute" and out.get("value") is None:
        out.pop("value")
    if out["type"] == "do_not_contact":
        out = {k: v for k, v in out.items() if not (k in ("sender", "account") and v is None)}
    if out["type"] == "event":
        out["properties"] = [
            {k: v for k, v in p.items() if not (k == "value" and v is None)}
            for p in out["properties"]
        ]
        if out["time"]["operator"] == "any_time":
            out["time"] = {"operator": "any_time"}
    return out


def draft_rules(
    draft: dict[str, Any], held_back: Collection[str] = ()
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The draft's judgeable part as a rule tree, and rule path → form path. Conditions held
    back (by form path: incomplete or malformed, see segments/builder_draft.py) are left out;
    a group left with none of its conditions goes too (it is not empty, only unfinished), and
    None means nothing is left to judge."""
    paths: dict[str, str] = {}

    def prune(node: dict[str, Any], form_path: str, rule_path: str) -> dict[str, Any] | None:
        if node.get("type") != "group":
            if form_path in held_back:
                return None
            paths[rule_path] = form_path
            return _strip(node)
        children = []
        for i, child in enumerate(node["children"]):
            index = len(children)
            sub = f"children[{index}]" if rule_path == "root" else f"{rule_path}.children[{index}]"
            kept = prune(child, child_path(form_path, i), sub)
            if kept is not None:
                children.append(kept)
        if node["children"] and not children:
            return None
        paths[rule_path] = form_path
        return {
            "type": "group",
            "match": node["match"],
            "negate": node["negate"],
            "children": children,
        }

    tree = prune(draft, ROOT, "root")
    return tree, paths


def form_path_for(rule_node: str, paths: dict[str, str]) -> str:
    """The form path an error's node names ("children[0].time" → "r.c0")."""
    node = rule_node
    while node not in paths and "." in node:
        node = node.rsplit(".", 1)[0]
    return paths.get(node, ROOT)

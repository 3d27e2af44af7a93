"""What a builder draft (segments/builder_form.py) still lacks, and the structural actions
on it: add a condition or a group, remove one, pick what a new condition filters on, add or
remove an event's property filters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from donotcontact.models import Channel
from segments.builder_form import NO_VALUE_OPS, Catalog, node_at, walk
from segments.fields import RELATIVE_DATE_OPS, FieldType, Registry
from segments.rules import MAX_DEPTH, MAX_PROPERTIES, MAX_TAGS

MAX_COUNT = 1_000_000


# --- checking ---------------------------------------------------------------------------------


@dataclass
class Check:
    """Conditions the rules cannot judge yet: ``incomplete`` ones wait for input (a hint);
    ``problems`` hold input the rules' schema would refuse outright (an error)."""

    incomplete: dict[str, str] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def held_back(self) -> set[str]:
        """Form paths the rules cannot judge yet."""
        return {*self.incomplete, *self.problems}


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _missing(value: Any) -> bool:
    return value is None or value == ""


def _check_event(node: dict[str, Any]) -> tuple[str, str] | None:
    """("incomplete" | "problem", message) for an event condition, or None."""
    if not node["name"]:
        return "incomplete", "Choose an event."
    count = node["count"]["value"]
    if count is None:
        return "incomplete", "Enter how many times."
    if not _whole(count, 0, MAX_COUNT):
        return "problem", f"The count must be a whole number from 0 to {MAX_COUNT:,}."
    time = node["time"]
    value = time.get("value")
    if time["operator"] != "any_time":
        parts = value if isinstance(value, list) else [value]
        if any(_missing(v) for v in parts):
            return "incomplete", "Complete the time."
    if len(node["properties"]) > MAX_PROPERTIES:
        return "problem", f"At most {MAX_PROPERTIES} property filters."
    for prop in node["properties"]:
        if not prop["key"]:
            return "incomplete", "Choose a property."
        if len(prop["key"]) > 255:
            return "problem", "A property key has at most 255 characters."
        if prop["operator"] not in NO_VALUE_OPS and _missing(prop["value"]):
            return "incomplete", f"Enter a value for {prop['key']}."
    return None


def _check_leaf(node: dict[str, Any], registry: Registry) -> tuple[str, str] | None:
    kind = node.get("type")
    if kind == "pick":
        return "incomplete", "Choose what to filter on."
    if kind == "attribute":
        if not node["field"]:
            return "incomplete", "Choose a field."
        spec = registry.get(node["field"])
        if spec is not None and node["operator"] not in NO_VALUE_OPS and _missing(node["value"]):
            if spec.type == FieldType.DATE and node["operator"] in RELATIVE_DATE_OPS:
                return "incomplete", "Enter an amount."
            if spec.type == FieldType.DATE:
                return "incomplete", "Choose a date."
            return "incomplete", "Enter a value."
        return None
    if kind == "event":
        return _check_event(node)
    if kind == "tag":
        if not node["tags"]:
            return "incomplete", "Choose at least one tag."
        if len(node["tags"]) > MAX_TAGS:
            return "problem", f"At most {MAX_TAGS} tags."
        within = node.get("within")
        if within is not None and not _whole(within["value"], 1, 100_000):
            return "problem", "“Added within” must be a whole number from 1 to 100,000."
        return None
    if kind == "segment":
        if node["segment"] is None:
            return "incomplete", "Choose a segment."
        if not _whole(node["segment"], 1, 2**31):
            return "problem", "Choose a segment from the list."
    return None


def draft_check(draft: dict[str, Any], registry: Registry) -> Check:
    check = Check()
    for path, node in walk(draft):
        if node.get("type") == "group":
            continue
        verdict = _check_leaf(node, registry)
        if verdict is not None:
            kind, message = verdict
            (check.incomplete if kind == "incomplete" else check.problems)[path] = message
    return check


# --- structural actions -----------------------------------------------------------------------


def default_condition(kind: str, key: str, catalog: Catalog) -> dict[str, Any] | None:
    """A new condition for what the member picked, or None if it is not on offer."""
    if kind == "attribute":
        spec = catalog.registry.get(key)
        if spec is None:
            return None
        value = True if spec.type == FieldType.BOOLEAN else None
        node = {"type": "attribute", "field": key, "operator": "is", "value": value}
        if spec.type == FieldType.DATE:
            node["_time"] = False
        return node
    if kind == "event":
        if key not in catalog.events:
            return None
        return {
            "type": "event",
            "name": key,
            "count": {"operator": "gte", "value": 1},
            "time": {"operator": "any_time"},
            "properties": [],
            "_time": False,
        }
    if kind == "tag":
        if key not in catalog.tags:
            return None
        return {"type": "tag", "operator": "has_any", "tags": [key]}
    if kind == "segment":
        if not key.isdigit() or int(key) not in {pk for pk, _ in catalog.segments}:
            return None
        return {"type": "segment", "operator": "in", "segment": int(key)}
    if kind == "do_not_contact":
        # "any" (or a channel) is what the picker offers; a condition is complete as picked.
        if key != "any" and key not in Channel.values:
            return None
        channel = None if key == "any" else key
        return {
            "type": "do_not_contact",
            "operator": "is",
            "channel": channel,
            "sender": None,
            "account": None,
        }
    return None


def _parent(draft: dict[str, Any], path: str) -> tuple[dict[str, Any] | None, int]:
    parent_path, _, last = path.rpartition(".")
    if not parent_path or not last.startswith("c"):
        return None, -1
    parent = node_at(draft, parent_path)
    index = int(last[1:]) if last[1:].isdigit() else -1
    if parent is None or parent.get("type") != "group" or not 0 <= index < len(parent["children"]):
        return None, -1
    return parent, index


def _depth(path: str) -> int:
    return path.count(".") + 1


def draft_apply(draft: dict[str, Any], action: str, catalog: Catalog) -> dict[str, Any]:
    """Apply one structural action (the value of the button pressed) to the draft, in place:

    ``add:<group>`` a new condition to pick · ``group:<group>`` a nested group ·
    ``remove:<node>`` · ``pick:<node>:<kind>:<key>`` what a new condition filters on ·
    ``prop:<event>`` a property filter · ``unprop:<event>:<i>`` · anything else: nothing
    (the form is only re-read and re-drawn, e.g. after a field or operator changed).
    Unknown paths are ignored: the form may be older than the tree."""
    verb, _, rest = action.partition(":")
    if verb in ("add", "group"):
        group = node_at(draft, rest)
        if group is not None and group.get("type") == "group":
            if verb == "add":
                group["children"].append({"type": "pick"})
            elif _depth(rest) < MAX_DEPTH:
                group["children"].append(
                    {
                        "type": "group",
                        "match": "all",
                        "negate": False,
                        "children": [{"type": "pick"}],
                    }
                )
    elif verb == "remove":
        parent, index = _parent(draft, rest)
        if parent is not None:
            del parent["children"][index]
    elif verb == "pick":
        path, _, choice = rest.partition(":")
        kind, _, key = choice.partition(":")
        parent, index = _parent(draft, path)
        if parent is not None and parent["children"][index].get("type") == "pick":
            node = default_condition(kind, key, catalog)
            if node is not None:
                parent["children"][index] = node
    elif verb == "prop":
        node = node_at(draft, rest)
        if _is_event(node) and len(node["properties"]) < MAX_PROPERTIES:
            keys = list(catalog.events.get(node["name"]) or {})
            used = {p["key"] for p in node["properties"]}
            key = next((k for k in keys if k not in used), keys[0] if keys else "")
            node["properties"].append({"key": key, "operator": "is", "value": None})
    elif verb == "unprop":
        path, _, index = rest.rpartition(":")
        node = node_at(draft, path)
        if _is_event(node) and index.isdigit() and int(index) < len(node["properties"]):
            del node["properties"][int(index)]
    return draft


def _is_event(node: dict[str, Any] | None) -> bool:
    return node is not None and node.get("type") == "event"

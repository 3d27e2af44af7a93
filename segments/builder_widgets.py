"""The builder's editor as the template draws it: each node of a draft (segments/builder_form.py)
becomes a small dict of inputs ("widgets") named by the node's form path, with the labels and
choices that fit its type, so the template only loops and the form ⇄ draft mapping lives next
to its parser."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from donotcontact.models import Channel
from segments.builder_form import (
    COUNT_OPS,
    DATE_UNITS,
    DNC_OPS,
    NO_VALUE_OPS,
    SEGMENT_OPS,
    TAG_OPS,
    TIME_OPS,
    TIME_UNITS,
    Catalog,
    child_path,
    dom_id,
)
from segments.fields import (
    OPERATOR_LABELS,
    ORDER_OPS,
    RELATIVE_DATE_OPS,
    TEXT_OPS,
    FieldType,
)
from segments.rules import MAX_DEPTH, MAX_PROPERTIES, PROPERTY_OPS

GROUP_LABELS = {
    "profile": "Profile fields",
    "custom": "Custom fields",
    "analytics": "Analytics fields",
}
BADGES = {"profile": "Profile", "custom": "Custom field", "analytics": "Analytics"}
TYPE_NOTES = {
    FieldType.TEXT: "text",
    FieldType.MULTI_TEXT: "text",
    FieldType.NUMBER: "number",
    FieldType.DATE: "date",
    FieldType.BOOLEAN: "yes / no",
    FieldType.CHOICE: "choice",
}
COUNT_LABELS = {
    "eq": "exactly",
    "lt": "fewer than",
    "lte": "at most",
    "gte": "at least",
    "gt": "more than",
}
TIME_LABELS = {
    "any_time": "at any time",
    "within_last": "in the last",
    "before_last": "before the last",
    "between_last": "between the last",
    "after": "after",
    "before": "before",
    "between": "between",
}
TAG_LABELS = {"has_any": "has any of", "has_all": "has all of", "has_none": "has none of"}
SEGMENT_LABELS = {"in": "is in", "not_in": "is not in"}
DNC_LABELS = {"is": "is on", "is_not": "is not on"}
ANY_CHANNEL = "any channel"
# Words after a relative date amount, as the reference's table reads them.
RELATIVE_SUFFIX = {
    "will_be_in": "from today",
    "will_be_within": "from today",
    "will_be_more_than": "from today",
    "was": "ago",
    "was_within": "before today",
    "was_more_than": "ago",
}
PRECISIONS = [("day", "whole day"), ("time", "at a time")]


@dataclass
class NodeStatus:
    """What the editor shows under a node: a hint (waiting for input), errors, and for a
    top-level condition the count of customers after it."""

    hint: str = ""
    errors: list[str] = field(default_factory=list)
    count: int | None = None


def _s(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def select(name: str, options, value: Any, label: str, *, rebuild=False, blank="", **extra):
    return {
        "kind": "select",
        "name": name,
        "options": [(_s(v), text) for v, text in options],
        "value": _s(value),
        "label": label,
        "rebuild": rebuild,
        "blank": blank,
        **extra,
    }


def grouped(name: str, groups, value: Any, label: str, *, rebuild=False, blank=""):
    widget = select(name, [], value, label, rebuild=rebuild, blank=blank)
    widget["groups"] = [(title, [(_s(v), text) for v, text in opts]) for title, opts in groups]
    return widget


def entry(kind: str, name: str, value: Any, label: str, **extra) -> dict[str, Any]:
    """kind: text | number | date | datetime | hidden."""
    return {"kind": kind, "name": name, "value": _s(value), "label": label, **extra}


def word(text: str) -> dict[str, Any]:
    return {"kind": "word", "text": text}


def _labelled(ops, labels) -> list[tuple[str, str]]:
    return [(op, labels[op]) for op in ops]


def _moment_input(name: str, value: Any, with_time: bool, label: str) -> dict[str, Any]:
    return entry("datetime" if with_time else "date", name, value, label)


# --- conditions -------------------------------------------------------------------------------


def field_groups(catalog: Catalog) -> list[tuple[str, list[tuple[str, str]]]]:
    return [
        (GROUP_LABELS[group], [(f.key, f.label) for f in fields])
        for group, fields in catalog.registry.by_group().items()
        if fields
    ]


def _attribute(node: dict[str, Any], path: str, catalog: Catalog) -> dict[str, Any]:
    spec = catalog.registry.get(node["field"])
    groups = field_groups(catalog)
    if spec is None:
        groups.append(("No longer available", [(node["field"], f"{node['field']} (deleted)")]))
    widgets = [grouped(f"{path}.field", groups, node["field"], "Field", rebuild=True)]
    op, value = node["operator"], node.get("value")
    if spec is None:
        widgets.append(entry("hidden", f"{path}.op", op, "Operator"))
        widgets.append(entry("hidden", f"{path}.value", value, "Value"))
        return {"badge": "Field", "lines": [widgets]}
    widgets.append(
        select(
            f"{path}.op", _labelled(spec.operators, OPERATOR_LABELS), op, "Operator", rebuild=True
        )
    )
    label = f"{spec.label} value"
    if op in NO_VALUE_OPS:
        pass
    elif spec.type == FieldType.DATE and op in RELATIVE_DATE_OPS:
        widgets += [
            entry("number", f"{path}.amount", value, "Amount", min="0", step="1", cls="amount"),
            select(f"{path}.unit", [(u, u) for u in DATE_UNITS], node.get("unit"), "Unit"),
            word(RELATIVE_SUFFIX[op]),
        ]
    elif spec.type == FieldType.DATE:
        with_time = bool(node.get("_time"))
        widgets += [
            _moment_input(f"{path}.value", value, with_time, label),
            select(
                f"{path}.precision",
                PRECISIONS,
                "time" if with_time else "day",
                "Precision",
                rebuild=True,
                cls="quiet",
            ),
        ]
    elif spec.type == FieldType.NUMBER:
        widgets.append(entry("number", f"{path}.value", value, label, step="any"))
    elif spec.type == FieldType.BOOLEAN:
        widgets.append(select(f"{path}.value", [(True, "yes"), (False, "no")], value, label))
    elif spec.type == FieldType.CHOICE:
        widgets.append(select(f"{path}.value", spec.choices, value, label, blank="Choose…"))
    else:
        hint = "one of its comma-separated values" if op == "has_value" else ""
        widgets.append(entry("text", f"{path}.value", value, label, placeholder=hint or "Value"))
    return {"badge": BADGES[spec.group], "lines": [widgets]}


def _time_widgets(node: dict[str, Any], path: str) -> list[dict[str, Any]]:
    time = node["time"]
    op, value = time["operator"], time.get("value")
    widgets = [
        select(f"{path}.time_op", _labelled(TIME_OPS, TIME_LABELS), op, "When", rebuild=True)
    ]
    unit = select(f"{path}.t_unit", [(u, u) for u in TIME_UNITS], time.get("unit"), "Time unit")
    with_time = bool(node.get("_time"))
    precision = select(
        f"{path}.t_precision",
        PRECISIONS,
        "time" if with_time else "day",
        "Precision",
        rebuild=True,
        cls="quiet",
    )
    pair = value if isinstance(value, list) and len(value) == 2 else [None, None]
    if op in ("within_last", "before_last"):
        widgets += [
            entry("number", f"{path}.t_amount", value, "Amount", min="1", step="1", cls="amount"),
            unit,
        ]
    elif op == "between_last":
        widgets += [
            entry("number", f"{path}.t_from", pair[0], "From", min="0", step="1", cls="amount"),
            word("and"),
            entry("number", f"{path}.t_to", pair[1], "To", min="1", step="1", cls="amount"),
            unit,
            word("ago"),
        ]
    elif op in ("after", "before"):
        widgets += [_moment_input(f"{path}.t_date", value, with_time, "Date"), precision]
    elif op == "between":
        widgets += [
            _moment_input(f"{path}.t_start", pair[0], with_time, "Start"),
            word("and"),
            _moment_input(f"{path}.t_end", pair[1], with_time, "End"),
            precision,
        ]
    return widgets


def _property_vtype(catalog_type: str | None, value: Any) -> str:
    if catalog_type in ("number", "boolean", "string"):
        return catalog_type
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


def _property(node: dict[str, Any], path: str, i: int, catalog: Catalog) -> dict[str, Any]:
    prop = node["properties"][i]
    name = f"{path}.p{i}"
    keys = list(catalog.events.get(node["name"]) or {})
    if prop["key"] and prop["key"] not in keys:
        keys.append(prop["key"])
    if keys:
        key = select(f"{name}.key", [(k, k) for k in keys], prop["key"], "Property", rebuild=True)
    else:
        key = entry("text", f"{name}.key", prop["key"], "Property", placeholder="property")
    op, value = prop["operator"], prop.get("value")
    vtype = _property_vtype(catalog.property_type(node["name"], prop["key"]), value)
    widgets = [
        word("where"),
        key,
        select(
            f"{name}.op",
            _labelled(PROPERTY_OPS, OPERATOR_LABELS),
            op,
            "Property operator",
            rebuild=True,
        ),
        entry("hidden", f"{name}.vtype", vtype, "Property type"),
    ]
    label = f"{prop['key'] or 'Property'} value"
    if op in NO_VALUE_OPS:
        pass
    elif op in ORDER_OPS or (op not in TEXT_OPS and vtype == "number"):
        widgets.append(entry("number", f"{name}.value", value, label, step="any"))
    elif op not in TEXT_OPS and vtype == "boolean":
        widgets.append(select(f"{name}.value", [(True, "true"), (False, "false")], value, label))
    else:
        widgets.append(entry("text", f"{name}.value", value, label, placeholder="Value"))
    return {"widgets": widgets, "remove": f"unprop:{path}:{i}", "label": prop["key"] or "property"}


def _event(node: dict[str, Any], path: str, catalog: Catalog) -> dict[str, Any]:
    names = list(catalog.events)
    if node["name"] and node["name"] not in catalog.events:
        names.append(node["name"])
    first = [
        word("did"),
        select(
            f"{path}.name",
            [(n, n) for n in names],
            node["name"],
            "Event",
            rebuild=True,
            blank="Choose…",
            cls="mono",
        ),
        select(
            f"{path}.count_op",
            _labelled(COUNT_OPS, COUNT_LABELS),
            node["count"]["operator"],
            "How often",
        ),
        entry(
            "number",
            f"{path}.count",
            node["count"]["value"],
            "Times",
            min="0",
            step="1",
            cls="amount",
        ),
        word("times"),
    ]
    return {
        "badge": "Event",
        "lines": [first, _time_widgets(node, path)],
        "props": [_property(node, path, i, catalog) for i in range(len(node["properties"]))],
        "can_add_prop": len(node["properties"]) < MAX_PROPERTIES and bool(node["name"]),
    }


def _tag(node: dict[str, Any], path: str, catalog: Catalog) -> dict[str, Any]:
    # The chosen tags first, in their order (a round trip keeps the rules as they were).
    options = list(node["tags"]) + [t for t in catalog.tags if t not in node["tags"]]
    within = node.get("within") or {}
    return {
        "badge": "Tags",
        "lines": [
            [
                word("customer"),
                select(
                    f"{path}.op", _labelled(TAG_OPS, TAG_LABELS), node["operator"], "Tag operator"
                ),
            ],
            [
                {
                    "kind": "checks",
                    "name": f"{path}.tags",
                    "options": options,
                    "values": set(node["tags"]),
                    "label": "Tags",
                }
            ],
            [
                word("added in the last"),
                entry(
                    "number",
                    f"{path}.within",
                    within.get("value"),
                    "Added within",
                    min="1",
                    step="1",
                    placeholder="any",
                    cls="amount",
                ),
                select(
                    f"{path}.within_unit",
                    [(u, u) for u in TIME_UNITS],
                    within.get("unit", "days"),
                    "Within unit",
                ),
                word("(optional)"),
            ],
        ],
    }


def _segment(node: dict[str, Any], path: str, catalog: Catalog) -> dict[str, Any]:
    options = list(catalog.segments)
    if node["segment"] is not None and node["segment"] not in {pk for pk, _ in options}:
        options.append((node["segment"], f"Segment {node['segment']} (not available)"))
    return {
        "badge": "Segment",
        "lines": [
            [
                word("customer"),
                select(
                    f"{path}.op",
                    _labelled(SEGMENT_OPS, SEGMENT_LABELS),
                    node["operator"],
                    "Segment operator",
                ),
                select(
                    f"{path}.segment",
                    options,
                    node["segment"],
                    "Segment",
                    blank="Choose a segment…",
                ),
            ]
        ],
    }


def _do_not_contact(node: dict[str, Any], path: str) -> dict[str, Any]:
    channels = [("", ANY_CHANNEL), *Channel.choices]
    channel = node.get("channel") or ""
    if channel and channel not in Channel.values:
        channels.append((channel, f"{channel} (unknown)"))
    return {
        "badge": "Do Not Contact",
        "lines": [
            [
                word("customer"),
                select(
                    f"{path}.op", _labelled(DNC_OPS, DNC_LABELS), node["operator"], "DNC operator"
                ),
                word("the Do Not Contact list for"),
                select(f"{path}.channel", channels, channel, "Channel"),
            ],
            [
                word("as seen by sender"),
                entry(
                    "text", f"{path}.sender", node.get("sender"), "Sender", placeholder="any sender"
                ),
                word("and account"),
                entry(
                    "text",
                    f"{path}.account",
                    node.get("account"),
                    "Account",
                    placeholder="any account",
                ),
                word("(optional)"),
            ],
        ],
    }


def picker(path: str, catalog: Catalog) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """The searchable lists a new condition is picked from: (group, [(action, label, note)])."""
    groups = [
        (
            GROUP_LABELS[group],
            [(f"pick:{path}:attribute:{f.key}", f.label, TYPE_NOTES[f.type]) for f in fields],
        )
        for group, fields in catalog.registry.by_group().items()
    ]
    groups.append(("Events", [(f"pick:{path}:event:{n}", n, "event") for n in catalog.events]))
    groups.append(("Tags", [(f"pick:{path}:tag:{t}", t, "tag") for t in catalog.tags]))
    groups.append(
        (
            "Segments",
            [(f"pick:{path}:segment:{pk}", name, "segment") for pk, name in catalog.segments],
        )
    )
    # "Any channel" first (Enter in the search picks the first match), then each channel, so
    # a search for "sms" or "push" finds the list too.
    listed = [(f"pick:{path}:do_not_contact:any", "On the Do Not Contact list", "any channel")]
    listed += [
        (f"pick:{path}:do_not_contact:{value}", f"On the Do Not Contact list for {label}", label)
        for value, label in Channel.choices
    ]
    groups.append(("Do Not Contact", listed))
    return [(title, items) for title, items in groups if items]


def _leaf(node: dict[str, Any], path: str, catalog: Catalog) -> dict[str, Any]:
    kind = node["type"]
    if kind == "attribute":
        model = _attribute(node, path, catalog)
    elif kind == "event":
        model = _event(node, path, catalog)
    elif kind == "tag":
        model = _tag(node, path, catalog)
    elif kind == "segment":
        model = _segment(node, path, catalog)
    elif kind == "do_not_contact":
        model = _do_not_contact(node, path)
    else:
        model = {"badge": "New filter", "picker": picker(path, catalog), "lines": []}
    model.setdefault("props", [])
    return {"type": kind, **model}


def editor(
    draft: dict[str, Any], catalog: Catalog, statuses: dict[str, NodeStatus], path: str = "r"
) -> dict[str, Any]:
    """The draft's root group (or the node at ``path``) as the template's model."""
    status = statuses.get(path) or NodeStatus()
    base = {
        "path": path,
        "id": dom_id(path),
        "status_id": dom_id(path, "st"),
        "count_id": dom_id(path, "ct"),
        "status": status,
    }
    if draft["type"] != "group":
        return {**base, **_leaf(draft, path, catalog)}
    depth = path.count(".")
    return {
        **base,
        "type": "group",
        "is_root": path == "r",
        "match": draft["match"],
        "negate": draft["negate"],
        "joiner": "and" if draft["match"] == "all" else "or",
        "can_nest": depth + 1 < MAX_DEPTH,
        "children": [
            editor(child, catalog, statuses, child_path(path, i))
            for i, child in enumerate(draft["children"])
        ],
    }

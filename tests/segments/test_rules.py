"""Rule validation and normalisation (segments/rules.py), through segment_rules_clean as a save
does: fields, tags and segments come from the database. Every error names its node."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from customers.models import CustomField
from segments.fields import ChangeKind, Registry
from segments.models import Segment
from segments.rules import MAX_CONDITIONS, MAX_DEPTH, RulesInvalid, rules_clean, rules_dependencies
from segments.services import rules_context, segment_rules_clean
from tags.models import Tag


@pytest.fixture(autouse=True)
def catalog(db):
    for name, kind in [
        ("score", "number"),
        ("interests", "text"),
        ("renewal", "date"),
        ("vip", "boolean"),
    ]:
        CustomField.objects.create(name=name, label=name.title(), type=kind)
    CustomField.objects.create(
        name="gone", label="Gone", type="text", deleted_at=datetime(2024, 1, 1, tzinfo=UTC)
    )
    Tag.objects.create(name="VIP Gold")
    Tag.objects.create(name="beta")


def root(*children: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "group", "children": list(children), **extra}


def attr(field: str, operator: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    node = {"type": "attribute", "field": field, "operator": operator, **extra}
    if value is not None:
        node["value"] = value
    return node


def event(**extra: Any) -> dict[str, Any]:
    return {"type": "event", "name": "purchase", **extra}


def errors(raw: Any, tz: str = "UTC", segment_id: int | None = None) -> list[tuple[str, str]]:
    with pytest.raises(RulesInvalid) as exc:
        segment_rules_clean(raw, tz, segment_id)
    return [(e.node, e.message) for e in exc.value.errors]


def clean(raw: Any, tz: str = "UTC") -> dict[str, Any]:
    return segment_rules_clean(raw, tz)


# --- one condition, one error ---------------------------------------------------------------

INVALID = [
    # Fields and operators.
    ("unknown field", attr("favourite_colour", "is", "red"), "Unknown field “favourite_colour”"),
    ("unknown custom field", attr("custom.nope", "is", "x"), "Unknown field “custom.nope”"),
    ("deleted custom field", attr("custom.gone", "is", "x"), "Unknown field “custom.gone”"),
    ("contains on a number", attr("custom.score", "contains", "1"), "“contains” does not fit"),
    ("has_value on standard text", attr("city", "has_value", "x"), "“has_value” does not fit"),
    ("lt on text", attr("city", "lt", "x"), "“lt” does not fit"),
    ("lt on a boolean", attr("custom.vip", "lt", True), "“lt” does not fit"),
    ("starts_with on a date", attr("last_seen", "starts_with", "2024"), "does not fit"),
    ("relative on a number", attr("custom.score", "was", 3, unit="days"), "“was” does not fit"),
    ("contains on a choice", attr("user_type", "contains", "li"), "does not fit"),
    ("an unknown operator", attr("city", "like", "x"), "“like” does not fit"),
    # Values of the wrong type.
    ("string for a number", attr("custom.score", "gt", "10"), "must be a number"),
    ("bool for a number", attr("custom.score", "is", True), "must be a number"),
    ("a number too large", attr("custom.score", "is", 10**15), "between -10^15 and 10^15"),
    ("infinity", attr("custom.score", "lt", float("inf")), "must be a finite number"),
    ("number for text", attr("city", "is", 3), "must be non-empty text"),
    ("blank text", attr("city", "contains", "   "), "must be non-empty text"),
    ("text with NUL", attr("city", "is", "a\x00b"), "without NUL"),
    ("text too long", attr("city", "is", "x" * 1001), "at most 1000 characters"),
    ("a missing value", attr("city", "is"), "must be non-empty text"),
    ("string for a boolean", attr("custom.vip", "is", "true"), "must be true or false"),
    ("not a choice", attr("user_type", "is", "admin"), "must be one of: live, test"),
    ("not a date", attr("last_seen", "after", "yesterday"), "is not a date"),
    ("an impossible date", attr("custom.renewal", "is", "2024-02-30"), "not a valid date"),
    ("a number for a date", attr("last_seen", "before", 20240101), "must be a date"),
    ("year 1 cannot be compiled", attr("last_seen", "before", "0001-01-01"), "year must be"),
    ("year 9999 cannot be compiled", attr("last_seen", "until", "9999-12-31"), "year must be"),
    ("relative without a unit", attr("last_seen", "was", 3), "needs a unit"),
    ("relative with a bad unit", attr("last_seen", "was", 3, unit="hours"), "unit"),
    ("relative with text", attr("last_seen", "was", "3", unit="days"), "whole number"),
    ("relative with a bool", attr("last_seen", "was", True, unit="days"), "whole number"),
    ("relative negative", attr("last_seen", "was", -1, unit="days"), "between 0 and 100000"),
    ("too many months", attr("last_seen", "was", 12_001, unit="months"), "between 0 and 12000"),
    (
        "a unit on an absolute date",
        attr("last_seen", "before", "2024-01-01", unit="days"),
        "no unit",
    ),
    ("a unit on text", attr("city", "is", "x", unit="days"), "takes no unit"),
    ("is_empty with a value", attr("city", "is_empty", "x"), "takes no value"),
    ("is_not_empty with a value", attr("custom.score", "is_not_empty", 0), "takes no value"),
    # Events.
    ("an event name with spaces", {"type": "event", "name": "buy now"}, "is not an event name"),
    ("a non-ASCII event name", {"type": "event", "name": "café"}, "is not an event name"),
    ("an empty event name", {"type": "event", "name": " "}, "is not an event name"),
    (
        "within_last without a unit",
        event(time={"operator": "within_last", "value": 3}),
        "time within_last: needs a unit",
    ),
    (
        "within_last zero",
        event(time={"operator": "within_last", "value": 0, "unit": "days"}),
        "between 1 and 100000",
    ),
    (
        "within_last too many months",
        event(time={"operator": "within_last", "value": 100_000, "unit": "months"}),
        "between 1 and 12000",
    ),
    (
        "between_last in the wrong order",
        event(time={"operator": "between_last", "value": [30, 7], "unit": "days"}),
        "the first amount must be smaller",
    ),
    (
        "between_last with one amount",
        event(time={"operator": "between_last", "value": 7, "unit": "days"}),
        "needs two amounts",
    ),
    (
        "between with the end first",
        event(time={"operator": "between", "value": ["2024-02-01", "2024-01-31"]}),
        "must not be before the first",
    ),
    (
        "between, an instant after the end of a day",
        event(time={"operator": "between", "value": ["2024-02-02T00:00:00Z", "2024-02-01"]}),
        "must not be before the first",
    ),
    (
        "between with one date",
        event(time={"operator": "between", "value": "2024-01-31"}),
        "needs two dates",
    ),
    (
        "after with a unit",
        event(time={"operator": "after", "value": "2024-01-01", "unit": "days"}),
        "a date takes no unit",
    ),
    ("after with no date", event(time={"operator": "after"}), "must be a date"),
    ("any_time with a value", event(time={"operator": "any_time", "value": 3}), "no value"),
    (
        "a property operator that does not exist",
        event(properties=[{"key": "plan", "operator": "has_value", "value": "x"}]),
        "properties[0]: unknown operator “has_value”",
    ),
    (
        "a property compared with text by order",
        event(properties=[{"key": "amount", "operator": "gt", "value": "100"}]),
        "properties[0] (amount): the value must be a number",
    ),
    (
        "a property contains a number",
        event(properties=[{"key": "plan", "operator": "contains", "value": 3}]),
        "must be non-empty text",
    ),
    (
        "a property is_empty with a value",
        event(properties=[{"key": "plan", "operator": "is_empty", "value": "x"}]),
        "takes no value",
    ),
    # Tags and segments.
    ("an unknown tag", {"type": "tag", "operator": "has_any", "tags": ["nope"]}, "No tag named"),
    (
        "a tag window of too many months",
        {
            "type": "tag",
            "operator": "has_any",
            "tags": ["beta"],
            "within": {"value": 12_001, "unit": "months"},
        },
        "within: the amount must be between 1 and 12000",
    ),
    ("an unknown segment", {"type": "segment", "operator": "in", "segment": 999_999}, "No segment"),
]


@pytest.mark.parametrize(
    ("condition", "fragment"), [pytest.param(c, f, id=name) for name, c, f in INVALID]
)
def test_an_invalid_condition_is_named(condition, fragment):
    found = errors(root(attr("city", "is", "Lisbon"), condition))
    assert len(found) == 1, found
    node, message = found[0]
    assert node == "children[1]"
    assert fragment in message


STRUCTURE = [
    # (raw, node, fragment): pydantic's checks, with the path of the node at fault.
    ("not a group", [], "root", "must be a group"),
    ("a condition at the root", attr("city", "is", "x"), "root", "must be a group"),
    ("an unknown key at the root", root(attr("city", "is", "x"), colour="red"), "root", "colour"),
    (
        "an unknown key in a condition",
        root(attr("city", "is", "x", colour="red")),
        "children[0]",
        "colour: Extra inputs are not permitted",
    ),
    (
        "an unknown key in a nested group",
        root(root(attr("city", "is", "x")), root(attr("city", "is", "x"), extra=1)),
        "children[1]",
        "extra: Extra inputs",
    ),
    (
        "an unknown key in an event count",
        root(event(count={"operator": "gte", "value": 1, "per": "day"})),
        "children[0].count",
        "per: Extra inputs",
    ),
    (
        "an unknown key in a property",
        root(event(properties=[{"key": "a", "operator": "is", "value": 1, "x": 1}])),
        "children[0].properties[0]",
        "x: Extra inputs",
    ),
    (
        "an unknown key in a tag window",
        root(
            {
                "type": "tag",
                "operator": "has_any",
                "tags": ["beta"],
                "within": {"value": 1, "unit": "days", "since": 3},
            }
        ),
        "children[0].within",
        "since: Extra inputs",
    ),
    ("an unknown node type", root({"type": "cohort"}), "children[0]", "cohort"),
    ("a node without a type", root({"field": "city"}), "children[0]", "type"),
    ("match is all or any", root(attr("city", "is", "x"), match="either"), "root", "match"),
    ("negate is a boolean", root(attr("city", "is", "x"), negate="yes"), "root", "negate"),
    (
        "a count below zero",
        root(event(count={"operator": "gte", "value": -1})),
        "children[0].count",
        "value",
    ),
    (
        "a count operator that does not exist",
        root(event(count={"operator": "ne", "value": 1})),
        "children[0].count",
        "operator",
    ),
    (
        "a count as text",
        root(event(count={"operator": "gte", "value": "3"})),
        "children[0].count",
        "value",
    ),
    (
        "an event time operator that does not exist",
        root(event(time={"operator": "last_week"})),
        "children[0].time",
        "operator",
    ),
    (
        "more than ten property filters",
        root(event(properties=[{"key": f"k{i}", "operator": "is_empty"} for i in range(11)])),
        "children[0]",
        "properties",
    ),
    (
        "no tags",
        root({"type": "tag", "operator": "has_any", "tags": []}),
        "children[0]",
        "tags",
    ),
    (
        "a tag operator that does not exist",
        root({"type": "tag", "operator": "has_some", "tags": ["beta"]}),
        "children[0]",
        "operator",
    ),
    (
        "a tag window in years",
        root(
            {
                "type": "tag",
                "operator": "has_any",
                "tags": ["beta"],
                "within": {"value": 1, "unit": "years"},
            }
        ),
        "children[0].within",
        "unit",
    ),
    (
        "a segment id as text",
        root({"type": "segment", "operator": "in", "segment": "5"}),
        "children[0]",
        "segment",
    ),
    ("a field that is not text", root(attr(7, "is", "x")), "children[0]", "field"),
]


@pytest.mark.parametrize(
    ("raw", "node", "fragment"), [pytest.param(r, n, f, id=name) for name, r, n, f in STRUCTURE]
)
def test_a_malformed_tree_is_named(raw, node, fragment):
    found = errors(raw)
    assert any(n == node and fragment in m for n, m in found), found


# --- groups, limits, paths ------------------------------------------------------------------


def test_an_empty_root_is_refused_not_everyone():
    assert errors(root()) == [("root", "A group needs at least one condition.")]


def test_an_empty_group_anywhere_is_named():
    raw = root(
        attr("city", "is", "x"),
        root(attr("city", "is", "y"), root(), match="any"),
        root(root(root())),
    )
    assert errors(raw) == [
        ("children[1].children[1]", "A group needs at least one condition."),
        ("children[2].children[0].children[0]", "A group needs at least one condition."),
    ]


def test_every_error_is_reported_with_its_own_path():
    raw = root(
        attr("nope", "is", "x"),
        root(attr("city", "is", "x"), root(attr("custom.score", "is", "ten")), match="any"),
        {"type": "tag", "operator": "has_all", "tags": ["beta", "gamma"]},
    )
    found = errors(raw)
    assert [node for node, _ in found] == [
        "children[0]",
        "children[1].children[1].children[0]",
        "children[2]",
    ]
    assert "Unknown field" in found[0][1]
    assert "must be a number" in found[1][1]
    assert "No tag named “gamma”" in found[2][1]


def test_at_most_100_conditions_counted_across_groups():
    half = [attr("city", "is", f"c{i}") for i in range(50)]
    assert clean(root(root(*half), root(*half)))  # exactly 100
    found = errors(root(root(*half), root(*half), attr("city", "is", "one more")))
    assert found == [("root", f"At most {MAX_CONDITIONS} conditions (got 101).")]


def nested(depth: int) -> dict[str, Any]:
    tree = root(attr("city", "is", "x"))
    for _ in range(depth - 1):
        tree = root(tree)
    return tree


def test_groups_nest_at_most_ten_deep():
    assert clean(nested(MAX_DEPTH))
    assert errors(nested(MAX_DEPTH + 1)) == [("root", f"Groups nest at most {MAX_DEPTH} deep.")]


def test_a_very_deep_tree_is_refused_without_recursing():
    assert errors(nested(5000)) == [("root", f"Groups nest at most {MAX_DEPTH} deep.")]


# --- segment references ---------------------------------------------------------------------


def test_a_segment_cannot_refer_to_itself():
    own = Segment.objects.create(name="Own", rules={})
    raw = root({"type": "segment", "operator": "in", "segment": own.pk})
    assert errors(raw, segment_id=own.pk) == [("children[0]", "A segment cannot refer to itself.")]


def test_a_reference_that_leads_back_is_a_cycle():
    a = Segment.objects.create(name="A", rules={})
    b = Segment.objects.create(name="B", rules={}, depends_on=[a.pk])
    c = Segment.objects.create(name="C", rules={}, depends_on=[b.pk])
    raw = root(
        attr("city", "is", "x"),
        root({"type": "segment", "operator": "not_in", "segment": c.pk}, match="any"),
    )
    assert errors(raw, segment_id=a.pk) == [
        ("children[1].children[0]", "Segment “C” refers back to this segment (a cycle).")
    ]
    # Without a loop it is fine, and a new segment has no cycle to make.
    assert clean(root({"type": "segment", "operator": "in", "segment": c.pk}))
    ref_a = root({"type": "segment", "operator": "in", "segment": a.pk})
    assert segment_rules_clean(ref_a, "UTC", c.pk) == {**ref_a, "match": "all", "negate": False}


# --- normalisation --------------------------------------------------------------------------


def test_defaults_are_filled_in():
    assert clean(root(event(name="purchase"))) == {
        "type": "group",
        "match": "all",
        "negate": False,
        "children": [
            {
                "type": "event",
                "name": "purchase",
                "count": {"operator": "gte", "value": 1},
                "time": {"operator": "any_time"},
                "properties": [],
            }
        ],
    }


def test_event_names_are_case_folded_and_trimmed():
    tree = clean(root(event(name="  App-Launch ")))
    assert tree["children"][0]["name"] == "app-launch"


def test_tag_names_take_their_stored_spelling():
    node = {"type": "tag", "operator": "has_all", "tags": [" vip   GOLD ", "VIP Gold", "Beta"]}
    tree = clean(root(node))
    assert tree["children"][0] == {
        "type": "tag",
        "operator": "has_all",
        "tags": ["VIP Gold", "beta"],
    }


def test_text_values_are_trimmed_and_empty_values_dropped():
    tree = clean(root(attr("city", "contains", "  Lis "), attr("city", "is_empty", "")))
    assert tree["children"] == [
        {"type": "attribute", "field": "city", "operator": "contains", "value": "Lis"},
        {"type": "attribute", "field": "city", "operator": "is_empty"},
    ]


@pytest.mark.parametrize(
    ("tz", "value", "stored"),
    [
        ("America/Los_Angeles", "2024-03-14T18:00", "2024-03-15T01:00:00Z"),
        ("Europe/Paris", "2024-01-15T12:00", "2024-01-15T11:00:00Z"),  # winter: UTC+1
        ("Europe/Paris", "2024-07-01T12:00", "2024-07-01T10:00:00Z"),  # summer: UTC+2
        ("Pacific/Auckland", "2024-03-16T09:00:00", "2024-03-15T20:00:00Z"),
        ("America/Los_Angeles", "2024-03-14T18:00:00Z", "2024-03-14T18:00:00Z"),
        ("America/Los_Angeles", "2024-03-14T18:00+01:00", "2024-03-14T17:00:00Z"),
        ("UTC", "2024-03-14T18:00:00.123456Z", "2024-03-14T18:00:00Z"),
        ("America/Los_Angeles", "2024-03-14", "2024-03-14"),  # a day stays a day
        ("Pacific/Auckland", " 2024-03-14 ", "2024-03-14"),
    ],
)
def test_member_times_are_stored_in_utc_and_dates_as_days(tz, value, stored):
    tree = clean(root(attr("last_seen", "after", value)), tz)
    assert tree["children"][0]["value"] == stored
    tree = clean(root(event(time={"operator": "before", "value": value})), tz)
    assert tree["children"][0]["time"] == {"operator": "before", "value": stored}


def test_event_time_ranges_are_normalised():
    tree = clean(
        root(
            event(time={"operator": "between", "value": ["2024-03-01T09:00", "2024-03-14"]}),
            event(time={"operator": "between_last", "value": [0, 7], "unit": "days"}),
            event(time={"operator": "within_last", "value": 30, "unit": "minutes"}),
        ),
        "Europe/Paris",
    )
    assert [c["time"] for c in tree["children"]] == [
        {"operator": "between", "value": ["2024-03-01T08:00:00Z", "2024-03-14"]},
        {"operator": "between_last", "value": [0, 7], "unit": "days"},
        {"operator": "within_last", "value": 30, "unit": "minutes"},
    ]


@pytest.mark.parametrize(
    "value",
    [
        ["2024-03-01T09:00", "2024-03-01"],  # from 09:00 to the end of that day
        ["2024-03-01", "2024-03-01T00:00"],  # one instant
        ["2024-03-01", "2024-03-01"],
        ["2024-03-02", "2024-03-01T23:30:00Z"],  # in Paris, 23:30 UTC is already 2 March
    ],
)
def test_a_between_range_is_compared_as_instants(value):
    # Regression: the normalised strings were compared as text, which refused a date-time
    # start with a date end on the same day.
    assert clean(root(event(time={"operator": "between", "value": value})), "Europe/Paris")


def test_relative_dates_keep_their_unit_and_absolute_ones_have_none():
    tree = clean(
        root(
            attr("custom.renewal", "will_be_within", 2, unit="weeks"),
            attr("custom.renewal", "since", "2024-01-01"),
        )
    )
    assert tree["children"] == [
        {
            "type": "attribute",
            "field": "custom.renewal",
            "operator": "will_be_within",
            "value": 2,
            "unit": "weeks",
        },
        {
            "type": "attribute",
            "field": "custom.renewal",
            "operator": "since",
            "value": "2024-01-01",
        },
    ]


def test_property_values_keep_their_json_type():
    props = [
        {"key": "gift", "operator": "is", "value": True},
        {"key": "amount", "operator": "is", "value": 100},
        {"key": "amount", "operator": "is_not", "value": "100"},
        {"key": "plan", "operator": "starts_with", "value": " gold "},
        {"key": "note", "operator": "is_empty"},
    ]
    tree = clean(root(event(properties=props)))
    assert tree["children"][0]["properties"] == [
        {"key": "gift", "operator": "is", "value": True},
        {"key": "amount", "operator": "is", "value": 100},
        {"key": "amount", "operator": "is_not", "value": "100"},
        {"key": "plan", "operator": "starts_with", "value": "gold"},
        {"key": "note", "operator": "is_empty"},
    ]


def test_the_context_comes_from_the_database():
    ctx = rules_context("Europe/Paris")
    assert ctx.tag_names == {"vip gold": "VIP Gold", "beta": "beta"}
    assert ctx.registry.get("custom.score").type == "number"
    assert ctx.registry.get("custom.interests").type == "multi_text"
    assert ctx.registry.get("custom.gone") is None
    tree = rules_clean(root(attr("custom.interests", "has_value", "men")), ctx)
    assert tree["children"][0]["value"] == "men"


# --- dependencies ---------------------------------------------------------------------------


def deps(*children: Any):
    return rules_dependencies(clean(root(*children)), Registry.load())


def test_profile_fields_depend_on_profile_changes():
    found = deps(attr("city", "is", "x"), attr("custom.score", "gt", 1))
    assert found.change_kinds == ChangeKind.PROFILE | ChangeKind.CREATED
    assert found.time_based is False
    assert found.custom_fields == (("score", "gt"),)
    assert found.segments == ()


def test_analytics_fields_depend_on_events():
    found = deps(attr("last_seen", "since", "2024-01-01"))
    assert found.change_kinds == ChangeKind.EVENTS | ChangeKind.CREATED
    assert found.time_based is False


@pytest.mark.parametrize(
    ("condition", "time_based"),
    [
        (attr("last_seen", "was_within", 7, unit="days"), True),
        (attr("custom.renewal", "will_be_in", 1, unit="months"), True),
        (attr("custom.renewal", "before", "2024-01-01"), False),
        (event(), False),
        (event(time={"operator": "within_last", "value": 30, "unit": "days"}), True),
        (event(time={"operator": "before_last", "value": 30, "unit": "days"}), True),
        (event(time={"operator": "between_last", "value": [1, 2], "unit": "days"}), True),
        (event(time={"operator": "after", "value": "2024-01-01"}), False),
        ({"type": "tag", "operator": "has_any", "tags": ["beta"]}, False),
        (
            {
                "type": "tag",
                "operator": "has_none",
                "tags": ["beta"],
                "within": {"value": 7, "unit": "days"},
            },
            True,
        ),
    ],
)
def test_time_based_rules_are_swept(condition, time_based):
    assert deps(condition).time_based is time_based


def test_change_kinds_add_up_and_segments_are_listed_once():
    a = Segment.objects.create(name="A", rules={})
    b = Segment.objects.create(name="B", rules={})
    found = deps(
        event(),
        root(
            {"type": "tag", "operator": "has_any", "tags": ["beta"]},
            {"type": "segment", "operator": "in", "segment": b.pk},
            match="any",
        ),
        {"type": "segment", "operator": "not_in", "segment": a.pk},
        {"type": "segment", "operator": "in", "segment": b.pk},
        attr("custom.interests", "contains", "x"),
        attr("custom.interests", "has_value", "x"),
    )
    assert found.change_kinds == (
        ChangeKind.CREATED
        | ChangeKind.EVENTS
        | ChangeKind.TAGS
        | ChangeKind.MEMBERSHIP
        | ChangeKind.PROFILE
    )
    assert found.segments == (b.pk, a.pk)
    assert found.custom_fields == (("interests", "contains"), ("interests", "has_value"))

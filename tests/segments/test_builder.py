"""The segment builder (segments/builder_*.py, templates/segments/builder.html): the form ⇄
rule tree round trip for every node kind, the structural actions, the preview partial,
validation messages placed on their condition, create, edit with its "+N will enter, −M will
exit" confirmation, and who may use it."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.http import QueryDict
from django.urls import reverse

from activity.services import Actor
from customers.models import Customer
from events.models import EventType
from segments.builder_changes import membership_change
from segments.builder_draft import draft_apply, draft_check
from segments.builder_form import (
    Catalog,
    draft_from_form,
    draft_from_rules,
    draft_rules,
    form_path_for,
    node_at,
    walk,
)
from segments.membership import segment_build
from segments.models import Membership, Segment
from segments.query import Preview
from segments.rules import MAX_DEPTH
from segments.services import segment_create, segment_rules_clean
from tags.models import CustomerTag, Tag
from tests.factories import CustomerFactory, CustomFieldFactory

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")
NEW = "/segments/new/"
BUILDER = "/segments/builder/"
LISBON = "Europe/Lisbon"  # UTC+1 in May: 08:30 there is 07:30Z


# --- reading the HTML -------------------------------------------------------------------------


class _Form(HTMLParser):
    """The values a browser would submit from the form with ``form_id`` (no button pressed)."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.pairs: list[tuple[str, str]] = []
        self.select: tuple[str, list[tuple[str, bool]]] | None = None
        self.textarea: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form" and a.get("id") == self.form_id:
            self.inside = True
        if not self.inside:
            return
        if tag == "option" and self.select is not None:
            self.select[1].append((a.get("value", ""), "selected" in a))
        elif not a.get("name"):
            return
        elif tag == "input":
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.pairs.append((a["name"], a.get("value", "on")))
            elif kind not in ("submit", "button", "image", "reset"):
                self.pairs.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self.select = (a["name"], [])
        elif tag == "textarea":
            self.textarea = (a["name"], [])

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.textarea[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "select" and self.select is not None:
            name, options = self.select
            chosen = [v for v, selected in options if selected] or [v for v, _ in options[:1]]
            self.pairs += [(name, v) for v in chosen[:1]]
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            self.pairs.append((self.textarea[0], "".join(self.textarea[1])))
            self.textarea = None


def form_data(html: str, form_id: str = "segment-form") -> dict[str, list[str]]:
    parser = _Form(form_id)
    parser.feed(html)
    data: dict[str, list[str]] = {}
    for name, value in parser.pairs:
        data.setdefault(name, []).append(value)
    return data


def querydict(data: dict[str, list[str]]) -> QueryDict:
    q = QueryDict(mutable=True)
    for key, values in data.items():
        q.setlist(key, values)
    return q


class _Element(HTMLParser):
    """The text inside the element with ``id``."""

    VOID = {"input", "br", "img", "meta", "link", "hr", "source", "col", "wbr"}

    def __init__(self, element_id: str) -> None:
        super().__init__()
        self.element_id = element_id
        self.depth = 0
        self.found = False
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.VOID:
            return
        if self.depth:
            self.depth += 1
        elif dict(attrs).get("id") == self.element_id:
            self.found = True
            self.depth = 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag not in self.VOID:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.text.append(data)


def element_text(html: str, element_id: str) -> str | None:
    parser = _Element(element_id)
    parser.feed(html)
    return " ".join("".join(parser.text).split()) if parser.found else None


# --- rule trees -------------------------------------------------------------------------------


def group(*children: dict, match: str = "all", negate: bool = False) -> dict:
    return {"type": "group", "match": match, "negate": negate, "children": list(children)}


def attr(field: str, operator: str, value: Any = None, **extra: Any) -> dict:
    node = {"type": "attribute", "field": field, "operator": operator, **extra}
    if value is not None:
        node["value"] = value
    return node


def event(name: str, op: str = "gte", count: int = 1, time: dict | None = None, props=()) -> dict:
    return {
        "type": "event",
        "name": name,
        "count": {"operator": op, "value": count},
        "time": time or {"operator": "any_time"},
        "properties": list(props),
    }


def tags(op: str, *names: str, within: dict | None = None) -> dict:
    node: dict[str, Any] = {"type": "tag", "operator": op, "tags": list(names)}
    if within:
        node["within"] = within
    return node


@pytest.fixture
def catalog_rows():
    """Custom fields, event names with property types and tags the builder offers."""
    CustomFieldFactory(name="ltv", label="Lifetime value", type="number")
    CustomFieldFactory(name="newsletter", label="Newsletter", type="boolean")
    CustomFieldFactory(name="renewal", label="Renewal", type="date")
    CustomFieldFactory(name="plan", label="Plan", type="text")
    EventType.objects.create(
        name="purchase", properties={"amount": "number", "currency": "string", "gift": "boolean"}
    )
    EventType.objects.create(name="signup", properties={"method": "string"})
    EventType.objects.create(name="app_opened", properties={})
    EventType.objects.create(name="page_viewed", properties={"path": "string"})
    for name in ("VIP", "Churned", "Beta"):
        Tag.objects.create(name=name)


def every_kind(other: int) -> dict:
    """A tree with every node kind, value type and time form, groups nested two deep."""
    return group(
        attr("country", "is", "PT"),
        attr("custom.ltv", "gte", 500),
        attr("custom.ltv", "lt", 12.5),
        attr("custom.newsletter", "is", False),
        attr("user_type", "is", "test"),
        attr("custom.renewal", "after", "2024-05-01T08:30"),
        attr("custom.renewal", "before", "2024-06-01"),
        attr("last_seen", "was_within", 7, unit="days"),
        attr("email", "is_empty"),
        attr("custom.plan", "has_value", "pro"),
        event(
            "purchase",
            "gte",
            2,
            {"operator": "between_last", "value": [7, 30], "unit": "days"},
            [
                {"key": "amount", "operator": "gt", "value": 100},
                {"key": "currency", "operator": "is", "value": "EUR"},
                {"key": "gift", "operator": "is", "value": True},
                {"key": "coupon", "operator": "is_empty"},
            ],
        ),
        event(
            "signup",
            "eq",
            0,
            {"operator": "between", "value": ["2024-01-01T09:00", "2024-01-31T18:00"]},
        ),
        event("page_viewed", "lt", 3, {"operator": "before", "value": "2024-03-01"}),
        group(
            tags("has_all", "VIP", "Churned", within={"value": 14, "unit": "days"}),
            {"type": "segment", "operator": "not_in", "segment": other},
            group(
                event("app_opened", time={"operator": "within_last", "value": 3, "unit": "hours"}),
                attr("city", "contains", "lis"),
                match="any",
            ),
            match="any",
            negate=True,
        ),
    )


def make(name: str, rules: dict, tz: str = "UTC") -> Segment:
    return segment_create(name=name, rules=rules, actor=ACTOR, tz=tz)


def htmx(client, data: dict, **headers):
    return client.post(BUILDER, data, HTTP_HX_REQUEST="true", **headers)


# --- form ⇄ tree ------------------------------------------------------------------------------


def test_every_node_kind_survives_the_edit_form_round_trip(marketer_client, catalog_rows):
    other = make("Other", group(attr("city", "is", "Porto")))
    segment = make("Everything", every_kind(other.pk), tz=LISBON)
    page = marketer_client.get(reverse("segment-edit", args=[segment.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    # Stored UTC is shown on the segment's wall clock; whole days stay days.
    assert segment.rules["children"][5]["value"] == "2024-05-01T07:30:00Z"
    assert 'name="r.c5.value" value="2024-05-01T08:30"' in html
    assert 'type="date" name="r.c6.value" value="2024-06-01"' in html
    data = form_data(html)
    assert data["timezone"] == [LISBON]
    assert data["r.c13.negate"] == ["on"] and "r.negate" not in data

    catalog = Catalog.load(exclude_segment=segment.pk)
    draft = draft_from_form(querydict(data), catalog)
    check = draft_check(draft, catalog.registry)
    assert check.incomplete == {} and check.problems == {}
    tree, _ = draft_rules(draft, check.held_back)
    assert segment_rules_clean(tree, LISBON, segment.pk) == segment.rules

    # Through the views: the preview has nothing to complain about, and saving the unchanged
    # form asks for confirmation, then keeps the rules and their revision (no rebuild).
    preview = htmx(marketer_client, data, HTTP_HX_TRIGGER="segment-form").content.decode()
    assert "errorlist" not in preview and 'data-count="0"' in preview
    confirm = marketer_client.post(page.request["PATH_INFO"], {**data, "action": "save"})
    assert "+0 will enter, −0 will exit" in element_text(confirm.content.decode(), "change-summary")
    carried = form_data(confirm.content.decode(), form_id="confirm-form")
    done = marketer_client.post(page.request["PATH_INFO"], {**carried, "action": "confirm"})
    assert done.status_code == 302
    segment.refresh_from_db()
    assert segment.revision == 1
    assert segment.rules == segment_rules_clean(every_kind(other.pk), LISBON, segment.pk)


def test_draft_from_rules_turns_utc_into_the_zones_wall_clock():
    catalog = Catalog.load()
    tree = group(
        event("x", time={"operator": "between", "value": ["2024-07-01T10:00:00Z", "2024-07-02"]}),
        event("y", time={"operator": "after", "value": "2024-12-01T23:30:00Z"}),
    )
    draft = draft_from_rules(tree, ZoneInfo(LISBON), catalog.registry)
    first, second = draft["children"]
    # Mixed precision becomes date-times: the whole day's last second ends the range.
    assert first["time"]["value"] == ["2024-07-01T11:00", "2024-07-02T23:59:59"]
    assert first["_time"] is True
    assert second["time"]["value"] == "2024-12-01T23:30"  # Lisbon is on UTC in winter


def test_a_half_filled_form_reads_leniently():
    catalog = Catalog.load()
    data = querydict(
        {
            "r.kind": ["group"],
            "r.match": ["sideways"],  # not a choice: the default
            "r.c0.kind": ["attribute"],
            "r.c0.field": ["country"],
            "r.c0.op": ["was_within"],  # a date operator on a text field: reset to "is"
            "r.c1.kind": ["pick"],
            "r.c9.kind": ["event"],  # gaps in the numbering are fine; order is kept
            "r.c9.name": ["purchase"],
            "r.c9.count": ["1.5"],
            "r.c2.kind": ["segment"],
            "r.c2.segment": ["abc"],
            "x.c0.kind": ["group"],  # not a path
        }
    )
    draft = draft_from_form(data, catalog)
    assert draft["match"] == "all"
    kinds = [c["type"] for c in draft["children"]]
    assert kinds == ["attribute", "pick", "segment", "event"]
    assert draft["children"][0]["operator"] == "is" and draft["children"][0]["value"] is None
    check = draft_check(draft, catalog.registry)
    assert check.incomplete == {"r.c0": "Enter a value.", "r.c1": "Choose what to filter on."}
    assert set(check.problems) == {"r.c2", "r.c3"}
    assert draft_rules(draft, check.held_back) == (None, {})


def test_rule_error_paths_map_back_to_form_paths_around_held_back_conditions():
    draft = group(
        {"type": "pick"},
        attr("city", "is", "x"),
        group({"type": "pick"}, attr("city", "is", "y"), match="any"),
    )
    tree, paths = draft_rules(draft, {"r.c0", "r.c2.c0"})
    assert tree == group(attr("city", "is", "x"), group(attr("city", "is", "y"), match="any"))
    assert form_path_for("children[0]", paths) == "r.c1"
    assert form_path_for("children[1].children[0].time", paths) == "r.c2.c1"
    assert form_path_for("children[1]", paths) == "r.c2"
    assert form_path_for("root", paths) == "r"


# --- structural actions -----------------------------------------------------------------------


@pytest.fixture
def catalog(catalog_rows) -> Catalog:
    return Catalog.load()


def test_add_filter_and_add_group(catalog):
    draft = group(attr("city", "is", "x"))
    draft_apply(draft, "add:r", catalog)
    draft_apply(draft, "group:r", catalog)
    assert draft["children"][1:] == [
        {"type": "pick"},
        group({"type": "pick"}),
    ]
    draft_apply(draft, "add:r.c2", catalog)
    assert draft["children"][2]["children"] == [{"type": "pick"}, {"type": "pick"}]
    draft_apply(draft, "add:r.c0", catalog)  # not a group: nothing
    draft_apply(draft, "add:r.c7", catalog)  # no such node: nothing
    assert len(draft["children"]) == 3


def test_groups_nest_only_as_deep_as_the_rules_allow(catalog):
    draft, path = group(), "r"
    for _ in range(12):
        draft_apply(draft, f"group:{path}", catalog)
        children = node_at(draft, path)["children"]
        if children[-1]["type"] == "group":
            path = f"{path}.c{len(children) - 1}"
    groups = [p for p, node in walk(draft) if node["type"] == "group"]
    assert max(p.count(".") + 1 for p in groups) == MAX_DEPTH


def test_remove_a_condition_or_a_group(catalog):
    draft = group(attr("city", "is", "x"), group(attr("city", "is", "y")), attr("city", "is", "z"))
    draft_apply(draft, "remove:r.c1", catalog)
    assert [c.get("value") for c in draft["children"]] == ["x", "z"]
    draft_apply(draft, "remove:r", catalog)  # the root stays
    draft_apply(draft, "remove:r.c5", catalog)
    assert len(draft["children"]) == 2


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (
            "attribute:country",
            {"type": "attribute", "field": "country", "operator": "is", "value": None},
        ),
        (
            "attribute:custom.newsletter",
            {"type": "attribute", "field": "custom.newsletter", "operator": "is", "value": True},
        ),
        (
            "event:purchase",
            {
                "type": "event",
                "name": "purchase",
                "count": {"operator": "gte", "value": 1},
                "time": {"operator": "any_time"},
                "properties": [],
                "_time": False,
            },
        ),
        ("tag:VIP", {"type": "tag", "operator": "has_any", "tags": ["VIP"]}),
    ],
)
def test_pick_replaces_the_placeholder(catalog, choice, expected):
    draft = group({"type": "pick"})
    draft_apply(draft, f"pick:r.c0:{choice}", catalog)
    assert draft["children"][0] == expected


def test_pick_a_segment_and_refuse_what_is_not_on_offer(catalog_rows):
    other = make("Other", group(attr("city", "is", "x")))
    catalog = Catalog.load()
    draft = group({"type": "pick"}, {"type": "pick"}, attr("city", "is", "x"))
    draft_apply(draft, f"pick:r.c0:segment:{other.pk}", catalog)
    assert draft["children"][0] == {"type": "segment", "operator": "in", "segment": other.pk}
    for bad in ("attribute:nope", "event:never_seen", "tag:ghost", "segment:999999", "magic:x"):
        draft_apply(draft, f"pick:r.c1:{bad}", catalog)
        assert draft["children"][1] == {"type": "pick"}
    draft_apply(draft, "pick:r.c2:tag:VIP", catalog)  # not a placeholder
    assert draft["children"][2]["type"] == "attribute"
    # The segment being edited is not on offer to itself.
    assert other.pk not in {pk for pk, _ in Catalog.load(exclude_segment=other.pk).segments}


def test_property_filters_are_added_with_unused_keys_and_removed(catalog):
    draft = group(event("purchase"))
    for _ in range(3):
        draft_apply(draft, "prop:r.c0", catalog)
    keys = [p["key"] for p in draft["children"][0]["properties"]]
    assert keys == ["amount", "currency", "gift"]
    draft_apply(draft, "unprop:r.c0:1", catalog)
    assert [p["key"] for p in draft["children"][0]["properties"]] == ["amount", "gift"]
    draft_apply(draft, "unprop:r.c0:9", catalog)
    assert len(draft["children"][0]["properties"]) == 2


@pytest.mark.parametrize("with_htmx", [True, False])
def test_structural_actions_through_the_endpoint(marketer_client, catalog_rows, with_htmx):
    headers = {"HTTP_HX_REQUEST": "true"} if with_htmx else {}
    base = {"r.kind": "group", "r.match": "all", "name": "x", "timezone": "UTC"}
    response = marketer_client.post(BUILDER, {**base, "action": "add:r"}, **headers)
    added = response.content.decode()
    assert 'name="r.c0.kind" value="pick"' in added
    assert 'value="pick:r.c0:attribute:country"' in added
    assert 'value="pick:r.c0:event:purchase"' in added and 'value="pick:r.c0:tag:VIP"' in added
    assert ("<html" in added) is not with_htmx
    if with_htmx:  # the editor only; the form then asks for the count
        assert added.lstrip().startswith('<div id="rules-editor"')
        assert 'id="preview"' not in added
        assert response["HX-Trigger-After-Swap"] == '{"builder-changed": {}}'
    else:
        assert 'id="preview"' in added

    picked = marketer_client.post(
        BUILDER,
        {**base, "r.c0.kind": "pick", "action": "pick:r.c0:attribute:custom.renewal"},
        **headers,
    ).content.decode()
    assert 'name="r.c0.field"' in picked and 'type="date" name="r.c0.value"' in picked

    # A changed operator re-draws the value input: a relative one takes an amount and a unit.
    relative = marketer_client.post(
        BUILDER,
        {
            **base,
            "r.c0.kind": "attribute",
            "r.c0.field": "custom.renewal",
            "r.c0.op": "will_be_in",
            "action": "refresh",
        },
        **headers,
    ).content.decode()
    assert 'name="r.c0.amount"' in relative and 'name="r.c0.unit"' in relative
    assert 'name="r.c0.value"' not in relative and "from today" in relative
    # A field of another type resets the operator to one that fits.
    switched = marketer_client.post(
        BUILDER,
        {
            **base,
            "r.c0.kind": "attribute",
            "r.c0.field": "custom.newsletter",
            "r.c0.op": "will_be_in",
            "action": "refresh",
        },
        **headers,
    ).content.decode()
    assert '<option value="is" selected>' in switched
    assert '<option value="true">yes</option>' in switched


def test_the_page_itself_applies_actions_without_javascript(marketer_client, catalog_rows):
    response = marketer_client.post(NEW, {"r.kind": "group", "action": "group:r"})
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    assert 'name="r.c0.kind" value="group"' in html and 'name="r.c0.c0.kind" value="pick"' in html
    assert not Segment.objects.filter(name="").exists()


# --- the preview ------------------------------------------------------------------------------


def _two_conditions() -> dict[str, str]:
    return {
        "r.kind": "group",
        "r.match": "all",
        "timezone": "UTC",
        "r.c0.kind": "attribute",
        "r.c0.field": "country",
        "r.c0.op": "is",
        "r.c0.value": "pt",
        "r.c1.kind": "tag",
        "r.c1.op": "has_any",
        "r.c1.tags": "VIP",
    }


def test_preview_counts_samples_and_counts_after_each_condition(marketer_client, catalog_rows):
    vip = Tag.objects.get(name="VIP")
    portuguese = CustomerFactory.create_batch(3, country="PT")
    CustomerFactory.create_batch(2, country="ES")
    CustomerTag.objects.create(customer=portuguese[0], tag=vip)
    CustomerTag.objects.create(customer=portuguese[1], tag=vip)

    partial = htmx(marketer_client, _two_conditions(), HTTP_HX_TRIGGER="segment-form")
    html = partial.content.decode()
    assert "<html" not in html and html.lstrip().startswith('<aside id="preview"')
    assert 'data-count="2"' in html
    assert f'href="/customers/{portuguese[0].pk}/"' in html
    assert f'href="/customers/{portuguese[2].pk}/"' not in html
    # The running counts wait for the follow-up request the preview makes once shown (old
    # ones are cleared meanwhile); it answers them out of band next to each condition.
    assert element_text(html, "ct-r-c0") == ""
    assert 'id="st-r-c1" hx-swap-oob="true"' in html
    details = htmx(marketer_client, {**_two_conditions(), "action": "details"}).content.decode()
    assert element_text(details, "ct-r-c0") == "3"
    assert element_text(details, "ct-r-c1") == "2"
    assert 'id="ct-r-c1" hx-swap-oob="true"' in details

    page = marketer_client.post(BUILDER, _two_conditions())  # without htmx: the whole page
    assert "<html" in page.content.decode() and 'data-count="2"' in page.content.decode()
    assert element_text(page.content.decode(), "ct-r-c0") == "3"


def test_a_form_request_is_a_preview_even_with_a_stale_button_value(marketer_client, catalog_rows):
    data = {**_two_conditions(), "action": "remove:r.c0"}
    html = htmx(marketer_client, data, HTTP_HX_TRIGGER="segment-form").content.decode()
    assert html.lstrip().startswith('<aside id="preview"')


def test_preview_states_empty_incomplete_and_estimated(marketer_client, catalog_rows, monkeypatch):
    empty = htmx(marketer_client, {"r.kind": "group"}).content.decode()
    assert "Add a filter to see who matches." in empty and "errorlist" not in empty

    half = {**_two_conditions(), "r.c0.value": ""}
    incomplete = htmx(marketer_client, half).content.decode()
    assert "Complete the filter to see a count." in incomplete
    assert element_text(incomplete, "st-r-c0") == "Enter a value."
    assert "errorlist" not in incomplete and "data-count" not in incomplete

    def slow(tree, tz, **kwargs):
        return Preview(count=123456, estimated=True, sample=[], steps=[])

    monkeypatch.setattr("segments.builder_views.preview", slow)
    estimated = htmx(marketer_client, _two_conditions()).content.decode()
    assert "≈ 123,456" in estimated and "(estimate)" in estimated


def test_problems_are_shown_on_the_condition_they_name(marketer_client, catalog_rows):
    data = {
        **_two_conditions(),
        "r.c1.tags": "Ghost",
        "r.c2.kind": "group",
        "r.c2.match": "any",
        "r.c2.c0.kind": "attribute",
        "r.c2.c0.field": "custom.ltv",
        "r.c2.c0.op": "gt",
        "r.c2.c0.value": "lots",
        "r.c2.c1.kind": "event",
        "r.c2.c1.name": "purchase",
        "r.c2.c1.count_op": "gte",
        "r.c2.c1.count": "2.5",
        "r.c2.c2.kind": "pick",
        "r.c3.kind": "group",  # an empty group
    }
    html = htmx(marketer_client, data).content.decode()
    assert "Fix the problems marked in the rules to see a count." in html
    assert element_text(html, "st-r-c0") == ""
    assert element_text(html, "st-r-c1") == "No tag named “Ghost”."
    assert "must be a number" in element_text(html, "st-r-c2-c0")
    assert (
        element_text(html, "st-r-c2-c1") == "The count must be a whole number from 0 to 1,000,000."
    )
    assert element_text(html, "st-r-c2-c2") == "Choose what to filter on."  # a hint, not an error
    assert element_text(html, "st-r-c3") == "A group needs at least one condition."
    assert element_text(html, "st-r") == ""


def test_an_invalid_time_zone_is_reported_and_counting_uses_the_fallback(marketer_client, marketer):
    marketer.timezone = "Asia/Tokyo"
    marketer.save()
    page = marketer_client.get(NEW)
    assert 'name="timezone" value="Asia/Tokyo"' in page.content.decode()
    data = {"r.kind": "group", "timezone": "Mars/Olympus", "name": "x", "action": "save"}
    data |= {"r.c0.kind": "attribute", "r.c0.field": "country", "r.c0.op": "is_empty"}
    html = marketer_client.post(NEW, data).content.decode()
    assert "“Mars/Olympus” is not an IANA time zone" in html
    assert "Counted now, in Asia/Tokyo." in html
    assert not Segment.objects.filter(name="x").exists()


# --- create and edit --------------------------------------------------------------------------


def test_create_saves_and_redirects_to_the_segment(marketer_client, marketer, catalog_rows):
    marketer.timezone = "Europe/Paris"
    marketer.save()
    data = {**_two_conditions(), "name": "Portuguese VIPs", "description": "For the launch"}
    data["timezone"] = "Europe/Paris"
    response = marketer_client.post(NEW, {**data, "action": "save"})
    segment = Segment.objects.get(name="Portuguese VIPs")
    assert response.status_code == 302
    assert response["Location"] == reverse("segment-detail", args=[segment.pk])
    assert segment.timezone == "Europe/Paris" and segment.description == "For the launch"
    assert segment.created_by == marketer
    assert segment.rules == group(attr("country", "is", "pt"), tags("has_any", "VIP"))


def test_create_refuses_incomplete_rules_and_a_missing_name(marketer_client, catalog_rows):
    data = {**_two_conditions(), "name": " ", "r.c2.kind": "pick", "action": "save"}
    html = marketer_client.post(NEW, data).content.decode()
    assert "The segment was not saved" in html
    assert "A segment needs a name." in html
    # When saving, an unfinished condition is an error, not a hint.
    assert '<p class="errorlist" role="alert">Choose what to filter on.</p>' in html
    before = Segment.objects.count()

    make("Taken", group(attr("city", "is", "x")))
    data = {**_two_conditions(), "name": "taken", "action": "save"}
    html = marketer_client.post(NEW, data).content.decode()
    assert "A segment named “taken” already exists." in html
    assert Segment.objects.count() == before + 1


def test_edit_confirms_who_enters_and_exits_then_saves(marketer_client, catalog_rows):
    pt = CustomerFactory.create_batch(3, country="PT")
    es = CustomerFactory.create_batch(2, country="ES")
    CustomerFactory(country="FR")
    segment = make("Iberia", group(attr("country", "is", "PT")))
    segment_build(segment.pk)
    assert Membership.objects.filter(segment=segment).count() == 3
    url = reverse("segment-edit", args=[segment.pk])
    data = form_data(marketer_client.get(url).content.decode())
    # PT stays only for the first customer (by user id); ES comes in.
    data |= {
        "r.match": ["any"],
        "r.c0.field": ["user_id"],
        "r.c0.value": [pt[0].user_id],
        "r.c1.kind": ["attribute"],
        "r.c1.field": ["country"],
        "r.c1.op": ["is"],
        "r.c1.value": ["ES"],
        "name": ["Iberia, mostly"],
    }
    confirm = marketer_client.post(url, {**data, "action": "save"}).content.decode()
    summary = element_text(confirm, "change-summary")
    assert "+2 will enter, −2 will exit" in summary and "3 → 3 members" in summary
    segment.refresh_from_db()
    assert segment.rules == group(attr("country", "is", "PT")) and segment.revision == 1

    carried = form_data(confirm, form_id="confirm-form")
    back = marketer_client.post(url, {**carried, "action": "back"}).content.decode()
    assert form_data(back)["r.c1.value"] == ["ES"] and "will enter" not in back

    done = marketer_client.post(url, {**carried, "action": "confirm"})
    assert done.status_code == 302 and done["Location"] == reverse(
        "segment-detail", args=[segment.pk]
    )
    segment.refresh_from_db()
    assert segment.name == "Iberia, mostly" and segment.revision == 2
    assert segment.rules["match"] == "any"
    segment_build(segment.pk)
    members = set(Membership.objects.filter(segment=segment).values_list("customer_id", flat=True))
    assert members == {pt[0].pk, *(c.pk for c in es)}


def test_membership_change_counts_against_stored_members():
    inside = CustomerFactory.create_batch(2, city="Oslo")
    CustomerFactory(city="Bergen")
    segment = make("Oslo", group(attr("city", "is", "Oslo")))
    segment_build(segment.pk)
    Customer.objects.filter(pk=inside[0].pk).update(city="Bergen")  # not yet re-evaluated
    change = membership_change(
        segment, segment_rules_clean(group(attr("city", "is", "Bergen")), "UTC"), "UTC"
    )
    # Enters: the customer always in Bergen (the one who moved is still a stored member).
    # Exits: the member still in Oslo.
    assert (change.entering, change.exiting) == (1, 1)
    same = membership_change(segment, segment.rules, "UTC")
    assert (same.entering, same.exiting) == (0, 1)  # the stored member who moved


def test_edit_offers_other_segments_but_not_itself(marketer_client, catalog_rows):
    other = make("Other", group(attr("city", "is", "x")))
    segment = make("Self", group({"type": "segment", "operator": "in", "segment": other.pk}))
    html = marketer_client.get(reverse("segment-edit", args=[segment.pk])).content.decode()
    assert f'<option value="{other.pk}" selected>Other</option>' in html
    assert f'<option value="{segment.pk}"' not in html
    # Asking the builder for a segment that refers to itself names the condition.
    data = form_data(html)
    data["r.c0.segment"] = [str(segment.pk)]
    preview = htmx(marketer_client, data).content.decode()
    assert element_text(preview, "st-r-c0") == "A segment cannot refer to itself."


def test_saving_a_cycle_is_refused_on_its_condition(marketer_client, catalog_rows):
    first = make("First", group(attr("city", "is", "x")))
    second = make("Second", group({"type": "segment", "operator": "in", "segment": first.pk}))
    url = reverse("segment-edit", args=[first.pk])
    data = form_data(marketer_client.get(url).content.decode())
    data |= {"r.c1.kind": ["segment"], "r.c1.op": ["in"], "r.c1.segment": [str(second.pk)]}
    html = marketer_client.post(url, {**data, "action": "save"}).content.decode()
    assert (
        element_text(html, "st-r-c1") == "Segment “Second” refers back to this segment (a cycle)."
    )
    first.refresh_from_db()
    assert first.revision == 1


# --- who may ----------------------------------------------------------------------------------


def test_viewers_may_not_build(viewer_client, catalog_rows):
    segment = make("Any", group(attr("city", "is", "x")))
    assert viewer_client.get(NEW).status_code == 403
    assert viewer_client.get(reverse("segment-edit", args=[segment.pk])).status_code == 403
    assert viewer_client.post(BUILDER, _two_conditions(), HTTP_HX_REQUEST="true").status_code == 403
    assert (
        viewer_client.post(NEW, {**_two_conditions(), "name": "n", "action": "save"}).status_code
        == 403
    )
    assert not Segment.objects.filter(name="n").exists()


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(NEW)
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.post(BUILDER, {}, HTTP_HX_REQUEST="true").status_code == 401


def test_marketers_and_admins_may_build(marketer_client, admin_client):
    for c in (marketer_client, admin_client):
        page = c.get(NEW)
        assert page.status_code == 200
        assert "data-picker-search" in page.content.decode()  # a new segment opens on the lists
        assert c.post(BUILDER, {}, HTTP_HX_REQUEST="true").status_code == 200


def test_unknown_segment_is_404(marketer_client):
    assert marketer_client.get(reverse("segment-edit", args=[999999])).status_code == 404
    assert (
        marketer_client.post(BUILDER, {"segment": "999999"}, HTTP_HX_REQUEST="true").status_code
        == 404
    )

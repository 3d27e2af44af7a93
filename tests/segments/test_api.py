"""The segments REST API (segments/api.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from activity.models import Activity
from activity.services import Actor
from customers.models import Customer
from events.ingest import events_ingest
from members.roles import Role
from segments.membership import segment_build
from segments.models import Membership, Segment, SegmentStatus
from segments.rules import MAX_CONDITIONS
from segments.selectors import encode_cursor
from segments.services import segment_create
from tags.services import customer_tags_add
from tests.factories import CustomerFactory, TagFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def city(name: str, operator: str = "is") -> dict:
    return {"type": "attribute", "field": "city", "operator": operator, "value": name}


def group(*children: dict, match: str = "all", negate: bool = False) -> dict:
    return {"type": "group", "match": match, "negate": negate, "children": list(children)}


def in_segment(segment_id: int, operator: str = "in") -> dict:
    return {"type": "segment", "operator": operator, "segment": segment_id}


def vip(operator: str = "has_any") -> dict:
    return {"type": "tag", "operator": operator, "tags": ["vip"]}


def make(name: str, rules: dict, **extra) -> Segment:
    return segment_create(name=name, rules=rules, actor=Actor.system(), **extra)


def built(name: str, rules: dict) -> Segment:
    segment = make(name, rules)
    assert segment_build(segment.pk, now=NOW).status == "built"
    segment.refresh_from_db()
    return segment


@pytest.fixture
def town(db):
    """Three Lisbon customers (two VIPs, one of whom bought twice), a Porto VIP, a customer
    without a city."""
    actor = Actor.system()
    TagFactory(name="vip")
    people = {
        "lis-1": CustomerFactory(user_id="lis-1", name="Ana Lima", city="Lisbon"),
        "lis-2": CustomerFactory(user_id="lis-2", name="Bruno Reis", city="lisbon"),
        "lis-3": CustomerFactory(user_id="lis-3", name="Carla Dias", city="Lisbon"),
        "opo-1": CustomerFactory(user_id="opo-1", name="Duarte Sá", city="Porto"),
        "none-1": CustomerFactory(user_id="none-1", name="Eva Cruz", city=""),
    }
    for user_id in ("lis-1", "lis-2", "opo-1"):
        customer_tags_add(customer=people[user_id], names=["vip"], actor=actor)
    events_ingest(
        [{"user_id": "lis-1", "name": "purchase"}, {"user_id": "lis-1", "name": "purchase"}],
        actor=actor,
        now=NOW,
    )
    return people


def errors_of(response) -> list[dict]:
    assert response.status_code == 422, response.content
    return response.json()["errors"]


# --- Create ---------------------------------------------------------------------------------


def test_create_answers_201_with_the_segment(api, marketer):
    response = api(
        "post",
        "/segments",
        {
            "name": "  Lisbon   people ",
            "description": "Who lives there",
            "rules": group(city("Lisbon")),
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    segment = Segment.objects.get(pk=body["id"])
    assert body["name"] == segment.name == "Lisbon people"
    assert body["description"] == "Who lives there"
    assert body["status"] == SegmentStatus.COMPUTING
    assert (body["build_progress"], body["member_count"], body["built_at"]) == (0, 0, None)
    assert body["rules"] == segment.rules == group(city("Lisbon"))
    assert body["rules_version"] == 1
    assert body["timezone"] == "UTC"
    assert body["time_based"] is False
    assert body["used_by"] == []
    assert body["predefined"] is False
    assert segment.created_by == marketer
    assert Activity.objects.filter(action="segment.created", target_id=segment.pk).exists()


def test_create_reads_relative_dates_in_the_given_zone_or_the_members(api, marketer):
    rules = group(
        {
            "type": "attribute",
            "field": "created_at",
            "operator": "was_within",
            "value": 7,
            "unit": "days",
        }
    )
    body = api(
        "post", "/segments", {"name": "Recent", "rules": rules, "timezone": "Asia/Tokyo"}
    ).json()
    assert (body["timezone"], body["time_based"]) == ("Asia/Tokyo", True)

    marketer.timezone = "Europe/Lisbon"
    marketer.save()
    body = api("post", "/segments", {"name": "Recent 2", "rules": rules}).json()
    assert body["timezone"] == "Europe/Lisbon"


def test_create_converts_absolute_times_to_utc_in_the_segments_zone(api):
    rules = group(
        {
            "type": "attribute",
            "field": "created_at",
            "operator": "after",
            "value": "2026-05-01T09:30",
        }
    )
    body = api(
        "post", "/segments", {"name": "After", "rules": rules, "timezone": "Europe/Lisbon"}
    ).json()
    assert body["rules"]["children"][0]["value"] == "2026-05-01T08:30:00Z"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rules": group(city("Lisbon"))}, "name"),
        ({"name": "X"}, "rules"),
        ({"name": 5, "rules": group(city("Lisbon"))}, "name"),
        ({"name": "X", "rules": group(city("Lisbon")), "colour": "red"}, "colour"),
        ({"name": "   ", "rules": group(city("Lisbon"))}, "name"),
        ({"name": "X" * 201, "rules": group(city("Lisbon"))}, "name"),
        ({"name": "X", "description": "d" * 2001, "rules": group(city("Lisbon"))}, "description"),
        ({"name": "X", "rules": group(city("Lisbon")), "timezone": "Mars/Olympus"}, "timezone"),
    ],
    ids=[
        "no-name",
        "no-rules",
        "name-not-text",
        "unknown-key",
        "blank-name",
        "long-name",
        "long-description",
        "bad-zone",
    ],
)
def test_create_refuses_bad_fields_naming_them(api, body, field):
    errors = errors_of(api("post", "/segments", body))
    assert [e["field"] for e in errors] == [field]
    assert not Segment.objects.filter(predefined=False).exists()


def test_create_refuses_a_body_that_is_not_an_object(api):
    assert api("post", "/segments", raw="[1]").status_code == 422
    assert api("post", "/segments", raw="{nope").status_code == 400


def test_a_name_another_segment_has_is_a_conflict(api):
    make("Lisbon people", group(city("Lisbon")))
    response = api("post", "/segments", {"name": "LISBON  people", "rules": group(city("Porto"))})
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]
    assert Segment.objects.filter(name__iexact="lisbon people").count() == 1


# --- Invalid rules --------------------------------------------------------------------------


BAD_RULES = {
    "unknown-field": (
        group(city("Lisbon"), {**city("x"), "field": "shoe_size"}),
        "children[1]",
        "Unknown field",
    ),
    "operator-not-fitting-type": (
        group(city("Lisbon", operator="gt")),
        "children[0]",
        "does not fit",
    ),
    "wrong-value-type": (
        group(city("Lisbon"), {**city("x"), "value": 5}),
        "children[1]",
        "non-empty text",
    ),
    "wrong-json-type": (group(city("Lisbon"), negate="yes"), "root", "negate"),
    "unknown-node-key": (group({**city("Lisbon"), "colour": "red"}), "children[0]", "colour"),
    "empty-group": (group(), "root", "at least one condition"),
    "empty-nested-group": (group(city("Lisbon"), group()), "children[1]", "at least one condition"),
    "too-many-conditions": (
        group(*[city(f"c{i}") for i in range(MAX_CONDITIONS + 1)], match="any"),
        "root",
        f"At most {MAX_CONDITIONS} conditions",
    ),
    "unknown-segment": (group(in_segment(987654)), "children[0]", "No segment with id 987654"),
    "unknown-tag": (group(vip()), "children[0]", "No tag named"),
    "not-a-group": ({"type": "attribute", "field": "city"}, "root", "must be a group"),
}


@pytest.mark.parametrize(("rules", "node", "message"), BAD_RULES.values(), ids=BAD_RULES.keys())
def test_invalid_rules_answer_422_naming_the_node(api, rules, node, message):
    response = api("post", "/segments", {"name": "Bad", "rules": rules})
    errors = errors_of(response)
    assert response.json()["detail"] == "The rules are invalid."
    assert node in [e["node"] for e in errors]
    error = next(e for e in errors if e["node"] == node)
    assert error["field"] == ("rules" if node == "root" else f"rules.{node}")
    assert message in error["message"]
    assert not Segment.objects.filter(name="Bad").exists()


def test_a_segment_cannot_refer_to_itself(api):
    segment = make("A", group(city("Lisbon")))
    response = api("patch", f"/segments/{segment.pk}", {"rules": group(in_segment(segment.pk))})
    (error,) = errors_of(response)
    assert (error["node"], error["field"]) == ("children[0]", "rules.children[0]")
    assert "itself" in error["message"]
    segment.refresh_from_db()
    assert segment.rules == group(city("Lisbon"))


def test_a_cycle_is_refused_on_patch(api):
    a = make("A", group(city("Lisbon")))
    b = make("B", group(in_segment(a.pk)))
    response = api("patch", f"/segments/{a.pk}", {"rules": group(in_segment(b.pk, "not_in"))})
    (error,) = errors_of(response)
    assert (error["node"], error["field"]) == ("children[0]", "rules.children[0]")
    assert "cycle" in error["message"]
    a.refresh_from_db()
    assert (a.rules, a.depends_on, a.revision) == (group(city("Lisbon")), [], 1)


def test_a_longer_cycle_is_refused_too(api):
    a = make("A", group(city("Lisbon")))
    b = make("B", group(in_segment(a.pk)))
    c = make("C", group(in_segment(b.pk), city("Porto"), match="any"))
    errors = errors_of(api("patch", f"/segments/{a.pk}", {"rules": group(in_segment(c.pk))}))
    assert "cycle" in errors[0]["message"]


# --- Read -----------------------------------------------------------------------------------


def test_get_shows_status_membership_and_what_uses_it(api, town):
    a = built("Lisbon", group(city("Lisbon")))
    b = make("Lisbon VIPs", group(in_segment(a.pk), vip()))
    response = api("get", f"/segments/{a.pk}", role=Role.VIEWER)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == SegmentStatus.READY
    assert (body["member_count"], body["build_progress"]) == (3, 100)
    assert body["built_at"] is not None
    assert body["used_by"] == [{"id": b.pk, "name": "Lisbon VIPs"}]
    assert set(body) >= {"rules", "rules_version", "timezone", "time_based"}
    assert set(body) >= {"created_at", "updated_at"}


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_an_unknown_segment_is_404_json(api, method):
    response = api(method, "/segments/987654", {} if method == "patch" else None)
    assert response.status_code == 404
    assert response.json() == {"detail": "No segment with this id."}


@pytest.mark.parametrize("path", ["/segments/abc", f"/segments/{2**63}", "/segments/0"])
def test_a_segment_id_that_cannot_exist_is_422(api, path):
    assert api("get", path).status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        "/segments/987654/members",
        "/segments/987654/explain/lis-1",
        "/segments/{a}/explain/nobody",
        "/customers/nobody/segments",
    ],
)
def test_unknown_ids_in_read_paths_are_404(api, town, path):
    a = make("A", group(city("Lisbon")))
    response = api("get", path.format(a=a.pk))
    assert response.status_code == 404
    assert "detail" in response.json()


def test_list_searches_and_sorts(api, town):
    lisbon = built("Lisbon", group(city("Lisbon")))
    porto = built("Porto", group(city("Porto")))
    with_city = built(
        "Anyone with a city",
        group({"type": "attribute", "field": "city", "operator": "is_not_empty"}),
    )
    make("Lisbon VIPs", group(in_segment(lisbon.pk), vip()))
    # A later edit makes Porto the most recently updated.
    api("patch", f"/segments/{porto.pk}", {"description": "Northern customers"})

    def names(**params):
        response = api("get", "/segments", params, role=Role.VIEWER)
        assert response.status_code == 200
        return [s["name"] for s in response.json()["segments"]]

    every = names()
    assert every[0] == "Active Mobile Users"
    assert {"Inactive Mobile Users", "Lisbon", "Lisbon VIPs", "Porto"} <= set(every)
    assert names(q="lisbon") == ["Lisbon", "Lisbon VIPs"]
    assert names(q="northern") == ["Porto"]
    assert names(q="o", sort="-size")[:3] == [with_city.name, lisbon.name, porto.name]
    assert names(sort="size")[-1] == with_city.name
    assert names(sort="-updated")[0] == "Porto"
    assert names(sort="created")[-1] == "Lisbon VIPs"
    assert names(sort="-name")[0] == "Porto"

    listed = api("get", "/segments", {"q": "Lisbon"}).json()["segments"]
    assert listed[0]["used_by"] == [{"id": listed[1]["id"], "name": "Lisbon VIPs"}]
    assert listed[0]["member_count"] == 3

    errors = errors_of(api("get", "/segments", {"sort": "colour"}))
    assert errors[0]["field"] == "sort"


# --- Edit -----------------------------------------------------------------------------------


def test_patch_changes_only_the_keys_given(api, town):
    segment = built("Lisbon", group(city("Lisbon")))
    response = api("patch", f"/segments/{segment.pk}", {"description": "Capital"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["name"], body["description"], body["status"]) == ("Lisbon", "Capital", "ready")
    segment.refresh_from_db()
    assert segment.revision == 1

    response = api(
        "patch",
        f"/segments/{segment.pk}",
        {"name": "Porto", "rules": group(city("Porto")), "timezone": "Europe/Lisbon"},
    )
    body = response.json()
    assert (body["name"], body["status"], body["timezone"]) == (
        "Porto",
        "computing",
        "Europe/Lisbon",
    )
    assert body["rules"] == group(city("Porto"))
    segment.refresh_from_db()
    assert segment.revision == 2
    segment_build(segment.pk, now=NOW)
    assert api("get", f"/segments/{segment.pk}").json()["member_count"] == 1


def test_patch_refuses_null_unknown_keys_and_bad_rules(api):
    segment = make("Lisbon", group(city("Lisbon")))
    errors = errors_of(api("patch", f"/segments/{segment.pk}", {"name": None, "rules": None}))
    assert [e["field"] for e in errors] == ["name", "rules"]
    errors = errors_of(api("patch", f"/segments/{segment.pk}", {"colour": "red"}))
    assert [e["field"] for e in errors] == ["colour"]
    errors = errors_of(
        api("patch", f"/segments/{segment.pk}", {"rules": group(city("Lisbon", operator="gt"))})
    )
    assert [e["field"] for e in errors] == ["rules.children[0]"]
    errors = errors_of(api("patch", f"/segments/{segment.pk}", {"timezone": "Nowhere/City"}))
    assert [e["field"] for e in errors] == ["timezone"]
    segment.refresh_from_db()
    assert (segment.name, segment.revision, segment.timezone) == ("Lisbon", 1, "UTC")


def test_patch_to_another_segments_name_is_a_conflict_but_recasing_is_fine(api):
    make("Porto", group(city("Porto")))
    segment = make("Lisbon", group(city("Lisbon")))
    assert api("patch", f"/segments/{segment.pk}", {"name": "porto"}).status_code == 409
    response = api("patch", f"/segments/{segment.pk}", {"name": "LISBON"})
    assert response.status_code == 200
    assert response.json()["name"] == "LISBON"


# --- Roles ----------------------------------------------------------------------------------


def test_a_viewer_cannot_write(api):
    segment = make("Lisbon", group(city("Lisbon")))
    writes = [
        ("post", "/segments", {"name": "New", "rules": group(city("Porto"))}),
        ("patch", f"/segments/{segment.pk}", {"name": "Renamed"}),
        ("delete", f"/segments/{segment.pk}", None),
        ("post", f"/segments/{segment.pk}/duplicate", None),
    ]
    for method, path, body in writes:
        response = api(method, path, body, role=Role.VIEWER)
        assert response.status_code == 403, (method, path)
        assert "Marketer" in response.json()["detail"]
    assert list(Segment.objects.filter(predefined=False).values_list("name", flat=True)) == [
        "Lisbon"
    ]


def test_a_viewer_is_refused_before_the_body_is_read(api):
    response = api("post", "/segments", {"name": "", "rules": group()}, role=Role.VIEWER)
    assert response.status_code == 403


def test_an_admin_can_write(api):
    response = api(
        "post", "/segments", {"name": "Lisbon", "rules": group(city("Lisbon"))}, role=Role.ADMIN
    )
    assert response.status_code == 201


def test_the_api_needs_a_token(client):
    assert client.get("/api/v1/segments").status_code == 401


# --- Delete and duplicate -------------------------------------------------------------------


def test_delete_answers_204_and_removes_the_membership(api, town):
    segment = built("Lisbon", group(city("Lisbon")))
    assert Membership.objects.filter(segment=segment).count() == 3
    response = api("delete", f"/segments/{segment.pk}")
    assert response.status_code == 204
    assert not Segment.objects.filter(pk=segment.pk).exists()
    assert not Membership.objects.filter(segment_id=segment.pk).exists()
    assert api("get", f"/segments/{segment.pk}").status_code == 404


def test_delete_is_refused_while_another_segment_uses_it(api):
    a = make("Lisbon", group(city("Lisbon")))
    b = make("Lisbon VIPs", group(in_segment(a.pk), city("Porto"), match="any"))
    response = api("delete", f"/segments/{a.pk}")
    assert response.status_code == 409
    body = response.json()
    assert "Lisbon VIPs" in body["detail"]
    assert body["used_by"] == [{"id": b.pk, "name": "Lisbon VIPs"}]
    assert Segment.objects.filter(pk=a.pk).exists()

    assert api("delete", f"/segments/{b.pk}").status_code == 204
    assert api("delete", f"/segments/{a.pk}").status_code == 204


def test_duplicate_answers_201_with_a_copy(api):
    segment = make("Lisbon", group(city("Lisbon")), description="Capital", tz="Europe/Lisbon")
    response = api("post", f"/segments/{segment.pk}/duplicate")
    assert response.status_code == 201
    copy = response.json()
    assert copy["id"] != segment.pk
    assert copy["name"] == "Copy of Lisbon"
    assert (copy["description"], copy["timezone"]) == ("Capital", "Europe/Lisbon")
    assert copy["rules"] == segment.rules
    assert copy["status"] == "computing"
    assert api("post", f"/segments/{segment.pk}/duplicate").json()["name"] == "Copy of Lisbon (2)"
    assert api("post", "/segments/987654/duplicate").status_code == 404


# --- Members --------------------------------------------------------------------------------


def test_members_are_paginated_by_cursor(api, town):
    extra = [CustomerFactory(city="Lisbon") for _ in range(4)]
    segment = built("Lisbon", group(city("Lisbon")))
    expected = sorted(
        [town["lis-1"].pk, town["lis-2"].pk, town["lis-3"].pk, *(c.pk for c in extra)]
    )

    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        response = api("get", f"/segments/{segment.pk}/members", params, role=Role.VIEWER)
        assert response.status_code == 200, response.content
        body = response.json()
        pages += 1
        assert len(body["members"]) == (3 if body["next_cursor"] else 1)
        seen += body["members"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert [m["id"] for m in seen] == expected
    first = seen[0]
    assert first["user_id"] == "lis-1"
    assert (first["name"], first["email"]) == ("Ana Lima", "lis-1@example.com")
    assert datetime.fromisoformat(first["entered_at"]) == NOW


def test_members_search_and_limits(api, town):
    segment = built("Lisbon", group(city("Lisbon")))
    path = f"/segments/{segment.pk}/members"
    body = api("get", path, {"q": "bruno"}).json()
    assert [m["user_id"] for m in body["members"]] == ["lis-2"]
    assert body["next_cursor"] is None
    assert [m["user_id"] for m in api("get", path).json()["members"]] == ["lis-1", "lis-2", "lis-3"]
    after_first = api("get", path, {"cursor": encode_cursor(town["lis-1"].pk)}).json()
    assert [m["user_id"] for m in after_first["members"]] == ["lis-2", "lis-3"]

    assert api("get", path, {"limit": 500}).status_code == 200
    assert errors_of(api("get", path, {"limit": 501}))[0]["field"] == "limit"
    assert errors_of(api("get", path, {"limit": 0}))[0]["field"] == "limit"
    for cursor in ["nope", encode_cursor(-1), encode_cursor(2**63)]:
        assert errors_of(api("get", path, {"cursor": cursor}))[0]["field"] == "cursor"


def test_an_unbuilt_segment_has_no_members_yet(api, town):
    segment = make("Lisbon", group(city("Lisbon")))
    body = api("get", f"/segments/{segment.pk}/members").json()
    assert body == {"members": [], "next_cursor": None}


# --- Preview --------------------------------------------------------------------------------


def test_preview_counts_the_matching_customers_and_each_condition(api, town):
    purchase_twice = {
        "type": "event",
        "name": "purchase",
        "count": {"operator": "gte", "value": 2},
    }
    rules = group(city("Lisbon"), vip(), purchase_twice)
    response = api("post", "/segments/preview", {"rules": rules}, role=Role.VIEWER)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["count"], body["estimated"]) == (1, False)
    assert body["conditions"] == [3, 2, 1]
    assert body["sample_user_ids"] == ["lis-1"]
    assert body["sample"] == [
        {
            "id": town["lis-1"].pk,
            "user_id": "lis-1",
            "name": "Ana Lima",
            "email": "lis-1@example.com",
        }
    ]

    body = api(
        "post", "/segments/preview", {"rules": group(city("Lisbon"), vip(), match="any")}
    ).json()
    assert (body["count"], body["conditions"]) == (4, [3, 4])
    assert body["sample_user_ids"] == ["lis-1", "lis-2", "lis-3", "opo-1"]

    # Negative operators match customers with no value: is_not Lisbon takes Porto and no city.
    body = api("post", "/segments/preview", {"rules": group(city("lisbon", "is_not"))}).json()
    assert (body["count"], body["conditions"]) == (2, [2])
    assert body["sample_user_ids"] == ["opo-1", "none-1"]
    assert not Segment.objects.filter(predefined=False).exists()


def test_preview_reads_relative_dates_in_the_given_zone(api):
    # 23:30 UTC on the 22nd is already the 23rd in Tokyo.
    CustomerFactory(user_id="late", created_at=datetime(2026, 11, 22, 23, 30, tzinfo=UTC))
    rules = group(
        {"type": "attribute", "field": "created_at", "operator": "was", "value": 0, "unit": "days"}
    )
    with time_machine.travel(NOW, tick=False):
        utc = api("post", "/segments/preview", {"rules": rules, "timezone": "UTC"}).json()
        tokyo = api("post", "/segments/preview", {"rules": rules, "timezone": "Asia/Tokyo"}).json()
    assert (utc["count"], tokyo["count"]) == (0, 1)


def test_preview_refuses_bad_rules_and_zones(api, town):
    errors = errors_of(
        api(
            "post", "/segments/preview", {"rules": group(city("Lisbon"), group())}, role=Role.VIEWER
        )
    )
    assert [(e["field"], e["node"]) for e in errors] == [("rules.children[1]", "children[1]")]
    errors = errors_of(
        api("post", "/segments/preview", {"rules": group(city("x")), "timezone": "X/Y"})
    )
    assert [e["field"] for e in errors] == ["timezone"]
    errors = errors_of(api("post", "/segments/preview", {}))
    assert [e["field"] for e in errors] == ["rules"]


# --- A customer's segments and the explanation ----------------------------------------------


def test_customer_segments_lists_the_segments_the_customer_is_in(api, town):
    lisbon = built("Lisbon", group(city("Lisbon")))
    vips = built("VIPs", group(vip()))
    built("Porto", group(city("Porto")))
    response = api("get", "/customers/lis-1/segments", role=Role.VIEWER)
    assert response.status_code == 200
    segments = response.json()["segments"]
    assert [(s["id"], s["name"]) for s in segments] == [(lisbon.pk, "Lisbon"), (vips.pk, "VIPs")]
    assert all(datetime.fromisoformat(s["entered_at"]) == NOW for s in segments)
    assert api("get", "/customers/none-1/segments").json() == {"segments": []}


def test_explain_a_member(api, town):
    segment = built("Lisbon VIPs", group(city("Lisbon"), vip()))
    response = api("get", f"/segments/{segment.pk}/explain/lis-2", role=Role.VIEWER)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["segment"] == {"id": segment.pk, "name": "Lisbon VIPs"}
    assert body["user_id"] == "lis-2"
    assert (body["matches"], body["member"]) == (True, True)
    root = body["rules"]
    assert (root["node"], root["held"]) == ("root", True)
    assert [(c["node"], c["held"], c["seen"]) for c in root["children"]] == [
        ("children[0]", True, "lisbon"),
        ("children[1]", True, "vip"),
    ]


def test_explain_a_non_member(api, town):
    segment = built("Lisbon VIPs", group(city("Lisbon"), vip()))
    body = api("get", f"/segments/{segment.pk}/explain/lis-3").json()
    assert (body["matches"], body["member"]) == (False, False)
    assert [(c["held"], c["seen"]) for c in body["rules"]["children"]] == [
        (True, "Lisbon"),
        (False, ""),
    ]
    body = api("get", f"/segments/{segment.pk}/explain/none-1").json()
    assert [(c["held"], c["seen"]) for c in body["rules"]["children"]] == [
        (False, None),
        (False, ""),
    ]


def test_explain_reads_the_rules_now_while_membership_lags(api, town):
    segment = make("Porto", group(city("Porto")))  # not built yet
    body = api("get", f"/segments/{segment.pk}/explain/opo-1").json()
    assert (body["matches"], body["member"]) == (True, False)
    Customer.objects.filter(user_id="opo-1").update(city="Braga")
    assert api("get", f"/segments/{segment.pk}/explain/opo-1").json()["matches"] is False

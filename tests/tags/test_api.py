from __future__ import annotations

import json

import pytest

from activity.models import Activity
from activity.services import Actor
from members.roles import Role
from tags.models import CustomerTag, Tag
from tags.services import customer_tags_add
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _tag(name, *customers):
    tags = customer_tags_add(customer=customers[0], names=[name], actor=Actor.system())
    for customer in customers[1:]:
        customer_tags_add(customer=customer, names=[name], actor=Actor.system())
    return tags[0]


def test_list_tags_with_customer_counts_for_any_role(api):
    a, b = CustomerFactory(), CustomerFactory()
    vip = _tag("VIP", a, b)
    _tag("newsletter", a)
    Tag.objects.create(name="unused")
    response = api("get", "/tags", role=Role.VIEWER)
    assert response.status_code == 200
    tags = response.json()["tags"]
    assert [(t["name"], t["customers"]) for t in tags] == [
        ("newsletter", 1),
        ("unused", 0),
        ("VIP", 2),
    ]
    assert tags[2]["id"] == vip.pk and tags[2]["created_at"]


def test_list_tags_search(api):
    for name in ("Summer sale", "Winter sale", "VIP"):
        Tag.objects.create(name=name)
    assert [t["name"] for t in api("get", "/tags?q=SALE").json()["tags"]] == [
        "Summer sale",
        "Winter sale",
    ]
    assert api("get", "/tags?q=%20").json()["tags"] != []  # blank: no filter
    assert api("get", "/tags?q=a%00").status_code == 422
    assert api("get", "/tags?q=" + "x" * 101).status_code == 422


def test_create_tag(api):
    response = api("post", "/tags", {"name": "  Big   spender "})
    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["customers"]) == ("Big spender", 0)
    tag = Tag.objects.get(pk=body["id"])
    assert tag.name == "Big spender"
    assert Activity.objects.filter(action="tag.created", source="api").exists()


def test_create_existing_tag_is_409_regardless_of_case(api):
    Tag.objects.create(name="VIP")
    response = api("post", "/tags", {"name": "vip"})
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]
    assert Tag.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": None}, "name"),
        ({"name": 5}, "name"),
        ({"name": ["a"]}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"name": "a", "colour": "red"}, "colour"),
    ],
)
def test_create_tag_bad_input_is_422(api, body, field):
    response = api("post", "/tags", body)
    assert response.status_code == 422, response.content
    assert response.json()["errors"][0]["field"] == field
    assert not Tag.objects.exists()


@pytest.mark.parametrize(
    ("raw", "status"),
    [("{nope", 400), ("[]", 422), ('"vip"', 422), ('{"name": "\\udc00"}', 422), ("", 422)],
)
def test_create_tag_malformed_body_is_a_client_error(api, raw, status):
    response = api("post", "/tags", raw=raw)
    assert response.status_code == status, response.content
    assert response.json()["detail"]
    assert not Tag.objects.exists()


def test_get_one_tag(api):
    tag = _tag("VIP", CustomerFactory())
    body = api("get", f"/tags/{tag.pk}", role=Role.VIEWER).json()
    assert (body["id"], body["name"], body["customers"]) == (tag.pk, "VIP", 1)


@pytest.mark.parametrize(
    ("tag_id", "status"),
    [("999999", 404), ("0", 422), ("-1", 422), ("abc", 422), ("99999999999999999999", 422)],
)
def test_unknown_or_invalid_tag_id(api, tag_id, status):
    for method, body in [("get", None), ("patch", {"name": "x"}), ("delete", None)]:
        response = api(method, f"/tags/{tag_id}", body)
        assert response.status_code == status, (method, response.content)
    response = api("post", f"/tags/{tag_id}/merge", {"into": 1})
    assert response.status_code == status


def test_rename_tag(api):
    tag = _tag("vip", CustomerFactory())
    response = api("patch", f"/tags/{tag.pk}", {"name": "VIP"})  # a change of case is a rename
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["customers"]) == ("VIP", 1)
    tag.refresh_from_db()
    assert tag.name == "VIP"


def test_rename_onto_another_tags_name_is_409(api):
    Tag.objects.create(name="Gold")
    tag = Tag.objects.create(name="Silver")
    response = api("patch", f"/tags/{tag.pk}", {"name": "GOLD"})
    assert response.status_code == 409
    tag.refresh_from_db()
    assert tag.name == "Silver"
    assert api("patch", f"/tags/{tag.pk}", {"name": ""}).status_code == 422
    assert api("patch", f"/tags/{tag.pk}", {}).status_code == 422


def test_delete_tag_removes_it_from_customers(api):
    customer = CustomerFactory()
    tag = _tag("VIP", customer)
    response = api("delete", f"/tags/{tag.pk}")
    assert response.status_code == 204
    assert not Tag.objects.exists()
    assert not CustomerTag.objects.exists()
    assert customer.__class__.objects.filter(pk=customer.pk).exists()


def test_merge_tags(api):
    a, b, c = CustomerFactory(), CustomerFactory(), CustomerFactory()
    source = _tag("V.I.P.", a, b)
    target = _tag("VIP", b, c)
    response = api("post", f"/tags/{source.pk}/merge", {"into": target.pk})
    assert response.status_code == 200
    body = response.json()
    assert body["tag"]["id"] == target.pk
    assert body["tag"]["customers"] == 3
    assert not Tag.objects.filter(pk=source.pk).exists()


@pytest.mark.parametrize(
    "body",
    [{}, {"into": "x"}, {"into": 0}, {"into": 10**30}, {"into": 999999}, {"into": 1, "b": 2}],
)
def test_merge_bad_input_is_422(api, body):
    source = Tag.objects.create(name="a")
    response = api("post", f"/tags/{source.pk}/merge", body)
    assert response.status_code == 422, response.content
    assert Tag.objects.filter(pk=source.pk).exists()


def test_merge_into_itself_is_422(api):
    tag = Tag.objects.create(name="a")
    response = api("post", f"/tags/{tag.pk}/merge", {"into": tag.pk})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "into"


def test_viewer_cannot_change_tags(api):
    tag = Tag.objects.create(name="VIP")
    other = Tag.objects.create(name="Other")
    assert api("post", "/tags", {"name": "New"}, role=Role.VIEWER).status_code == 403
    assert api("post", "/tags", raw="{bad", role=Role.VIEWER).status_code == 403
    assert api("patch", f"/tags/{tag.pk}", {"name": "X"}, role=Role.VIEWER).status_code == 403
    assert api("delete", f"/tags/{tag.pk}", role=Role.VIEWER).status_code == 403
    response = api("post", f"/tags/{tag.pk}/merge", {"into": other.pk}, role=Role.VIEWER)
    assert response.status_code == 403
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["Other", "VIP"]


def test_admin_can_change_tags(api):
    assert api("post", "/tags", {"name": "New"}, role=Role.ADMIN).status_code == 201


def test_oversized_tag_body_is_413(api):
    tag = Tag.objects.create(name="VIP")
    big = json.dumps({"name": "x" * (1024 * 1024)})
    assert api("patch", f"/tags/{tag.pk}", raw=big).status_code == 413

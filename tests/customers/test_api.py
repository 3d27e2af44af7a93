from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from activity.models import Activity
from activity.services import Actor
from customers.models import Customer, CustomField
from customers.profile import ANALYTICS_FIELDS, STANDARD_FIELDS
from customers.services import custom_field_create
from members.roles import Role
from tags.models import CustomerTag, Tag
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def fields(db):
    actor = Actor.system()
    return {
        t: custom_field_create(label=label, type=t, actor=actor)
        for t, label in [
            ("text", "Plan"),
            ("number", "Lifetime value"),
            ("date", "Signed up"),
            ("boolean", "Beta"),
        ]
    }


# --- PUT --------------------------------------------------------------------------------------


def test_put_creates_then_updates_only_the_fields_given(api):
    response = api("put", "/customers/u-1", {"name": "Ana", "email": " Ana@Example.com "})
    assert response.status_code == 201
    body = response.json()
    assert body["user_id"] == "u-1"
    assert body["email"] == "ana@example.com"
    assert body["user_type"] == "live"
    assert body["tags"] == [] and body["custom"] == {} and body["device_tokens"] == []

    response = api("put", "/customers/u-1", {"city": "Porto"})
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["email"], body["city"]) == ("Ana", "ana@example.com", "Porto")
    assert Customer.objects.count() == 1


def test_customer_json_has_every_documented_key(api):
    body = api("put", "/customers/u-1", {}).json()
    assert set(body) == {
        "id",
        "user_id",
        *STANDARD_FIELDS,
        "custom",
        "tags",
        "device_tokens",
        "analytics",
        "created_at",
        "updated_at",
    }
    assert set(body["analytics"]) == {name for name, _, _ in ANALYTICS_FIELDS}
    assert body["analytics"]["first_seen"] is None


def test_put_with_empty_body_creates_a_bare_customer(api):
    response = api("put", "/customers/bare")
    assert response.status_code == 201
    assert Customer.objects.get(user_id="bare").name == ""


def test_put_sets_and_removes_custom_values(api, fields):
    custom = {
        "plan": "pro",
        "lifetime_value": 12.5,
        "signed_up": "2024-05-01",
        "beta": True,
    }
    body = api("put", "/customers/u-1", {"custom": custom}).json()
    assert body["custom"] == {**custom, "signed_up": "2024-05-01T00:00:00Z"}
    body = api("put", "/customers/u-1", {"custom": {"plan": None, "beta": False}}).json()
    assert body["custom"] == {
        "lifetime_value": 12.5,
        "signed_up": "2024-05-01T00:00:00Z",
        "beta": False,
    }


def test_put_tags_add_and_keep_existing(api):
    api("put", "/customers/u-1", {"tags": ["vip"]})
    body = api("put", "/customers/u-1", {"tags": ["Newsletter", "VIP"]}).json()
    assert body["tags"] == ["Newsletter", "vip"]
    assert Tag.objects.count() == 2


def test_put_records_the_token_as_actor(api):
    api("put", "/customers/u-1", {"tags": ["vip"]})
    token = api.token()[0]
    assignment = CustomerTag.objects.get()
    assert (assignment.source, assignment.added_by_token) == ("api", token)
    entry = Activity.objects.get(action="customer.created")
    assert (entry.source, entry.token) == ("api", token)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"user_id": "other"}, "user_id", "read-only"),
        ({"first_seen": "2024-01-01T00:00:00Z"}, "first_seen", "read-only"),
        ({"id": 5}, "id", "read-only"),
        ({"created_at": "2024-01-01"}, "created_at", "read-only"),
        ({"colour": "red"}, "colour", "Unknown"),
        ({"custom": {"nope": 1}}, "custom.nope", "No such custom field"),
        ({"custom": ["plan"]}, "custom", "object"),
        ({"email": 5}, "email", "text"),
        ({"email": "not-an-address"}, "email", "e-mail"),
        ({"name": ["Ana"]}, "name", "text"),
        ({"name": "A\x00na"}, "name", "NUL"),
        ({"name": "x" * 256}, "name", "255"),
        ({"phone": "12"}, "phone", "phone"),
        ({"timezone": "Mars/Olympus"}, "timezone", "IANA"),
        ({"user_type": "robot"}, "user_type", "live"),
        ({"device_tokens": [{"token": "t"}]}, "device_tokens", "platform"),
        ({"device_tokens": "abc"}, "device_tokens", "list"),
        ({"tags": [""]}, "tags", "empty"),
        ({"tags": [5]}, "tags", "text"),
        ({"custom": {"lifetime_value": 10**20}}, "custom.lifetime_value", "10^15"),
        ({"custom": {"lifetime_value": "12"}}, "custom.lifetime_value", "number"),
        ({"custom": {"lifetime_value": True}}, "custom.lifetime_value", "number"),
        ({"custom": {"signed_up": "yesterday"}}, "custom.signed_up", "ISO-8601"),
        ({"custom": {"signed_up": "2024-02-30"}}, "custom.signed_up", ""),
        ({"custom": {"signed_up": 20240101}}, "custom.signed_up", "ISO-8601"),
        ({"custom": {"beta": "yes"}}, "custom.beta", "true or false"),
        ({"custom": {"plan": "a\x00b"}}, "custom.plan", "NUL"),
        ({"custom": {f"k{i}": 1 for i in range(101)}}, "custom", "100"),
    ],
)
def test_put_refuses_bad_fields_with_422_and_stores_nothing(api, fields, body, field, message):
    response = api("put", "/customers/u-1", body)
    assert response.status_code == 422, response.content
    errors = response.json()["errors"]
    assert field in [e["field"] for e in errors]
    assert message in next(e["message"] for e in errors if e["field"] == field)
    assert not Customer.objects.exists()


def test_put_reports_every_bad_field_at_once(api, fields):
    response = api("put", "/customers/u-1", {"email": "x", "colour": 1, "custom": {"beta": 2}})
    assert {e["field"] for e in response.json()["errors"]} == {"email", "colour", "custom.beta"}


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("{not json", 400),
        ('{"name": "Ana",}', 400),
        (b"\xff\xfe{}", 400),
        ("[]", 422),
        ('[{"name": "Ana"}]', 422),
        ('"Ana"', 422),
        ("42", 422),
        ("null", 422),
        ('{"name": "\\ud800"}', 422),  # a lone surrogate no text column can hold
        ('{"custom": {"lifetime_value": NaN}}', 422),
        ('{"custom": {"lifetime_value": 1e999}}', 422),  # infinity
        ('{"custom": {"lifetime_value": ' + "9" * 5000 + "}}", 400),  # beyond int digit limit
        ('{"name": ' + "[" * 100_000 + "]" * 100_000 + "}", 400),  # nested too deep
        ('{"name": ' + "[" * 500 + "]" * 500 + "}", 422),
    ],
    ids=[
        "malformed",
        "trailing-comma",
        "bad-utf8",
        "empty-array",
        "array",
        "string",
        "number",
        "null",
        "lone-surrogate",
        "nan",
        "infinity",
        "huge-integer",
        "deep-nesting",
        "nesting",
    ],
)
def test_malformed_bodies_are_client_errors_never_500(api, fields, raw, status):
    response = api("put", "/customers/u-1", raw=raw)
    assert response.status_code == status, response.content
    assert response.json()["detail"]
    assert not Customer.objects.exists()


def test_path_user_id_over_255_characters_is_422(api):
    response = api("put", "/customers/" + "x" * 256, {})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "user_id", "message": "At most 255 characters (got 256)."}
    ]
    assert api("put", "/customers/" + "x" * 255, {}).status_code == 201


@pytest.mark.parametrize("user_id", ["a%00b", "a%09b", "%20%20"])
def test_path_user_id_with_control_characters_or_blank_is_422(api, user_id):
    for method in ("put", "get", "delete"):
        response = api(method, f"/customers/{user_id}", {} if method == "put" else None)
        assert response.status_code == 422, (method, response.content)
        assert response.json()["errors"][0]["field"] == "user_id"


def test_user_id_is_taken_as_given_with_unicode(api):
    response = api("put", "/customers/%C3%A9l%C3%A8ve@x", {})
    assert response.status_code == 201
    assert response.json()["user_id"] == "élève@x"
    assert api("get", "/customers/%C3%A9l%C3%A8ve@x").status_code == 200


def test_body_over_one_megabyte_is_413(api, settings):
    CustomerFactory(user_id="u-1", name="Before")
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 1024 * 1024  # the documented limit
    big = json.dumps({"name": "x" * (1024 * 1024)})
    for method, path in [
        ("put", "/customers/u-1"),
        ("post", "/customers/bulk"),
        ("post", "/customers/u-1/tags"),
        ("post", "/custom-fields"),
        ("post", "/tags"),
        ("patch", "/me"),  # a body ninja parses itself
    ]:
        response = api(method, path, raw=big, role=Role.ADMIN)
        assert response.status_code == 413, (path, response.content)
        assert "too large" in response.json()["detail"]
    assert Customer.objects.get().name == "Before"


def test_body_just_under_one_megabyte_is_read(api):
    body = json.dumps({"name": "Ana", "city": "x" * 300})
    padded = body[:-1] + " " * (1024 * 1024 - len(body)) + "}"
    assert len(padded.encode()) == 1024 * 1024
    response = api("put", "/customers/u-1", raw=padded)
    assert response.status_code == 422  # read and validated: the city is too long
    assert response.json()["errors"][0]["field"] == "city"


def test_viewer_cannot_write_customers(api):
    assert api("put", "/customers/u-1", {"name": "x"}, role=Role.VIEWER).status_code == 403
    assert api("put", "/customers/u-1", raw="{bad", role=Role.VIEWER).status_code == 403
    body = {"customers": [{"user_id": "u-1"}]}
    assert api("post", "/customers/bulk", body, role=Role.VIEWER).status_code == 403
    assert not Customer.objects.exists()
    CustomerFactory(user_id="u-2")
    assert api("delete", "/customers/u-2", role=Role.VIEWER).status_code == 403
    assert api("post", "/customers/u-2/tags", {"tags": ["a"]}, role=Role.VIEWER).status_code == 403
    assert api("delete", "/customers/u-2/tags?tag=a", role=Role.VIEWER).status_code == 403
    assert Customer.objects.filter(user_id="u-2").exists()
    assert not Tag.objects.exists()


def test_viewer_reads_and_admin_writes(api):
    assert api("put", "/customers/u-1", {"name": "Ana"}, role=Role.ADMIN).status_code == 201
    assert api("get", "/customers/u-1", role=Role.VIEWER).json()["name"] == "Ana"
    assert api("get", "/customers", role=Role.VIEWER).status_code == 200
    assert api("get", "/customers/u-1/tags", role=Role.VIEWER).status_code == 200


def test_no_token_is_401(client, db):
    assert client.get("/api/v1/customers").status_code == 401
    assert (
        client.put("/api/v1/customers/u-1", "{}", content_type="application/json").status_code
        == 401
    )


# --- Bulk -------------------------------------------------------------------------------------


def test_bulk_stores_valid_items_and_answers_each(api, fields):
    CustomerFactory(user_id="old", name="Old")
    response = api(
        "post",
        "/customers/bulk",
        {
            "customers": [
                {"user_id": "new", "name": "New", "custom": {"plan": "pro"}, "tags": ["t"]},
                {"user_id": "old", "city": "Faro"},
                {"user_id": "bad", "email": "nope", "custom": {"missing": 1}},
                {"name": "no id"},
                "not an object",
                {"user_id": "x" * 256},
                {"user_id": 42},
            ]
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["updated"], body["failed"]) == (1, 1, 5)
    results = body["results"]
    assert [r["index"] for r in results] == list(range(7))
    assert [r["status"] for r in results] == ["created", "updated"] + ["error"] * 5
    assert [r["user_id"] for r in results[:3]] == ["new", "old", "bad"]
    assert results[0]["errors"] == []
    assert {e["field"] for e in results[2]["errors"]} == {"email", "custom.missing"}
    assert results[3]["errors"] == [{"field": "user_id", "message": "A user ID is required."}]
    assert results[4]["errors"][0]["field"] == "customer"
    assert results[5]["user_id"] is None and "255" in results[5]["errors"][0]["message"]
    assert results[6]["errors"] == [{"field": "user_id", "message": "Must be text."}]

    new = Customer.objects.get(user_id="new")
    assert (new.name, new.custom) == ("New", {"plan": "pro"})
    assert list(new.customer_tags.values_list("tag__name", flat=True)) == ["t"]
    old = Customer.objects.get(user_id="old")
    assert (old.name, old.city) == ("Old", "Faro")
    assert not Customer.objects.filter(user_id="bad").exists()


def test_bulk_items_with_the_same_user_id_apply_in_order(api):
    body = api(
        "post",
        "/customers/bulk",
        {
            "customers": [
                {"user_id": "a", "name": "First", "city": "Lisbon"},
                {"user_id": "a", "name": "Second"},
            ]
        },
    ).json()
    assert [r["status"] for r in body["results"]] == ["created", "updated"]
    assert (body["created"], body["updated"]) == (1, 1)
    customer = Customer.objects.get(user_id="a")
    assert (customer.name, customer.city) == ("Second", "Lisbon")


def test_bulk_item_cannot_smuggle_read_only_fields(api):
    body = api(
        "post", "/customers/bulk", {"customers": [{"user_id": "a", "last_seen": "2024-01-01"}]}
    ).json()
    assert body["results"][0]["errors"] == [
        {"field": "last_seen", "message": "This field is read-only."}
    ]


def test_bulk_of_1000_is_set_based(api, django_assert_max_num_queries):
    items = [{"user_id": f"u{i}", "name": f"N{i}", "tags": ["bulk"]} for i in range(1000)]
    CustomerFactory(user_id="u5")
    # Auth, custom fields, the two upserts, tags, the log and the segments mark; not per item.
    with django_assert_max_num_queries(21):  # +1: the segments re-evaluation mark
        response = api("post", "/customers/bulk", {"customers": items})
    body = response.json()
    assert (body["created"], body["updated"], body["failed"]) == (999, 1, 0)
    assert Customer.objects.count() == 1000
    assert CustomerTag.objects.count() == 1000
    assert Activity.objects.filter(action="customers.upserted").count() == 1


def test_bulk_over_1000_items_is_refused_with_the_reason(api):
    response = api(
        "post", "/customers/bulk", {"customers": [{"user_id": f"u{i}"} for i in range(1001)]}
    )
    assert response.status_code == 422
    body = response.json()
    assert "1000" in body["detail"]
    assert body["errors"][0]["field"] == "customers"
    assert "1001" in body["errors"][0]["message"]
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "customers"),
        ({"customers": {"user_id": "a"}}, "customers"),
        ({"customers": None}, "customers"),
        ({"customers": [], "extra": 1}, "extra"),
    ],
)
def test_bulk_body_shape_errors_are_422(api, body, field):
    response = api("post", "/customers/bulk", body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


def test_bulk_array_body_is_422(api):
    response = api("post", "/customers/bulk", [{"user_id": "a"}])
    assert response.status_code == 422
    assert "array" in response.json()["errors"][0]["message"]


def test_bulk_with_no_items_is_an_empty_answer(api):
    body = api("post", "/customers/bulk", {"customers": []}).json()
    assert body == {"results": [], "created": 0, "updated": 0, "failed": 0}


# --- GET, DELETE --------------------------------------------------------------------------------


def test_get_one_customer_with_tags_and_analytics(api):
    customer = CustomerFactory(user_id="u-1", last_seen=datetime(2024, 5, 1, 9, 30, tzinfo=UTC))
    api("post", "/customers/u-1/tags", {"tags": ["b", "A"]})
    body = api("get", "/customers/u-1").json()
    assert body["id"] == customer.pk
    assert body["tags"] == ["A", "b"]
    assert body["analytics"]["last_seen"].startswith("2024-05-01T09:30:00")


def test_unknown_customer_is_404(api):
    for method in ("get", "delete"):
        response = api(method, "/customers/ghost")
        assert response.status_code == 404
        assert response.json()["detail"]
    assert api("get", "/customers/ghost/tags").status_code == 404
    assert api("post", "/customers/ghost/tags", {"tags": ["a"]}).status_code == 404


def test_delete_erases_the_customer(api):
    customer = CustomerFactory(user_id="u-1")
    api("post", "/customers/u-1/tags", {"tags": ["vip"]})
    response = api("delete", "/customers/u-1")
    assert response.status_code == 204
    assert response.content == b""
    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert not CustomerTag.objects.exists()
    assert Tag.objects.filter(name="vip").exists()
    assert Activity.objects.filter(action="customer.erased", source="api").exists()
    assert api("delete", "/customers/u-1").status_code == 404


def test_user_id_named_bulk_is_still_a_customer_path(api):
    assert api("put", "/customers/bulk", {"name": "Bulk"}).status_code == 201
    assert api("get", "/customers/bulk").json()["name"] == "Bulk"
    assert api("post", "/customers/bulk", {"customers": []}).json()["failed"] == 0
    assert api("delete", "/customers/bulk").status_code == 204
    assert not Customer.objects.exists()


# --- List -------------------------------------------------------------------------------------


def _pages(api, query=""):
    ids, cursor, pages = [], None, 0
    while True:
        sep = "&" if query else ""
        path = f"/customers?{query}{sep}limit=2" + (f"&cursor={cursor}" if cursor else "")
        response = api("get", path)
        assert response.status_code == 200, response.content
        body = response.json()
        ids += [c["user_id"] for c in body["customers"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages


def test_list_pages_by_cursor_in_creation_order(api):
    for i in range(5):
        CustomerFactory(user_id=f"u{i}")
    ids, pages = _pages(api)
    assert ids == [f"u{i}" for i in range(5)]
    assert pages == 3


def test_list_last_full_page_has_no_cursor(api):
    for i in range(4):
        CustomerFactory(user_id=f"u{i}")
    body = api("get", "/customers?limit=4").json()
    assert len(body["customers"]) == 4 and body["next_cursor"] is None
    assert api("get", "/customers").json()["customers"][0]["user_id"] == "u0"


def test_list_filters(api):
    CustomerFactory(user_id="a", user_type="test")
    CustomerFactory(user_id="b")
    CustomerFactory(user_id="c")
    api("post", "/customers/b/tags", {"tags": ["VIP"]})
    api("post", "/customers/a/tags", {"tags": ["vip", "other"]})
    Customer.objects.filter(user_id="c").update(updated_at=datetime(2020, 1, 1, tzinfo=UTC))
    Customer.objects.exclude(user_id="c").update(updated_at=datetime(2024, 1, 1, tzinfo=UTC))

    assert _pages(api, "tag=vip")[0] == ["a", "b"]
    assert _pages(api, "tag=Other")[0] == ["a"]
    assert _pages(api, "tag=nobody")[0] == []
    assert _pages(api, "user_type=test")[0] == ["a"]
    assert _pages(api, "user_type=live")[0] == ["b", "c"]
    assert _pages(api, "updated_since=2023-06-01T00:00:00Z")[0] == ["a", "b"]
    assert _pages(api, "updated_since=2023-06-01T00:00:00")[0] == ["a", "b"]  # naive is UTC
    since = (datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=1)).isoformat()
    assert _pages(api, f"updated_since={since.replace('+', '%2B')}")[0] == []
    assert _pages(api, "tag=vip&user_type=live")[0] == ["b"]
    assert _pages(api, "tag=%20VIP%20")[0] == ["a", "b"]


@pytest.mark.parametrize(
    "since",
    ["2024-01-01", "1700000000", "0001-01-01T00:00:00%2B14:00", "9999-12-31T23:59:59-12:00"],
)
def test_list_accepts_edge_dates(api, since):
    assert api("get", f"/customers?updated_since={since}").status_code == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=abc", "limit"),
        ("cursor=abc", "cursor"),
        ("cursor=%00", "cursor"),
        ("cursor=YzE6LTE", "cursor"),  # "c1:-1"
        ("cursor=YzE6OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "cursor"),  # beyond BIGINT
        ("user_type=robot", "user_type"),
        ("updated_since=yesterday", "updated_since"),
        ("updated_since=2024-13-01", "updated_since"),
        ("tag=a%00b", "tag"),
    ],
)
def test_list_bad_parameters_are_422(api, query, field):
    response = api("get", f"/customers?{query}")
    assert response.status_code == 422, response.content
    assert response.json()["errors"][0]["field"] == field


def test_list_limit_1000_is_allowed(api):
    assert api("get", "/customers?limit=1000").status_code == 200


# --- A customer's tags ----------------------------------------------------------------------


def test_customer_tags_add_list_remove(api):
    CustomerFactory(user_id="u-1")
    Tag.objects.create(name="Existing")
    response = api("post", "/customers/u-1/tags", {"tags": ["existing", "new one", "new one"]})
    assert response.status_code == 200
    tags = response.json()["tags"]
    assert [t["name"] for t in tags] == ["Existing", "new one"]
    assert {t["source"] for t in tags} == {"api"}
    assert all(t["added_at"] for t in tags)
    assert Tag.objects.count() == 2

    listed = api("get", "/customers/u-1/tags", role=Role.VIEWER).json()["tags"]
    assert listed == tags

    response = api("delete", "/customers/u-1/tags", {"tags": ["EXISTING", "never had"]})
    assert response.status_code == 200
    assert [t["name"] for t in response.json()["tags"]] == ["new one"]
    assert Tag.objects.filter(name="Existing").exists()  # only the assignment goes


def test_customer_tags_remove_by_query_parameters(api):
    CustomerFactory(user_id="u-1")
    api("post", "/customers/u-1/tags", {"tags": ["a", "b", "c"]})
    response = api("delete", "/customers/u-1/tags?tag=a&tag=c")
    assert response.status_code == 200
    assert [t["name"] for t in response.json()["tags"]] == ["b"]


def test_customer_tag_adding_keeps_the_first_time(api):
    CustomerFactory(user_id="u-1")
    first = api("post", "/customers/u-1/tags", {"tags": ["a"]}).json()["tags"][0]["added_at"]
    again = api("post", "/customers/u-1/tags", {"tags": ["A"]}).json()["tags"]
    assert [t["added_at"] for t in again] == [first]


@pytest.mark.parametrize(
    ("method", "body", "field"),
    [
        ("post", {}, "tags"),
        ("post", {"tags": "a", "extra": 1}, "extra"),
        ("post", {"tags": [""]}, "tags"),
        ("post", {"tags": [1]}, "tags"),
        ("post", {"tags": ["x" * 101]}, "tags"),
        ("post", {"tags": [f"t{i}" for i in range(101)]}, "tags"),
        ("post", {"tags": ["a\x00"]}, "tags"),
        ("delete", None, "tags"),
        ("delete", {"tags": {"a": 1}}, "tags"),
    ],
)
def test_customer_tags_bad_input_is_422(api, method, body, field):
    CustomerFactory(user_id="u-1")
    response = api(method, "/customers/u-1/tags", body)
    assert response.status_code == 422, response.content
    assert response.json()["errors"][0]["field"] == field
    assert not CustomerTag.objects.exists()


def test_tag_names_with_inner_whitespace_are_stored_once(api):
    response = api("put", "/customers/u-1", {"tags": ["VIP  gold", "vip gold"]})
    assert response.status_code == 201, response.content
    assert response.json()["tags"] == ["VIP gold"]
    response = api("post", "/customers/u-1/tags", {"tags": ["vip\tgold", "Summer  sale"]})
    assert [t["name"] for t in response.json()["tags"]] == ["Summer sale", "VIP gold"]


def test_tag_names_differing_only_in_non_ascii_case_are_one_tag(api):
    api("put", "/customers/u-1", {"tags": ["Émile"]})
    response = api("put", "/customers/u-2", {"tags": ["émile"]})
    assert response.status_code == 201, response.content
    assert response.json()["tags"] == ["Émile"]
    assert Tag.objects.count() == 1


# --- Custom fields ----------------------------------------------------------------------------


def test_custom_fields_list_for_any_role(api, fields):
    response = api("get", "/custom-fields", role=Role.VIEWER)
    assert response.status_code == 200
    listed = response.json()["custom_fields"]
    assert [f["name"] for f in listed] == ["beta", "lifetime_value", "plan", "signed_up"]
    assert set(listed[0]) == {"name", "label", "type", "created_at"}
    assert api("get", "/custom-fields/plan", role=Role.VIEWER).json()["type"] == "text"


def test_admin_creates_renames_and_deletes_a_custom_field(api):
    response = api(
        "post", "/custom-fields", {"label": "Loyalty tier", "type": "text"}, role=Role.ADMIN
    )
    assert response.status_code == 201
    assert response.json()["name"] == "loyalty_tier"
    assert api("put", "/customers/u-1", {"custom": {"loyalty_tier": "gold"}}).status_code == 201

    response = api("patch", "/custom-fields/loyalty_tier", {"label": "Tier"}, role=Role.ADMIN)
    assert response.status_code == 200
    assert response.json() | {"created_at": None} == {
        "name": "loyalty_tier",
        "label": "Tier",
        "type": "text",
        "created_at": None,
    }

    assert api("delete", "/custom-fields/loyalty_tier", role=Role.ADMIN).status_code == 204
    assert api("get", "/custom-fields/loyalty_tier").status_code == 404
    assert api("get", "/custom-fields").json()["custom_fields"] == []
    response = api("put", "/customers/u-1", {"custom": {"loyalty_tier": "gold"}})
    assert response.status_code == 422


def test_marketer_and_viewer_cannot_change_custom_fields(api, fields):
    for role in (Role.MARKETER, Role.VIEWER):
        assert (
            api("post", "/custom-fields", {"label": "X", "type": "text"}, role=role).status_code
            == 403
        )
        assert api("patch", "/custom-fields/plan", {"label": "Y"}, role=role).status_code == 403
        assert api("delete", "/custom-fields/plan", role=role).status_code == 403
    assert CustomField.objects.get(name="plan").label == "Plan"
    assert not CustomField.objects.filter(label="X").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"label": "Score", "type": "float"}, "type"),
        ({"label": "Score"}, "type"),
        ({"label": "", "type": "text"}, "label"),
        ({"label": "   ", "type": "text"}, "label"),
        ({"label": 5, "type": "text"}, "label"),
        ({"label": "x" * 101, "type": "text"}, "label"),
        ({"label": "plan", "type": "text"}, "label"),  # taken (case-insensitively)
        ({"label": "Score", "type": "text", "name": "score"}, "name"),
    ],
)
def test_custom_field_create_bad_input_is_422(api, fields, body, field):
    response = api("post", "/custom-fields", body, role=Role.ADMIN)
    assert response.status_code == 422, response.content
    assert response.json()["errors"][0]["field"] == field
    assert CustomField.objects.count() == 4


def test_custom_field_rename_bad_input_and_unknown_names(api, fields):
    response = api("patch", "/custom-fields/plan", {"label": "Beta"}, role=Role.ADMIN)
    assert response.status_code == 422
    assert api("patch", "/custom-fields/plan", {}, role=Role.ADMIN).status_code == 422
    for name in ("ghost", "a%00b", "Plan", "x" * 300):
        assert (
            api("patch", f"/custom-fields/{name}", {"label": "Z"}, role=Role.ADMIN).status_code
            == 404
        )
        assert api("get", f"/custom-fields/{name}").status_code == 404


# --- Documentation ------------------------------------------------------------------------------


def test_openapi_documents_the_endpoints_and_bodies(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert {"put", "get", "delete"} <= set(paths["/api/v1/customers/{user_id}"])
    assert {"get", "post", "delete"} <= set(paths["/api/v1/customers/{user_id}/tags"])
    assert "post" in paths["/api/v1/customers/bulk"]
    assert {"get", "post"} <= set(paths["/api/v1/custom-fields"])
    body = paths["/api/v1/customers/bulk"]["post"]["requestBody"]["content"]["application/json"]
    item = body["schema"]["properties"]["customers"]["items"]
    assert {"user_id", "email", "custom", "tags", "device_tokens"} <= set(item["properties"])
    assert "$ref" not in json.dumps(body)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""],
)
def test_other_content_types_are_read_as_json_or_refused_never_500(client, api, content_type):
    token = api.token()[1]
    response = client.put(
        "/api/v1/customers/u-1",
        '{"name": "Ana"}',
        content_type=content_type,
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code in (201, 400, 415, 422), response.content

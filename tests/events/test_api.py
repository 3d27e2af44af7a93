"""The events REST API (events/api.py): POST /api/v1/events, a customer's timeline and the
event catalog."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
import time_machine

from activity.models import Activity
from activity.services import Actor
from customers.models import Customer
from customers.services import customer_erase
from events.builtin import BUILTIN_EVENTS
from events.ingest import MAX_BATCH, events_ingest
from events.models import Event
from members.roles import Role
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def ev(user_id: str = "u-1", name: str = "purchase", **extra) -> dict:
    return {"user_id": user_id, "name": name, **extra}


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- POST /events: body shapes ---------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"events": [ev(id="e1"), ev(id="e2")]},
        [ev(id="e1"), ev(id="e2")],
    ],
    ids=["envelope", "bare-array"],
)
def test_a_batch_is_accepted_as_an_envelope_or_a_bare_array(api, body):
    response = api("post", "/events", body)
    assert response.status_code == 200
    data = response.json()
    assert (data["accepted"], data["rejected"]) == (2, 0)
    assert [(r["index"], r["status"], r["client_id"]) for r in data["results"]] == [
        (0, "accepted", "e1"),
        (1, "accepted", "e2"),
    ]
    assert sorted(Event.objects.values_list("pk", flat=True)) == sorted(
        r["id"] for r in data["results"]
    )


def test_a_single_event_object_is_a_batch_of_one(api):
    response = api("post", "/events", ev(id="e1", properties={"amount": 3}))
    assert response.status_code == 200
    (result,) = response.json()["results"]
    assert result == {"index": 0, "status": "accepted", "id": result["id"], "client_id": "e1"}
    assert Event.objects.get().properties == {"amount": 3}


def test_an_event_is_stored_as_sent(api):
    body = ev(
        id="evt-1",
        name="Checkout.Completed",
        timestamp="2026-11-20T09:30:00+02:00",
        properties={"amount": 12.5, "items": [{"sku": "A"}], "city": "Zürich"},
        context={"platform": "web", "browser": "Firefox", "locale": "de-CH"},
    )
    with time_machine.travel(NOW, tick=False):
        response = api("post", "/events", body)
    assert response.status_code == 200
    row = Event.objects.select_related("event_type").get()
    assert row.event_type.name == "checkout.completed"
    assert row.occurred_at == datetime(2026, 11, 20, 7, 30, tzinfo=UTC)
    assert row.client_id == "evt-1"
    assert row.properties == body["properties"]
    assert row.context == body["context"]
    assert row.received_at is not None  # the database's clock


def test_a_missing_timestamp_means_now(api):
    with time_machine.travel(NOW, tick=False):
        assert api("post", "/events", ev()).status_code == 200
    assert Event.objects.get().occurred_at == NOW


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        ("{bad", 400, "not valid JSON"),
        ("", 400, "not valid JSON"),
        (b"\xff\xfe[]", 400, "not valid JSON"),
        ("[" * 100_000, 400, "not valid JSON"),
        ("[]", 422, "at least one event"),
        ('{"events": []}', 422, "at least one event"),
        ('{"events": {"user_id": "u-1"}}', 422, "Must be an array of events."),
        ('{"events": null}', 422, "Must be an array of events."),
        ('"purchase"', 422, "Must be an array of events."),
        ("42", 422, "Must be an array of events."),
        ("null", 422, "Must be an array of events."),
    ],
)
def test_malformed_bodies_are_client_errors(api, raw, status, message):
    response = api("post", "/events", raw=raw)
    assert response.status_code == status, response.content
    assert message in json.dumps(response.json())
    assert not Event.objects.exists()


def test_unknown_envelope_keys_are_refused(api):
    response = api("post", "/events", {"events": [ev()], "batch_id": 7})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "batch_id", "message": "Unknown field."}]
    assert not Event.objects.exists()


def test_a_lone_surrogate_costs_only_its_own_event(api):
    raw = (
        '[{"user_id": "u-1", "name": "x", "id": "\\ud800"},'
        ' {"user_id": "u-\\udc00", "name": "x"},'
        ' {"user_id": "u-1", "name": "x", "properties": {"k": "\\ud800"}},'
        ' {"user_id": "u-1", "name": "x"}]'
    )
    response = api("post", "/events", raw=raw)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["rejected"] * 3 + ["accepted"]
    assert all("surrogate" in r["errors"][0]["message"] for r in results[:3])
    assert Event.objects.count() == 1


def test_nan_in_an_event_is_a_client_error_not_a_500(api, client):
    client.raise_request_exception = False
    raw = (
        '[{"user_id": "u-1", "name": "ok"},'
        ' {"user_id": "u-1", "name": "x", "properties": {"v": NaN}}]'
    )
    response = api("post", "/events", raw=raw)
    assert response.status_code < 500


# --- POST /events: limits ----------------------------------------------------------------------


def test_a_full_batch_of_1000_is_accepted(api):
    batch = [ev(user_id=f"u-{i % 50}", id=str(i)) for i in range(MAX_BATCH)]
    response = api("post", "/events", batch)
    assert response.status_code == 200
    assert response.json()["accepted"] == MAX_BATCH
    assert Event.objects.count() == MAX_BATCH


def test_1001_events_are_refused_naming_the_limit(api):
    response = api("post", "/events", {"events": [ev()] * (MAX_BATCH + 1)})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "events", "message": "At most 1,000 events per request (got 1,001)."}
    ]
    assert not Event.objects.exists() and not Customer.objects.exists()
    assert api("post", "/events", [ev()] * (MAX_BATCH + 1)).status_code == 422


def _padded(size: int) -> str:
    body = json.dumps([ev()])
    return body[:-1] + " " * (size - len(body)) + "]"


def test_a_body_over_the_limit_is_413(api, settings):
    settings.EVENTS_MAX_BODY_BYTES = 4096
    response = api("post", "/events", raw=_padded(4097))
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]
    assert not Event.objects.exists()
    assert api("post", "/events", raw=_padded(4096)).status_code == 200


def test_a_body_over_djangos_upload_limit_but_under_the_events_limit_is_read(api, settings):
    assert settings.EVENTS_MAX_BODY_BYTES > 2 * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    big = {"blob": "x" * 30_000}
    batch = [ev(id=str(i), properties=big) for i in range(70)]  # about 2 MB
    raw = json.dumps(batch)
    assert len(raw) > 2 * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = api("post", "/events", raw=raw)
    assert response.status_code == 200
    assert response.json()["accepted"] == 70


def test_the_default_body_limit_is_16_mb(settings):
    assert settings.EVENTS_MAX_BODY_BYTES == 16 * 1024 * 1024


# --- POST /events: who may send ------------------------------------------------------------------


def test_no_token_is_401(client, db):
    response = client.post("/api/v1/events", json.dumps([ev()]), content_type="application/json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    response = client.post(
        "/api/v1/events",
        json.dumps([ev()]),
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer not-a-token",
    )
    assert response.status_code == 401
    assert not Event.objects.exists()


def test_viewer_tokens_cannot_send_events(api):
    response = api("post", "/events", [ev()], role=Role.VIEWER)
    assert response.status_code == 403
    assert "Marketer" in response.json()["detail"]
    assert api("post", "/events", raw="{bad", role=Role.VIEWER).status_code == 403
    assert not Event.objects.exists() and not Customer.objects.exists()


def test_admin_and_marketer_tokens_can_send_events(api):
    assert api("post", "/events", [ev(id="1")], role=Role.ADMIN).status_code == 200
    assert api("post", "/events", [ev(id="2")], role=Role.MARKETER).status_code == 200
    assert Event.objects.count() == 2


# --- POST /events: answers -----------------------------------------------------------------------


def test_each_event_gets_its_own_status_and_valid_ones_are_stored(api):
    with time_machine.travel(NOW, tick=False):
        response = api(
            "post",
            "/events",
            [
                ev(id="ok-1"),
                ev(name="segment-exited"),
                ev(user_id=""),
                ev(id="ok-2", user_id="u-2"),
                ev(timestamp=iso(NOW + timedelta(hours=25))),
                ev(properties=["not", "an", "object"], context={"platform": "tv"}),
                ev(unknown=1),
                7,
            ],
        )
    assert response.status_code == 200
    data = response.json()
    assert (data["accepted"], data["rejected"]) == (2, 6)
    results = data["results"]
    assert [r["index"] for r in results] == list(range(8))
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected", "accepted"] + [
        "rejected"
    ] * 4
    fields = [sorted(e["field"] for e in r.get("errors", [])) for r in results]
    assert fields == [
        [],
        ["name"],
        ["user_id"],
        [],
        ["timestamp"],
        ["context.platform", "properties"],
        ["unknown"],
        ["event"],
    ]
    assert sorted(Event.objects.values_list("client_id", flat=True)) == ["ok-1", "ok-2"]


def test_all_rejected_is_422_with_every_answer(api):
    response = api("post", "/events", [ev(name="_x"), ev(user_id=None)])
    assert response.status_code == 422
    data = response.json()
    assert (data["accepted"], data["rejected"]) == (0, 2)
    assert [r["errors"][0]["field"] for r in data["results"]] == ["name", "user_id"]
    assert not Customer.objects.exists()


def test_the_24_hour_future_limit_follows_the_server_clock(api):
    with time_machine.travel(NOW, tick=False):
        almost = iso(NOW + timedelta(hours=23, minutes=59, seconds=59))
        over = iso(NOW + timedelta(hours=24, seconds=1))
        response = api("post", "/events", [ev(timestamp=almost), ev(timestamp=over)])
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "rejected"]
    with time_machine.travel(NOW + timedelta(hours=2), tick=False):
        assert api("post", "/events", [ev(timestamp=over)]).status_code == 200


def test_unknown_user_ids_get_a_profile_and_one_activity_entry(api, marketer):
    CustomerFactory(user_id="known")
    response = api(
        "post", "/events", [ev(user_id="known"), ev(user_id="new-1"), ev(user_id="new-2")]
    )
    assert response.status_code == 200
    assert set(Customer.objects.values_list("user_id", flat=True)) == {"known", "new-1", "new-2"}
    entry = Activity.objects.get(action="customers.created_from_events")
    token, _ = api.token()
    assert (entry.count, entry.member, entry.token, entry.source) == (2, marketer, token, "api")
    api("post", "/events", [ev(user_id="new-1")])
    assert Activity.objects.filter(action="customers.created_from_events").count() == 1


def test_a_retried_request_gets_the_same_answer(api):
    batch = [ev(id="e1"), ev(id="e2", user_id="u-2"), ev(id="e3", name="Signup")]
    first = api("post", "/events", batch)
    again = api("post", "/events", batch)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert Event.objects.count() == 3


def test_duplicates_in_one_request_share_one_stored_event(api):
    data = api("post", "/events", [ev(id="e1"), ev(id="e1"), ev(id="e2")]).json()
    ids = [r["id"] for r in data["results"]]
    assert ids[0] == ids[1] != ids[2]
    assert Event.objects.count() == 2


# --- GET /customers/{user_id}/events ----------------------------------------------------------


def _send(user_id: str, *events: tuple[str, datetime], **extra) -> list[int]:
    result = events_ingest(
        [{"user_id": user_id, "name": n, "timestamp": iso(t), **extra} for n, t in events],
        actor=Actor.system(),
        now=NOW,
    )
    assert result.rejected == 0
    return [r["id"] for r in result.results]


def _pages(api, path: str, **params) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = api("get", path, query)
        assert response.status_code == 200, response.content
        data = response.json()
        pages.append(data["events"])
        cursor = data["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100


def test_the_timeline_is_newest_first_with_every_field(api):
    [older] = _send("u-1", ("signup", NOW - timedelta(days=2)))
    events_ingest(
        [
            {
                "user_id": "u-1",
                "name": "purchase",
                "id": "p1",
                "timestamp": iso(NOW - timedelta(hours=1)),
                "properties": {"amount": 3},
                "context": {"platform": "ios"},
            }
        ],
        actor=Actor.system(),
        now=NOW,
    )
    _send("someone-else", ("purchase", NOW))
    response = api("get", "/customers/u-1/events", role=Role.VIEWER)
    assert response.status_code == 200
    data = response.json()
    assert data["next_cursor"] is None
    newest, oldest = data["events"]
    assert newest["name"] == "purchase"
    assert newest["client_id"] == "p1"
    assert newest["properties"] == {"amount": 3}
    assert newest["context"] == {"platform": "ios"}
    assert datetime.fromisoformat(newest["timestamp"]) == NOW - timedelta(hours=1)
    assert newest["received_at"]
    assert set(newest) == {
        "id",
        "name",
        "timestamp",
        "received_at",
        "client_id",
        "properties",
        "context",
    }
    assert (oldest["id"], oldest["name"], oldest["client_id"]) == (older, "signup", None)


def test_pages_neither_overlap_nor_skip_and_ties_are_ordered_by_id(api):
    times = [NOW - timedelta(minutes=m) for m in (0, 5, 5, 5, 5, 9, 12, 12, 30)]
    # Sent in three batches, not in time order, so ids do not follow times.
    _send("u-1", *[("a", t) for t in times[4:]])
    _send("u-1", *[("b", t) for t in times[:2]])
    _send("u-1", *[("c", t) for t in times[2:4]])
    expected = list(
        Event.objects.filter(customer__user_id="u-1")
        .order_by("-occurred_at", "-pk")
        .values_list("pk", flat=True)
    )
    for limit in (1, 2, 3, 4, 9, 10):
        pages = _pages(api, "/customers/u-1/events", limit=limit)
        assert all(len(p) == limit for p in pages[:-1])
        assert [e["id"] for p in pages for e in p] == expected, limit
    # The same-time events come newest id first.
    tied = [
        e["id"]
        for p in _pages(api, "/customers/u-1/events", limit=2)
        for e in p
        if datetime.fromisoformat(e["timestamp"]) == NOW - timedelta(minutes=5)
    ]
    assert len(tied) == 4 and tied == sorted(tied, reverse=True)


def test_a_page_sized_exactly_has_no_next_cursor(api):
    _send("u-1", ("a", NOW), ("a", NOW - timedelta(minutes=1)))
    data = api("get", "/customers/u-1/events", {"limit": 2}).json()
    assert len(data["events"]) == 2 and data["next_cursor"] is None


def test_new_events_do_not_disturb_paging_through_older_ones(api):
    _send("u-1", *[("a", NOW - timedelta(minutes=m)) for m in range(1, 6)])
    first = api("get", "/customers/u-1/events", {"limit": 2}).json()
    _send("u-1", ("a", NOW))
    rest = _pages(api, "/customers/u-1/events", limit=2, cursor=first["next_cursor"])
    seen = [e["id"] for e in first["events"]] + [e["id"] for p in rest for e in p]
    assert len(seen) == len(set(seen)) == 5


def test_the_timeline_filters_by_name(api):
    _send(
        "u-1",
        ("purchase", NOW - timedelta(minutes=1)),
        ("signup", NOW - timedelta(minutes=2)),
        ("app.opened", NOW - timedelta(minutes=3)),
        ("purchase", NOW - timedelta(minutes=4)),
    )
    one = api("get", "/customers/u-1/events", {"name": "Purchase"}).json()
    assert [e["name"] for e in one["events"]] == ["purchase", "purchase"]
    two = api("get", "/customers/u-1/events?name=purchase&name=signup").json()
    assert [e["name"] for e in two["events"]] == ["purchase", "signup", "purchase"]
    none = api("get", "/customers/u-1/events", {"name": "never-sent"}).json()
    assert none == {"events": [], "next_cursor": None}
    paged = _pages(api, "/customers/u-1/events", name=["purchase", "app.opened"], limit=1)
    assert [e["name"] for p in paged for e in p] == ["purchase", "app.opened", "purchase"]


def test_the_timeline_filters_by_time_since_inclusive_until_exclusive(api):
    times = [NOW - timedelta(hours=h) for h in range(6)]
    _send("u-1", *[("tick", t) for t in times])

    def hours(**params) -> list[int]:
        data = api("get", "/customers/u-1/events", params).json()
        return [
            int((NOW - datetime.fromisoformat(e["timestamp"])) / timedelta(hours=1))
            for e in data["events"]
        ]

    assert hours(since=iso(times[3])) == [0, 1, 2, 3]
    assert hours(until=iso(times[3])) == [4, 5]
    assert hours(since=iso(times[4]), until=iso(times[1])) == [2, 3, 4]
    assert hours(since=times[2].replace(tzinfo=None).isoformat()) == [0, 1, 2]  # naive: UTC
    plus_two = timezone(timedelta(hours=2))
    assert hours(since=times[2].astimezone(plus_two).isoformat()) == [0, 1, 2]
    assert hours(until=times[4].astimezone(plus_two).isoformat()) == [5]
    assert hours(since=iso(times[1]), until=iso(times[1])) == []
    pages = _pages(api, "/customers/u-1/events", since=iso(times[4]), limit=2)
    assert [len(p) for p in pages] == [2, 2, 1]


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "zz",
        "not a cursor!",
        "é",
        _cursor("e2:2026-11-23T12:00:00+00:00|5"),
        _cursor("e1:2026-11-23T12:00:00+00:00"),
        _cursor("e1:2026-11-23T12:00:00|5"),  # no offset
        _cursor("e1:yesterday|5"),
        _cursor("e1:2026-11-23T12:00:00+00:00|0"),
        _cursor("e1:2026-11-23T12:00:00+00:00|-3"),
        _cursor(f"e1:2026-11-23T12:00:00+00:00|{2**63}"),
        _cursor("e1:2026-11-23T12:00:00+00:00|five"),
        base64.urlsafe_b64encode(b"e1:\xff\xfe|1").decode(),
        "x" * 201,
    ],
)
def test_a_bad_cursor_is_422(api, cursor):
    _send("u-1", ("a", NOW))
    response = api("get", "/customers/u-1/events", {"cursor": cursor})
    assert response.status_code == 422, response.content
    assert response.json()["errors"][0]["field"] == "cursor"


def test_nul_in_query_text_is_422(api):
    _send("u-1", ("a", NOW))
    assert api("get", "/customers/u-1/events", {"name": "a\x00"}).status_code == 422
    assert api("get", "/customers/u-1/events", {"cursor": "a\x00"}).status_code == 422


@pytest.mark.parametrize("limit", [0, -1, 501, "many"])
def test_the_page_size_is_bounded(api, limit):
    CustomerFactory(user_id="u-1")
    assert api("get", "/customers/u-1/events", {"limit": limit}).status_code == 422


def test_the_timeline_of_an_unknown_customer_is_404(api):
    response = api("get", "/customers/nobody/events")
    assert response.status_code == 404
    assert response.json()["detail"] == "No customer with this user ID."


def test_a_customer_without_events_has_an_empty_timeline(api):
    CustomerFactory(user_id="u-1")
    assert api("get", "/customers/u-1/events").json() == {"events": [], "next_cursor": None}


def test_the_timeline_needs_a_token(client, db):
    CustomerFactory(user_id="u-1")
    assert client.get("/api/v1/customers/u-1/events").status_code == 401


def test_an_erased_customers_timeline_is_gone(api):
    _send("u-1", ("a", NOW))
    customer_erase(customer=Customer.objects.get(user_id="u-1"), actor=Actor.system())
    assert api("get", "/customers/u-1/events").status_code == 404
    assert not Event.objects.exists()
    # A new event for the same user ID starts a new, empty history.
    _send("u-1", ("b", NOW))
    names = [e["name"] for e in api("get", "/customers/u-1/events").json()["events"]]
    assert names == ["b"]


# --- GET /event-types -------------------------------------------------------------------------


def test_event_types_lists_builtin_and_custom_events(api):
    _send("u-1", ("purchase", NOW - timedelta(hours=1)), ("purchase", NOW), properties={"n": 1})
    _send("u-1", ("card-displayed", NOW))
    response = api("get", "/event-types", role=Role.VIEWER)
    assert response.status_code == 200
    rows = {row["name"]: row for row in response.json()}
    assert set(BUILTIN_EVENTS) | {"purchase"} == set(rows)
    assert [row["name"] for row in response.json()] == sorted(rows)
    purchase = rows["purchase"]
    assert purchase == {
        "name": "purchase",
        "builtin": False,
        "label": "",
        "description": "",
        "count": 2,
        "first_seen": purchase["first_seen"],
        "last_seen": purchase["last_seen"],
        "properties": {"n": "number"},
    }
    assert datetime.fromisoformat(purchase["first_seen"]) == NOW - timedelta(hours=1)
    assert datetime.fromisoformat(purchase["last_seen"]) == NOW
    card = rows["card-displayed"]
    assert (card["builtin"], card["label"], card["count"]) == (True, "Card displayed", 1)
    unsent = rows["video-played"]
    assert (unsent["count"], unsent["first_seen"], unsent["last_seen"]) == (0, None, None)
    assert unsent["description"] == BUILTIN_EVENTS["video-played"][1]


def test_event_types_needs_a_token(client, db):
    assert client.get("/api/v1/event-types").status_code == 401


def test_the_events_endpoints_are_in_the_openapi_schema(api):
    paths = api("get", "/openapi.json").json()["paths"]
    assert {"/api/v1/events", "/api/v1/event-types", "/api/v1/customers/{user_id}/events"} <= set(
        paths
    )
    body = paths["/api/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    assert len(body["schema"]["oneOf"]) == 3

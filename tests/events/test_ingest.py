"""Storing batches (events/ingest.py): profiles created on first sight, per-event answers,
partial failures, idempotency by client id, including retries racing each other."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from activity.models import Activity
from activity.services import Actor
from customers.models import Customer
from events.ingest import MAX_BATCH, events_ingest
from events.models import Event, EventType
from tests.concurrency import race
from tests.factories import CustomerFactory

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def ev(user_id: str = "u-1", name: str = "purchase", minutes_ago: int = 0, **extra) -> dict:
    return {
        "user_id": user_id,
        "name": name,
        "timestamp": (NOW - timedelta(minutes=minutes_ago)).isoformat(),
        **extra,
    }


def ingest(events: list, actor: Actor | None = None):
    return events_ingest(events, actor=actor or Actor.system("tests"), now=NOW)


def stored_ids(user_id: str) -> list[int]:
    return list(
        Event.objects.filter(customer__user_id=user_id).order_by("pk").values_list("pk", flat=True)
    )


@pytest.mark.django_db
class TestStoring:
    def test_a_batch_is_stored_and_answered_in_request_order(self):
        result = ingest(
            [
                ev(name="purchase", id="a", properties={"amount": 3}, context={"locale": "pt"}),
                ev(name="signup", minutes_ago=5),
            ]
        )
        assert (result.accepted, result.rejected, result.stored) == (2, 0, 2)
        first, second = result.results
        assert first == {"index": 0, "status": "accepted", "id": first["id"], "client_id": "a"}
        assert second == {"index": 1, "status": "accepted", "id": second["id"], "client_id": None}
        row = Event.objects.select_related("event_type", "customer").get(pk=first["id"])
        assert row.customer.user_id == "u-1"
        assert row.event_type.name == "purchase"
        assert row.occurred_at == NOW
        assert row.client_id == "a"
        assert row.properties == {"amount": 3}
        assert row.context == {"locale": "pt"}
        assert row.received_at is not None
        assert Event.objects.get(pk=second["id"]).occurred_at == NOW - timedelta(minutes=5)
        assert result.customer_ids == {row.customer_id}

    def test_names_are_stored_case_folded_in_one_catalog_row(self):
        ingest([ev(name="App.Opened"), ev(name="app.opened"), ev(name="APP.OPENED")])
        assert EventType.objects.filter(name__iexact="app.opened").count() == 1
        assert Event.objects.filter(event_type__name="app.opened").count() == 3

    def test_events_without_a_client_id_are_all_stored(self):
        ingest([ev(), ev()])
        ingest([ev()])
        assert Event.objects.count() == 3

    def test_more_than_the_batch_limit_is_refused_before_anything_is_stored(self):
        with pytest.raises(ValueError, match="At most 1000 events"):
            ingest([ev()] * (MAX_BATCH + 1))
        assert not Event.objects.exists()

    def test_a_full_batch_is_a_handful_of_statements(self, django_assert_max_num_queries):
        batch = [
            ev(user_id=f"u-{i % 300}", name=f"n{i % 7}", minutes_ago=i, id=f"e{i}")
            for i in range(MAX_BATCH)
        ]
        with django_assert_max_num_queries(20):
            result = ingest(batch)
        assert result.stored == MAX_BATCH
        assert Customer.objects.count() == 300


@pytest.mark.django_db
class TestUnknownUsers:
    def test_an_unknown_user_id_creates_a_bare_profile(self):
        result = ingest([ev(user_id="new-1")])
        customer = Customer.objects.get(user_id="new-1")
        assert customer.name == "" and customer.email == ""
        assert customer.first_seen == customer.last_seen == NOW
        assert result.customers_created == 1

    def test_one_activity_entry_counts_the_profiles_created(self, marketer):
        CustomerFactory(user_id="known")
        actor = Actor("api", member=marketer)
        result = ingest(
            [ev(user_id="known"), ev(user_id="new-1"), ev(user_id="new-2"), ev(user_id="new-1")],
            actor,
        )
        assert result.customers_created == 2
        entry = Activity.objects.get(action="customers.created_from_events")
        assert (entry.count, entry.target_type, entry.member) == (2, "customer", marketer)
        assert Customer.objects.count() == 3

    def test_known_users_only_write_no_activity(self):
        CustomerFactory(user_id="known")
        result = ingest([ev(user_id="known")])
        assert result.customers_created == 0
        assert not Activity.objects.filter(action="customers.created_from_events").exists()

    def test_user_ids_are_trimmed_and_case_sensitive(self):
        ingest([ev(user_id=" Ana "), ev(user_id="ana"), ev(user_id="Ana")])
        assert sorted(Customer.objects.values_list("user_id", flat=True)) == ["Ana", "ana"]

    def test_rejected_events_create_no_profile(self):
        result = ingest([ev(user_id="ghost", name="_bad")])
        assert result.accepted == 0
        assert not Customer.objects.exists()
        assert not Activity.objects.exists()


@pytest.mark.django_db
class TestPartialFailure:
    def test_valid_events_are_stored_when_others_fail(self):
        result = ingest(
            [
                ev(id="ok-1"),
                ev(name="segment-entered"),
                "not an event",
                ev(user_id="u-2", id="ok-2"),
                ev(timestamp="2030-01-01T00:00:00Z"),
            ]
        )
        assert (result.accepted, result.rejected, result.stored) == (2, 3, 2)
        statuses = [(r["index"], r["status"]) for r in result.results]
        assert statuses == [
            (0, "accepted"),
            (1, "rejected"),
            (2, "rejected"),
            (3, "accepted"),
            (4, "rejected"),
        ]
        assert result.results[1]["errors"][0]["field"] == "name"
        assert result.results[2]["errors"] == [
            {"field": "event", "message": "Must be a JSON object."}
        ]
        assert result.results[4]["errors"] == [
            {"field": "timestamp", "message": "Is more than 24 hours in the future."}
        ]
        assert "id" not in result.results[1]
        assert sorted(Event.objects.values_list("client_id", flat=True)) == ["ok-1", "ok-2"]

    def test_an_all_rejected_batch_stores_nothing(self):
        result = ingest([ev(user_id=""), ev(name="")])
        assert (result.accepted, result.rejected, result.stored) == (0, 2, 0)
        assert not Event.objects.exists()

    def test_a_nan_property_costs_only_its_own_event(self):
        result = ingest([ev(id="ok"), ev(id="nan", properties={"score": float("nan")})])
        assert [r["status"] for r in result.results] == ["accepted", "rejected"]
        assert list(Event.objects.values_list("client_id", flat=True)) == ["ok"]


@pytest.mark.django_db
class TestIdempotency:
    def test_a_retried_batch_gets_the_same_answer_and_stores_nothing_new(self):
        batch = [ev(id="e1"), ev(id="e2", user_id="u-2"), ev(id=3, name="signup")]
        first = ingest(batch)
        again = ingest(batch)
        assert again.results == first.results
        assert (first.stored, again.stored) == (3, 0)
        assert again.customers_created == 0 and again.customer_ids == set()
        assert Event.objects.count() == 3
        assert EventType.objects.get(name="purchase").event_count == 2
        assert Activity.objects.get(action="customers.created_from_events").count == 2

    def test_the_first_stored_copy_wins(self):
        first = ingest([ev(id="e1", properties={"v": 1})])
        again = ingest([ev(id="e1", minutes_ago=30, properties={"v": 2}, name="other")])
        assert again.results[0]["id"] == first.results[0]["id"]
        row = Event.objects.get()
        assert (row.properties, row.occurred_at, row.event_type.name) == ({"v": 1}, NOW, "purchase")

    def test_duplicates_within_one_batch_are_stored_once(self):
        result = ingest([ev(id="e1"), ev(id="e2"), ev(id="e1", properties={"v": 2}), ev(id=" e1 ")])
        ids = [r["id"] for r in result.results]
        assert ids[0] == ids[2] == ids[3] != ids[1]
        assert [r["status"] for r in result.results] == ["accepted"] * 4
        assert result.stored == 2
        assert Event.objects.get(pk=ids[0]).properties == {}
        assert EventType.objects.get(name="purchase").event_count == 2

    def test_integer_and_text_client_ids_are_the_same_id(self):
        first = ingest([ev(id=7)])
        again = ingest([ev(id="7")])
        assert first.results[0]["id"] == again.results[0]["id"]
        assert again.results[0]["client_id"] == "7"

    def test_the_same_client_id_for_another_customer_is_another_event(self):
        result = ingest([ev(user_id="u-1", id="e1"), ev(user_id="u-2", id="e1")])
        assert result.results[0]["id"] != result.results[1]["id"]
        assert result.stored == 2

    def test_a_retry_mixed_with_new_events(self):
        first = ingest([ev(id="e1"), ev(id="e2")])
        again = ingest([ev(id="e3"), ev(id="e2"), ev(), ev(id="e1")])
        assert again.results[1]["id"] == first.results[1]["id"]
        assert again.results[3]["id"] == first.results[0]["id"]
        assert again.stored == 2
        assert Event.objects.count() == 4

    def test_a_duplicate_of_a_rejected_event_is_stored_from_its_valid_copy(self):
        result = ingest([ev(id="e1", timestamp="nope"), ev(id="e1")])
        assert [r["status"] for r in result.results] == ["rejected", "accepted"]
        assert Event.objects.get().pk == result.results[1]["id"]


# --- Retries racing each other -----------------------------------------------------------


def _race(batches: list[list[dict]]) -> list:
    """Run events_ingest for each batch in its own thread (its own DB connection), all released
    at once; returns each thread's result (or the exception it raised)."""
    return race(
        *(lambda b=b: events_ingest(b, actor=Actor.system("tests"), now=NOW) for b in batches)
    )


def _racing_batch(size: int) -> list[dict]:
    return [
        ev(user_id=f"racer-{i % 4}", name=f"race.{i % 3}", minutes_ago=i, id=f"r{i}")
        for i in range(size)
    ]


def _assert_stored_once(batch: list[dict], outcomes: list, *, created: int) -> None:
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert not errors, errors
    by_client_id = [{r["client_id"]: r["id"] for r in o.results} for o in outcomes]
    assert all(answer == by_client_id[0] for answer in by_client_id)
    assert sum(o.stored for o in outcomes) == len(batch)
    assert Event.objects.count() == len(batch)
    assert set(Event.objects.values_list("pk", flat=True)) == set(by_client_id[0].values())
    assert Customer.objects.count() == 4
    assert sum(o.customers_created for o in outcomes) == created
    entries = Activity.objects.filter(action="customers.created_from_events")
    assert sum(entries.values_list("count", flat=True)) == created
    counts = dict(
        EventType.objects.filter(name__startswith="race.").values_list("name", "event_count")
    )
    assert counts == {
        f"race.{n}": sum(1 for e in batch if e["name"] == f"race.{n}") for n in range(3)
    }
    for customer in Customer.objects.all():
        times = [
            datetime.fromisoformat(e["timestamp"])
            for e in batch
            if e["user_id"] == customer.user_id
        ]
        assert (customer.first_seen, customer.last_seen) == (min(times), max(times))


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_batch_store_each_event_once():
    """Six copies of one request at once, for customers not seen before: the profiles, the
    catalog rows and the events are each created once and every answer is the same."""
    batch = _racing_batch(40)
    outcomes = _race([batch] * 6)
    _assert_stored_once(batch, outcomes, created=4)
    assert all(o.results == outcomes[0].results for o in outcomes)


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_in_different_orders_store_each_event_once():
    """Shuffled copies of a full batch for existing customers and names take their row locks in
    different orders: a deadlock, when PostgreSQL finds one, is retried by events_ingest, and
    the answers (by client id) still agree."""
    for i in range(4):
        CustomerFactory(user_id=f"racer-{i}")
    for i in range(3):
        EventType.objects.create(name=f"race.{i}")
    batch = _racing_batch(MAX_BATCH)
    shuffled = []
    for seed in range(3):
        copy = list(batch)
        random.Random(seed).shuffle(copy)
        shuffled.append(copy)
    _assert_stored_once(batch, _race(shuffled), created=0)

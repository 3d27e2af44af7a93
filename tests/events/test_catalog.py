"""The event catalog (events/catalog.py): built-in names up front, counts and first/last seen
kept by ingestion, inferred property types, the key cap, and the recount after deletions."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections

from activity.services import Actor
from customers.models import Customer
from customers.services import customer_erase, customers_erase
from events import ingest as ingest_module
from events.builtin import BUILTIN_EVENTS, SYSTEM_EVENTS
from events.catalog import MAX_PROPERTY_KEYS, catalog_recount, merge_type, value_type
from events.ingest import events_ingest
from events.models import Event, EventType
from tests import concurrency

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def at(minutes_ago: float) -> datetime:
    return NOW - timedelta(minutes=minutes_ago)


def send(name: str, *properties: dict, user_id: str = "u-1", minutes_ago: float = 0) -> None:
    """One batch of ``name`` events, one per properties dict, a minute apart going back."""
    result = events_ingest(
        [
            {
                "user_id": user_id,
                "name": name,
                "timestamp": at(minutes_ago + i).isoformat(),
                "properties": props,
            }
            for i, props in enumerate(properties)
        ],
        actor=Actor.system("tests"),
        now=NOW,
    )
    assert result.rejected == 0, result.results


def entry(name: str) -> EventType:
    return EventType.objects.get(name=name)


# --- Pure type rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("gold", "string"),
        ("", "string"),
        ("2026-11-23", "date"),
        ("2026-11-23T09:30", "date"),
        ("2026-11-23T09:30:00Z", "date"),
        ("2026-11-23 09:30:00.123+01:00", "date"),
        ("2026-11-23T09:30:00-0500", "date"),
        ("23/11/2026", "string"),
        ("2026-11-23 and more", "string"),
        (0, "number"),
        (12.5, "number"),
        (-3, "number"),
        (True, "boolean"),
        (False, "boolean"),
        ({"a": 1}, "object"),
        ({}, "object"),
        ([1, 2], "array"),
        ([], "array"),
        (None, None),
    ],
)
def test_value_types(value, kind):
    assert value_type(value) == kind


@pytest.mark.parametrize(
    ("old", "new", "merged"),
    [
        (None, "number", "number"),
        ("number", None, "number"),
        ("number", "number", "number"),
        ("date", "string", "string"),
        ("string", "date", "string"),
        ("number", "string", "mixed"),
        ("boolean", "number", "mixed"),
        ("date", "number", "mixed"),
        ("object", "array", "mixed"),
        ("mixed", "string", "mixed"),
        ("string", "mixed", "mixed"),
        (None, None, None),
    ],
)
def test_merge_types(old, new, merged):
    assert merge_type(old, new) == merged


# --- Built-in names ------------------------------------------------------------------------


@pytest.mark.django_db
def test_builtin_events_are_in_the_catalog_before_any_is_sent():
    builtin = {t.name: t for t in EventType.objects.filter(builtin=True)}
    assert set(builtin) == set(BUILTIN_EVENTS)
    for name, (label, description) in BUILTIN_EVENTS.items():
        row = builtin[name]
        assert (row.label, row.description, row.display_name) == (label, description, label)
        assert (row.event_count, row.first_seen, row.last_seen, row.properties) == (
            0,
            None,
            None,
            {},
        )
    assert set(builtin) >= SYSTEM_EVENTS


@pytest.mark.django_db
def test_a_builtin_event_sent_counts_on_its_builtin_row():
    before = EventType.objects.count()
    send("Card-Displayed", {"card_id": 7})
    row = entry("card-displayed")
    assert (row.builtin, row.event_count, row.properties) == (True, 1, {"card_id": "number"})
    assert EventType.objects.count() == before


@pytest.mark.django_db
def test_a_custom_event_is_added_when_first_sent():
    send("checkout.completed", {})
    row = entry("checkout.completed")
    assert (row.builtin, row.label, row.display_name) == (False, "", "checkout.completed")


# --- Counts and first/last seen ------------------------------------------------------------


@pytest.mark.django_db
def test_counts_and_first_last_seen_across_batches_in_any_order():
    send("purchase", {}, {}, minutes_ago=10)  # at 10 and 11 minutes ago
    send("purchase", {}, minutes_ago=100)
    send("purchase", {}, minutes_ago=1, user_id="u-2")
    send("signup", {})
    row = entry("purchase")
    assert (row.event_count, row.first_seen, row.last_seen) == (4, at(100), at(1))
    assert entry("signup").event_count == 1


@pytest.mark.django_db
def test_rejected_and_repeated_events_are_not_counted():
    event = {"user_id": "u-1", "name": "purchase", "id": "e1", "timestamp": at(5).isoformat()}
    bad = {"user_id": "u-1", "name": "purchase", "timestamp": "later"}
    events_ingest([event, bad, event], actor=Actor.system(), now=NOW)
    events_ingest([event], actor=Actor.system(), now=NOW)
    row = entry("purchase")
    assert (row.event_count, row.first_seen, row.last_seen) == (1, at(5), at(5))


# --- Property types -------------------------------------------------------------------------


@pytest.mark.django_db
def test_property_types_are_inferred():
    send(
        "purchase",
        {
            "sku": "A-1",
            "amount": 12.5,
            "quantity": 2,
            "gift": False,
            "paid_at": "2026-11-23T09:30:00Z",
            "shipping": {"city": "Porto"},
            "items": ["A-1", "B-2"],
            "coupon": None,
        },
    )
    assert entry("purchase").properties == {
        "sku": "string",
        "amount": "number",
        "quantity": "number",
        "gift": "boolean",
        "paid_at": "date",
        "shipping": "object",
        "items": "array",
    }


@pytest.mark.django_db
def test_types_widen_within_one_batch():
    send(
        "purchase",
        {"when": "2026-11-23", "n": 1, "flag": True, "later": None},
        {"when": "next week", "n": "one", "flag": True, "later": 3},
    )
    assert entry("purchase").properties == {
        "when": "string",
        "n": "mixed",
        "flag": "boolean",
        "later": "number",
    }


@pytest.mark.django_db
def test_types_widen_across_batches_and_never_narrow():
    send("purchase", {"when": "2026-11-23", "n": 1, "code": "x"})
    send("purchase", {"when": "soon", "n": "1"})
    send("purchase", {"when": "2026-11-24", "n": 2, "code": 5})
    send("purchase", {"code": "y"})
    assert entry("purchase").properties == {"when": "string", "n": "mixed", "code": "mixed"}


@pytest.mark.django_db
def test_only_top_level_keys_are_listed():
    send("purchase", {"shipping": {"city": "Porto", "zip": 4000}})
    assert entry("purchase").properties == {"shipping": "object"}


@pytest.mark.django_db
def test_property_keys_are_capped():
    send("noisy", {f"k{i:03d}": i for i in range(MAX_PROPERTY_KEYS + 50)})
    keys = entry("noisy").properties
    assert len(keys) == MAX_PROPERTY_KEYS
    # Once full, new keys are not added, but known keys still widen.
    known = next(iter(keys))
    send("noisy", {"brand_new": 1, known: "text"})
    after = entry("noisy").properties
    assert len(after) == MAX_PROPERTY_KEYS
    assert "brand_new" not in after
    assert after[known] == "mixed"
    assert entry("noisy").event_count == 2


@pytest.mark.django_db
def test_the_cap_counts_keys_already_known():
    send("noisy", {f"a{i:03d}": 1 for i in range(MAX_PROPERTY_KEYS - 2)})
    send("noisy", {f"b{i}": 1 for i in range(5)})
    assert len(entry("noisy").properties) == MAX_PROPERTY_KEYS


# --- Recount --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_recount_fixes_counts_after_deletions():
    send("purchase", {}, {}, {}, minutes_ago=0)  # at 0, 1 and 2 minutes ago
    send("signup", {})
    send("gone", {})
    assert catalog_recount() == 0  # ingestion kept them right
    Event.objects.filter(event_type__name="purchase", occurred_at=at(0)).delete()
    Event.objects.filter(event_type__name="gone").delete()
    assert entry("purchase").event_count == 3  # deletions do not touch the catalog

    assert catalog_recount() == 2
    purchase, gone = entry("purchase"), entry("gone")
    assert (purchase.event_count, purchase.first_seen, purchase.last_seen) == (2, at(2), at(1))
    assert (gone.event_count, gone.first_seen, gone.last_seen) == (0, None, None)
    assert entry("signup").event_count == 1
    assert catalog_recount() == 0
    assert purchase.properties == {} and gone.builtin is False  # rows are kept


@pytest.mark.django_db
def test_recount_leaves_unsent_builtins_alone():
    assert catalog_recount() == 0
    assert entry("card-displayed").event_count == 0


# --- Erasure --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_erasing_a_customer_deletes_their_events():
    send("purchase", {}, {}, user_id="gone")
    send("purchase", {}, user_id="kept", minutes_ago=30)
    gone = Customer.objects.get(user_id="gone")
    customer_erase(customer=gone, actor=Actor.system())
    assert not Customer.objects.filter(user_id="gone").exists()
    assert not Event.objects.filter(customer_id=gone.pk).exists()
    assert Event.objects.filter(customer__user_id="kept").count() == 1
    # The catalog is corrected by the recount, not by the erasure.
    assert entry("purchase").event_count == 3
    catalog_recount()
    row = entry("purchase")
    assert (row.event_count, row.first_seen, row.last_seen) == (1, at(30), at(30))


@pytest.mark.django_db
def test_bulk_erasure_deletes_the_events_of_every_customer_erased():
    for user_id in ("a", "b", "c"):
        send("purchase", {}, user_id=user_id)
    assert customers_erase(Customer.objects.filter(user_id__in=["a", "b"]), Actor.system()) == 2
    assert list(Event.objects.values_list("customer__user_id", flat=True)) == ["c"]


@pytest.mark.django_db(transaction=True)
def test_an_erasure_waits_for_a_batch_in_flight_and_then_takes_its_events(monkeypatch):
    # Events keep no key constraint on the customer: the erasure gate orders the two.
    send("purchase", {})
    stored, release = threading.Event(), threading.Event()
    update = ingest_module.customers_analytics_update

    def paused_update(*args):
        stored.set()  # the batch's events are written, not committed
        assert release.wait(timeout=30)
        return update(*args)

    monkeypatch.setattr(ingest_module, "customers_analytics_update", paused_update)

    def ingest():
        return events_ingest([{"user_id": "u-1", "name": "purchase"}], actor=Actor.system())

    def erase():
        assert stored.wait(timeout=30)
        return customers_erase(Customer.objects.filter(user_id="u-1"), Actor.system())

    def let_go():
        assert stored.wait(timeout=30)
        concurrency.wait_for_blocked_advisory_lock()  # the erasure queued behind the batch
        release.set()

    batch, erased, _ = concurrency.race(ingest, erase, let_go)

    assert batch.stored == 1 and erased == 1
    assert not Customer.objects.exists()
    assert not Event.objects.exists()  # nothing left behind for a customer that is gone


# --- Concurrent batches ----------------------------------------------------------------------


def _interleave(first: list[dict], second: list[dict], monkeypatch) -> None:
    """Ingest ``first`` in a thread that pauses just before its catalog write, ``second`` from
    another thread meanwhile, then let ``first`` finish: an order two concurrent requests can
    take in production."""
    first_paused, second_done = threading.Event(), threading.Event()
    original = ingest_module.catalog_add

    def paused_catalog_add(*args, **kwargs):
        if threading.current_thread().name == "first":
            first_paused.set()
            assert second_done.wait(timeout=30)
        return original(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "catalog_add", paused_catalog_add)
    errors: list[Exception] = []

    def run(batch: list[dict], after: threading.Event | None, done: threading.Event) -> None:
        try:
            if after is not None:
                assert after.wait(timeout=30)
            events_ingest(batch, actor=Actor.system(), now=NOW)
        except Exception as exc:
            errors.append(exc)
        finally:
            done.set()
            connection.close()

    threads = [
        threading.Thread(target=run, args=(first, None, threading.Event()), name="first"),
        threading.Thread(target=run, args=(second, first_paused, second_done), name="second"),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    connections.close_all()
    assert not errors, errors
    assert Event.objects.count() == len(first) + len(second)


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_widen_a_property_type(monkeypatch):
    EventType.objects.create(name="purchase")
    _interleave(
        [{"user_id": "a", "name": "purchase", "properties": {"amount": 12}}],
        [{"user_id": "b", "name": "purchase", "properties": {"amount": "twelve"}}],
        monkeypatch,
    )
    row = entry("purchase")
    assert row.event_count == 2
    assert row.properties == {"amount": "mixed"}


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_keep_the_property_key_cap(monkeypatch):
    EventType.objects.create(name="noisy")
    _interleave(
        [{"user_id": "a", "name": "noisy", "properties": {f"a{i}": 1 for i in range(150)}}],
        [{"user_id": "b", "name": "noisy", "properties": {f"b{i}": 1 for i in range(150)}}],
        monkeypatch,
    )
    assert entry("noisy").event_count == 2
    assert len(entry("noisy").properties) <= MAX_PROPERTY_KEYS


@pytest.mark.parametrize("text", ["2026-13-45", "0000-00-00", "2026-02-30T10:00:00Z"])
def test_impossible_dates_are_text(text):
    assert value_type(text) == "string"

"""The seeded demo-event generator (events.demo_data) and its command, on real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from customers.demo_data import generate_customers
from customers.models import Customer
from events import demo_data
from events.demo_data import MOBILE_MIX, WEB_MIX, generate_events
from events.models import Event, EventType

pytestmark = pytest.mark.django_db

NAMES = {name for name, _ in MOBILE_MIX + WEB_MIX}


@pytest.fixture
def customers():
    generate_customers(count=300, seed=3)


def test_generating_n_creates_n_events(customers):
    result = generate_events(2000, seed=5)

    assert (result.requested, result.created) == (2000, 2000)
    assert Event.objects.count() == 2000
    assert Event.objects.filter(client_id__startswith="demo-5-").count() == 2000
    assert set(Event.objects.values_list("event_type__name", flat=True)) <= NAMES
    assert 0 < result.customers < 300
    assert result.frozen  # into an empty table


def test_same_seed_twice_adds_nothing(customers):
    generate_events(1500, seed=5)
    before = set(Event.objects.values_list("client_id", "customer_id", "occurred_at"))

    again = generate_events(1500, seed=5)

    assert again.created == 0
    assert set(Event.objects.values_list("client_id", "customer_id", "occurred_at")) == before


def test_more_rows_add_only_the_missing_ones_and_another_seed_adds_more(customers):
    generate_events(1000, seed=5)

    assert generate_events(1600, seed=5).created == 600
    assert generate_events(400, seed=6).created == 400
    assert Event.objects.count() == 2000
    ids = Event.objects.filter(client_id__startswith="demo-5-").values_list("client_id", flat=True)
    assert sorted(int(i.removeprefix("demo-5-")) for i in ids) == list(range(1600))


def test_deleted_rows_are_put_back(customers):
    generate_events(800, seed=5)
    gone = list(Event.objects.order_by("?").values_list("client_id", flat=True)[:25])
    Event.objects.filter(client_id__in=gone).delete()

    again = generate_events(800, seed=5)

    assert again.created == 25
    assert Event.objects.count() == 800


def test_catalog_counts_and_property_types_match_the_table(customers):
    generate_events(3000, seed=5)

    counted = {
        row["event_type"]: row
        for row in Event.objects.values("event_type").annotate(
            n=Count("id"), first=Min("occurred_at"), last=Max("occurred_at")
        )
    }
    for event_type in EventType.objects.all():
        row = counted.get(event_type.pk)
        assert event_type.event_count == (row["n"] if row else 0), event_type.name
        assert event_type.first_seen == (row["first"] if row else None)
        assert event_type.last_seen == (row["last"] if row else None)
    purchase = EventType.objects.get(name="purchase")
    assert not purchase.builtin
    assert purchase.properties == {
        "amount": "number",
        "currency": "string",
        "sku": "string",
        "quantity": "number",
    }
    assert EventType.objects.get(name="app-launch").properties == {"cold_start": "boolean"}
    assert EventType.objects.get(name="card-displayed").builtin


def test_times_fall_in_the_window_after_each_customer_was_created(customers):
    now = timezone.now()
    generate_events(2000, seed=5, days=30)

    for event in Event.objects.select_related("customer"):
        assert now - timedelta(days=30, seconds=1) <= event.occurred_at <= now
        assert event.occurred_at >= event.customer.created_at
    # More recent, more events.
    recent = Event.objects.filter(occurred_at__gte=now - timedelta(days=10)).count()
    oldest = Event.objects.filter(occurred_at__lt=now - timedelta(days=20)).count()
    assert recent > oldest


def test_activity_is_skewed_and_never_seen_customers_send_nothing(customers):
    generate_events(3000, seed=5)

    per_customer = sorted(
        Event.objects.values("customer").annotate(n=Count("id")).values_list("n", flat=True)
    )
    assert per_customer[-1] > 10 * per_customer[len(per_customer) // 2]
    never_seen = Customer.objects.filter(first_seen__isnull=True)
    assert never_seen.exists()
    assert not Event.objects.filter(customer__in=never_seen).exists()


def test_contexts_follow_the_customers_profile(customers):
    generate_events(2000, seed=5)

    for event in Event.objects.select_related("customer")[:500]:
        customer, context = event.customer, event.context
        platform = context["platform"]
        assert getattr(customer, f"last_seen_{platform}") is not None
        if platform == "web":
            assert context["browser"] == customer.last_browser_name
            assert context["os"] == customer.last_browser_os
        elif platform == "ios":
            # The model: the device name, or the end of the summary ("iOS 17.4, iPhone16,1").
            model = customer.last_ios_device_name or customer.last_ios_device.rsplit(", ", 1)[-1]
            assert context["device"] == model
            assert context["os_version"] == customer.last_ios_os_version


def test_customers_first_and_last_seen_cover_their_events(customers):
    result = generate_events(2000, seed=5)

    spans = Customer.objects.filter(events__isnull=False).annotate(
        first=Min("events__occurred_at"), last=Max("events__occurred_at")
    )
    assert spans.count() == result.customers
    for customer in spans:
        assert customer.first_seen <= customer.first
        assert customer.last_seen >= customer.last
    assert result.customers_updated > 0


def test_no_customers_no_events():
    result = generate_events(100, seed=1)

    assert result.created == 0
    assert not Event.objects.exists()


def test_zero_events_is_a_no_op(customers):
    assert generate_events(0, seed=1).created == 0
    assert not Event.objects.exists()


def _schema() -> tuple[dict[str, str], set[int], dict[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_indexdef(x.indexrelid), x.indexrelid::int"
            " FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid"
            " WHERE x.indrelid = 'events_event'::regclass"
        )
        rows = cursor.fetchall()
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) || ' ' || convalidated::text"
            " FROM pg_constraint WHERE conrelid = 'events_event'::regclass"
        )
        constraints = dict(cursor.fetchall())
    return {name: d for name, d, _ in rows}, {oid for *_, oid in rows}, constraints


def test_big_load_rebuilds_the_indexes_and_keys_as_they_were(customers, monkeypatch):
    monkeypatch.setattr(demo_data, "REBUILD_MIN_ROWS", 100)
    definitions, oids, constraints = _schema()

    result = generate_events(1000, seed=5)

    assert result.rebuilt
    new_definitions, new_oids, new_constraints = _schema()
    assert new_definitions == definitions
    assert new_constraints == constraints  # the foreign keys are back, validated
    assert len(new_oids - oids) == 3  # the two secondary indexes and the unique client-id one
    # The unique index holds again.
    event = Event.objects.first()
    assert generate_events(1000, seed=5).created == 0
    with pytest.raises(IntegrityError, match="events_client_id_once"), transaction.atomic():
        Event.objects.create(
            customer_id=event.customer_id,
            event_type_id=event.event_type_id,
            occurred_at=event.occurred_at,
            client_id=event.client_id,
        )


def test_command_loads_events(customers):
    out = StringIO()
    call_command("generate_demo_events", events=500, seed=2, stdout=out)

    assert Event.objects.count() == 500
    assert "500 created of 500 requested (seed 2)" in out.getvalue()


def test_command_rejects_bad_numbers():
    for options, flag in (({"events": -1}, "--events"), ({"seed": -1}, "--seed")):
        with pytest.raises(CommandError, match=flag):
            call_command("generate_demo_events", stdout=StringIO(), **options)
    with pytest.raises(CommandError, match="--days"):
        call_command("generate_demo_events", days=0, stdout=StringIO())

"""The seeded demo-data generator (customers.demo_data) and its command, on real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from customers import demo_data
from customers.demo_data import HISTORY_DAYS, customer_lines, generate_customers
from customers.models import Customer

pytestmark = pytest.mark.django_db


def snapshot(seed: int) -> list[tuple]:
    return list(
        Customer.objects.filter(user_id__startswith=f"demo-{seed}-")
        .order_by("user_id")
        .values_list("user_id", "name", "first_name", "last_name", "email", "city", "country")
    )


def test_generating_n_creates_n_customers():
    result = generate_customers(count=250, seed=3)

    assert result.created == 250
    assert result.requested == 250
    assert Customer.objects.count() == 250
    assert Customer.objects.filter(user_id__startswith="demo-3-").count() == 250


def test_rows_are_complete_and_plausible():
    generate_customers(count=200, seed=3)

    now = datetime.now(UTC)
    for customer in Customer.objects.all():
        assert customer.name == f"{customer.first_name} {customer.last_name}"
        assert customer.city and len(customer.country) == 2
        assert customer.email == "" or customer.email.startswith(
            f"{customer.first_name.lower()}.{customer.last_name.lower()}."
        )
        assert now - timedelta(days=HISTORY_DAYS + 1) < customer.created_at <= now
        assert customer.updated_at == customer.created_at
    assert Customer.objects.exclude(email="").exists()
    assert Customer.objects.filter(email="").exists()  # about one in ten has none


def test_same_seed_twice_creates_nothing_the_second_time():
    generate_customers(count=300, seed=5)
    before = snapshot(5)

    again = generate_customers(count=300, seed=5)

    assert again.created == 0
    assert Customer.objects.count() == 300
    assert snapshot(5) == before


def test_same_seed_with_more_rows_adds_only_the_missing_ones():
    generate_customers(count=100, seed=5)
    first = snapshot(5)

    more = generate_customers(count=150, seed=5)

    assert more.created == 50
    assert Customer.objects.count() == 150
    assert snapshot(5)[:100] == first


def test_rows_deleted_since_are_put_back_the_same():
    generate_customers(count=100, seed=5)
    before = snapshot(5)
    Customer.objects.filter(user_id__in=["demo-5-0000007", "demo-5-0000042"]).delete()

    again = generate_customers(count=100, seed=5)

    assert again.created == 2
    assert snapshot(5) == before


def test_a_different_seed_adds_customers():
    generate_customers(count=120, seed=1)

    result = generate_customers(count=80, seed=2)

    assert result.created == 80
    assert Customer.objects.count() == 200


def test_same_seed_same_data():
    generate_customers(count=150, seed=11)
    first = snapshot(11)
    Customer.objects.all().delete()

    generate_customers(count=150, seed=11)

    assert snapshot(11) == first
    assert len({row[1] for row in first}) > 1  # not one name repeated


def test_different_seeds_give_different_data():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    one = "".join(customer_lines(50, 1, now)).splitlines()
    two = "".join(customer_lines(50, 2, now)).splitlines()

    assert [line.split("\t")[1:] for line in one] != [line.split("\t")[1:] for line in two]


def test_lines_are_deterministic_and_skip_present_rows():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    lines = "".join(customer_lines(10, 4, now)).splitlines()
    assert lines == "".join(customer_lines(10, 4, now)).splitlines()

    present = bytearray(10)
    present[2] = present[7] = 1
    skipped = "".join(customer_lines(10, 4, now, present=present)).splitlines()

    assert skipped == [line for i, line in enumerate(lines) if i not in (2, 7)]


def test_an_existing_customer_with_a_demo_user_id_is_kept():
    Customer.objects.create(user_id="demo-6-0000003", name="Real Person")

    result = generate_customers(count=10, seed=6)

    assert result.created == 9
    assert Customer.objects.get(user_id="demo-6-0000003").name == "Real Person"


def test_look_alike_user_ids_do_not_count_as_present():
    # Only f"{i:07d}" suffixes are this seed's rows; these merely share the prefix.
    for user_id in ("demo-6-3", "demo-6-00000003", "demo-6-x", "demo-66-0000003"):
        Customer.objects.create(user_id=user_id)

    assert generate_customers(count=10, seed=6).created == 10


def test_zero_customers_is_a_no_op():
    assert generate_customers(count=0, seed=1).created == 0
    assert not Customer.objects.exists()


def _indexes() -> tuple[dict[str, str], set[int]]:
    """The customer table's index definitions by name, and the indexes' oids."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_indexdef(x.indexrelid), x.indexrelid::int"
            " FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid"
            " WHERE x.indrelid = 'customers_customer'::regclass"
        )
        rows = cursor.fetchall()
    return {name: definition for name, definition, _ in rows}, {oid for *_, oid in rows}


def test_big_load_rebuilds_the_secondary_indexes_as_they_were(monkeypatch):
    monkeypatch.setattr(demo_data, "REBUILD_MIN_ROWS", 100)
    generate_customers(count=20, seed=8)
    definitions, oids = _indexes()

    result = generate_customers(count=150, seed=9)  # 150 rows onto 20: worth a rebuild

    assert result.created == 150
    new_definitions, new_oids = _indexes()
    assert new_definitions == definitions
    # Built again: the four plain ones (user_id LIKE, created_at, email, upper(name)); the
    # primary key and the user_id unique constraint stay.
    assert len(new_oids - oids) == 4
    assert Customer.objects.filter(user_id__startswith="demo-9-").count() == 150


def test_small_load_onto_a_bigger_table_keeps_the_indexes(monkeypatch):
    monkeypatch.setattr(demo_data, "REBUILD_MIN_ROWS", 10)
    generate_customers(count=100, seed=8)
    _, oids = _indexes()

    generate_customers(count=20, seed=9)  # 20 rows onto 100: not worth it

    assert _indexes()[1] == oids


def test_command_loads_customers():
    out = StringIO()
    call_command("generate_demo_data", customers=40, seed=2, stdout=out)

    assert Customer.objects.count() == 40
    assert "40 created of 40 requested (seed 2)" in out.getvalue()


def test_command_rejects_negative_customers():
    with pytest.raises(CommandError, match="--customers"):
        call_command("generate_demo_data", customers=-1, stdout=StringIO())
    assert not Customer.objects.exists()


def test_command_rejects_negative_seed():
    with pytest.raises(CommandError, match="--seed"):
        call_command("generate_demo_data", customers=5, seed=-3, stdout=StringIO())

"""The seeded demo-data generator (customers.demo_data) and its command, on real PostgreSQL."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from io import StringIO

import phonenumbers
import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from activity.models import Activity
from customers import demo_data
from customers.custom_fields import coerce_custom_value
from customers.demo_data import (
    CITIES,
    COLUMN_NAMES,
    DEMO_CUSTOM_FIELDS,
    DEMO_TAGS,
    HISTORY_DAYS,
    PHONE_PREFIXES,
    DemoSetup,
    customer_lines,
    generate_customers,
)
from customers.models import Customer, CustomField, CustomFieldType
from customers.profile import ANALYTICS_FIELD_NAMES, clean_phone, clean_timezone
from tags.models import CustomerTag, Source, Tag

pytestmark = pytest.mark.django_db

FIELD_TYPES = {name: field_type for name, _, field_type in DEMO_CUSTOM_FIELDS}
PLACES = {(city, country): (region, zone) for city, country, region, zone, _ in CITIES}
SNAPSHOT_FIELDS = [
    "user_id", "name", "first_name", "last_name", "email", "phone", "city", "country", "region",
    "timezone", "external_id", "user_type", "custom", *sorted(ANALYTICS_FIELD_NAMES),
]  # fmt: skip


def snapshot(seed: int) -> list[tuple]:
    """This seed's customers and their tags, without ids and times of the run."""
    customers = list(
        Customer.objects.filter(user_id__startswith=f"demo-{seed}-")
        .order_by("user_id")
        .values_list(*SNAPSHOT_FIELDS)
    )
    tags: dict[str, list[str]] = {}
    for user_id, name in (
        CustomerTag.objects.filter(customer__user_id__startswith=f"demo-{seed}-")
        .order_by("tag__name")
        .values_list("customer__user_id", "tag__name")
    ):
        tags.setdefault(user_id, []).append(name)
    return [(*row, tags.get(row[0], [])) for row in customers]


@pytest.fixture
def frozen_clock():
    """Two runs at the same moment: their times, counted back from "now", match too."""
    with time_machine.travel(datetime(2026, 3, 1, 12, 0, tzinfo=UTC), tick=False):
        yield


def test_generating_n_creates_n_customers():
    result = generate_customers(count=250, seed=3)

    assert result.created == 250
    assert result.requested == 250
    assert Customer.objects.count() == 250
    assert Customer.objects.filter(user_id__startswith="demo-3-").count() == 250


def test_rows_are_complete_and_plausible():
    generate_customers(count=300, seed=3)

    now = datetime.now(UTC)
    for customer in Customer.objects.all():
        assert customer.name == f"{customer.first_name} {customer.last_name}"
        assert customer.city and len(customer.country) == 2
        assert (customer.region, customer.timezone) == PLACES[customer.city, customer.country]
        assert clean_timezone(customer.timezone) == customer.timezone
        assert customer.email == "" or customer.email.startswith(
            f"{customer.first_name.lower()}.{customer.last_name.lower()}."
        )
        assert customer.phone == "" or clean_phone(customer.phone) == customer.phone
        assert customer.phone == "" or customer.phone.startswith(PHONE_PREFIXES[customer.country])
        assert customer.user_type in ("live", "test")
        assert now - timedelta(days=HISTORY_DAYS + 1) < customer.created_at <= now
        assert customer.updated_at == customer.created_at
    assert Customer.objects.exclude(email="").exists()
    assert Customer.objects.filter(email="").exists()  # about one in ten has none
    assert Customer.objects.filter(phone="").exists()  # one in four has none
    assert Customer.objects.exclude(external_id="").exists()
    assert Customer.objects.filter(external_id="").exists()


def test_activity_moments_are_in_order():
    generate_customers(count=300, seed=4)

    now = datetime.now(UTC)
    seen = Customer.objects.filter(first_seen__isnull=False)
    assert Customer.objects.filter(first_seen__isnull=True).exists()  # some never seen
    for customer in seen:
        assert customer.created_at <= customer.first_seen <= customer.last_seen <= now
        platforms = [
            customer.last_seen_ios,
            customer.last_seen_android,
            customer.last_seen_web,
        ]
        used = [moment for moment in platforms if moment is not None]
        assert used and max(used) == customer.last_seen
        assert all(customer.first_seen <= moment for moment in used)
        # A platform's details come with its moment.
        assert bool(customer.last_seen_ios) == bool(customer.last_ios_device)
        assert bool(customer.last_seen_android) == bool(customer.last_android_device)
        assert bool(customer.last_seen_web) == bool(customer.last_browser_name)
    for customer in Customer.objects.filter(first_seen__isnull=True):
        assert customer.last_seen is None and customer.last_seen_web is None
        assert customer.last_browser_name == "" and customer.last_ios_device == ""


def test_a_few_customers_are_test_users():
    generate_customers(count=3000, seed=4)

    test_users = Customer.objects.filter(user_type="test").count()
    assert 0 < test_users < 100  # about 1%


def test_every_phone_number_the_generator_can_write_is_valid():
    for country, prefix in PHONE_PREFIXES.items():
        for k in range(1000):
            number = phonenumbers.parse(f"{prefix}{k:03d}")
            assert phonenumbers.is_valid_number(number), f"{prefix}{k:03d}"
            assert phonenumbers.region_code_for_number(number) == country
    assert {country for _, country, *_ in CITIES} <= set(PHONE_PREFIXES)


def test_places_have_real_time_zones():
    for *_, zone, _ in CITIES:
        zoneinfo.ZoneInfo(zone)


def test_the_demo_custom_fields_are_created_once():
    result = generate_customers(count=50, seed=3)

    fields = {f.name: f for f in CustomField.objects.all()}
    assert {name: f.type for name, f in fields.items()} == FIELD_TYPES
    assert sorted(result.custom_fields_created) == sorted(FIELD_TYPES)
    assert fields["lifetime_value"].label == "Lifetime value"
    assert Activity.objects.filter(action="custom_field.created").count() == 10

    again = generate_customers(count=80, seed=3)

    assert again.created == 30 and again.custom_fields_created == []
    assert CustomField.objects.count() == 10


def test_custom_values_are_stored_typed_and_valid():
    generate_customers(count=400, seed=5)

    filled = 0
    seen_keys: set[str] = set()
    for customer in Customer.objects.all():
        assert set(customer.custom) <= set(FIELD_TYPES)
        seen_keys |= set(customer.custom)
        filled += bool(customer.custom)
        for name, value in customer.custom.items():
            assert coerce_custom_value(FIELD_TYPES[name], value) == value, (name, value)
        if "interests" in customer.custom:
            assert all(part.strip() for part in customer.custom["interests"].split(","))
        if "signup_date" in customer.custom:
            assert customer.custom["signup_date"] == customer.created_at.strftime(
                "%Y-%m-%dT00:00:00Z"
            )
        if "vip_since" in customer.custom:
            assert customer.custom["vip_since"][:10] >= customer.created_at.date().isoformat()
    assert seen_keys == set(FIELD_TYPES)
    assert 0.8 * 400 < filled < 400  # most customers, not all
    assert (
        Customer.objects.filter(custom__has_key="interests")
        .exclude(custom__has_key="plan")
        .exists()
    )  # not every key for everyone
    assert Customer.objects.filter(custom__interests__icontains=",").exists()  # multi-value text
    assert Customer.objects.filter(custom__newsletter=True).exists()
    assert Customer.objects.filter(custom__newsletter=False).exists()


def test_a_field_of_another_type_or_deleted_gets_no_values():
    CustomField.objects.create(name="plan", label="Plan", type=CustomFieldType.NUMBER)
    CustomField.objects.create(
        name="birthday", label="Birthday", type=CustomFieldType.DATE, deleted_at=timezone.now()
    )

    result = generate_customers(count=200, seed=5)

    assert "plan" not in result.custom_fields_created
    assert CustomField.objects.get(name="plan").type == CustomFieldType.NUMBER
    assert not Customer.objects.filter(custom__has_key="plan").exists()
    assert not Customer.objects.filter(custom__has_key="birthday").exists()
    assert Customer.objects.filter(custom__has_key="interests").exists()


def test_the_other_values_do_not_depend_on_which_fields_exist(frozen_clock):
    generate_customers(count=100, seed=6)
    full = {c.user_id: c.custom for c in Customer.objects.all()}
    Customer.objects.all().delete()
    CustomField.objects.filter(name="plan").update(type=CustomFieldType.NUMBER)

    generate_customers(count=100, seed=6)

    for customer in Customer.objects.all():
        expected = {k: v for k, v in full[customer.user_id].items() if k != "plan"}
        assert customer.custom == expected


def test_demo_tags_are_created_once_and_assigned():
    Tag.objects.create(name="vip")  # an existing tag of the same name is reused

    result = generate_customers(count=600, seed=7)

    assert sorted(result.tags_created) == sorted(n for n, _ in DEMO_TAGS if n != "VIP")
    assert Tag.objects.count() == len(DEMO_TAGS)
    assert result.tagged == CustomerTag.objects.count() > 0
    per_customer = {}
    for assignment in CustomerTag.objects.select_related("customer", "tag"):
        assert assignment.source == Source.SYSTEM
        assert assignment.added_by_id is None and assignment.added_by_token_id is None
        customer = assignment.customer
        assert customer.created_at <= assignment.added_at <= timezone.now()
        per_customer[customer.pk] = per_customer.get(customer.pk, 0) + 1
    assert set(per_customer.values()) == {1, 2, 3}
    assert len(per_customer) < 600  # some have none
    counts = {
        name: CustomerTag.objects.filter(tag__name__iexact=name).count() for name, _ in DEMO_TAGS
    }
    assert counts["Newsletter"] > counts["Wholesale"]  # weighted
    assert counts["VIP"] > 0  # on the tag that was there


def test_a_rerun_adds_no_tags_twice():
    generate_customers(count=200, seed=7)
    tags, assignments = Tag.objects.count(), CustomerTag.objects.count()

    again = generate_customers(count=200, seed=7)

    assert (again.created, again.tagged, again.tags_created) == (0, 0, [])
    assert (Tag.objects.count(), CustomerTag.objects.count()) == (tags, assignments)


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


def test_rows_deleted_since_are_put_back_the_same(frozen_clock):
    generate_customers(count=100, seed=5)
    before = snapshot(5)
    Customer.objects.filter(user_id__in=["demo-5-0000007", "demo-5-0000042"]).delete()

    again = generate_customers(count=100, seed=5)

    assert again.created == 2
    assert snapshot(5) == before  # tags too


def test_ids_follow_the_sequence():
    generate_customers(count=30, seed=1)
    made_by_hand = Customer.objects.create(user_id="by-hand")

    generate_customers(count=20, seed=2)
    after = Customer.objects.create(user_id="after")

    ids = list(Customer.objects.filter(user_id__startswith="demo-2-").values_list("id", flat=True))
    assert sorted(ids) == list(range(made_by_hand.pk + 1, made_by_hand.pk + 21))
    assert after.pk == made_by_hand.pk + 21


def test_a_different_seed_adds_customers():
    generate_customers(count=120, seed=1)

    result = generate_customers(count=80, seed=2)

    assert result.created == 80
    assert Customer.objects.count() == 200


def test_same_seed_same_data(frozen_clock):
    generate_customers(count=150, seed=11)
    first = snapshot(11)
    Customer.objects.all().delete()

    generate_customers(count=150, seed=11)

    assert snapshot(11) == first
    assert len({row[1] for row in first}) > 1  # not one name repeated


def _lines(count: int, seed: int, **kwargs) -> list[str]:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return "".join(customer_lines(count, seed, now, **kwargs)).splitlines()


def test_different_seeds_give_different_data():
    one, two = _lines(50, 1), _lines(50, 2)

    assert [line.split("\t")[2:] for line in one] != [line.split("\t")[2:] for line in two]


def test_lines_have_every_column():
    for line in _lines(50, 1):
        assert len(line.split("\t")) == len(COLUMN_NAMES)


def test_lines_are_deterministic_and_skip_present_rows():
    lines = _lines(10, 4)
    assert lines == _lines(10, 4)

    present = bytearray(10)
    present[2] = present[7] = 1
    skipped = _lines(10, 4, present=present, first_id=5)

    kept = [line for i, line in enumerate(lines) if i not in (2, 7)]
    assert [line.split("\t", 1)[1] for line in skipped] == [line.split("\t", 1)[1] for line in kept]
    assert [line.split("\t", 1)[0] for line in skipped] == [str(5 + k) for k in range(8)]


def test_tag_lines_name_the_new_ids():
    class Out:
        text = ""

        def write(self, text: str) -> None:
            self.text += text

    out = Out()
    setup = DemoSetup(frozenset(), {name: k + 1 for k, (name, _) in enumerate(DEMO_TAGS)})
    _lines(200, 4, first_id=1000, setup=setup, tags_out=out)

    rows = [line.split("\t") for line in out.text.splitlines()]
    assert rows and {len(row) for row in rows} == {4}
    assert {int(row[0]) for row in rows} <= set(range(1000, 1200))
    assert {int(row[1]) for row in rows} <= set(range(1, len(DEMO_TAGS) + 1))
    assert {row[3] for row in rows} == {"system"}
    pairs = [(row[0], row[1]) for row in rows]
    assert len(pairs) == len(set(pairs))  # never the same tag twice on one customer


def test_an_existing_customer_with_a_demo_user_id_is_kept():
    Customer.objects.create(user_id="demo-6-0000003", name="Real Person")

    result = generate_customers(count=10, seed=6)

    assert result.created == 9
    real = Customer.objects.get(user_id="demo-6-0000003")
    assert real.name == "Real Person"
    assert not real.customer_tags.exists()


def test_look_alike_user_ids_do_not_count_as_present():
    # Only f"{i:07d}" suffixes are this seed's rows; these merely share the prefix.
    for user_id in ("demo-6-3", "demo-6-00000003", "demo-6-x", "demo-66-0000003"):
        Customer.objects.create(user_id=user_id)

    assert generate_customers(count=10, seed=6).created == 10


def test_zero_customers_is_a_no_op():
    assert generate_customers(count=0, seed=1).created == 0
    assert not Customer.objects.exists()
    assert not CustomField.objects.exists() and not Tag.objects.exists()


def _schema(table: str) -> tuple[dict[str, str], set[int], dict[str, str]]:
    """``table``'s index definitions by name, the indexes' oids, and its constraints'
    definitions by name."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_indexdef(x.indexrelid), x.indexrelid::int"
            " FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid"
            " WHERE x.indrelid = %s::regclass",
            [table],
        )
        rows = cursor.fetchall()
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) || ' ' || convalidated::text"
            " FROM pg_constraint WHERE conrelid = %s::regclass",
            [table],
        )
        constraints = dict(cursor.fetchall())
    return (
        {name: definition for name, definition, _ in rows},
        {oid for *_, oid in rows},
        constraints,
    )


def test_big_load_rebuilds_the_secondary_indexes_as_they_were(monkeypatch):
    monkeypatch.setattr(demo_data, "REBUILD_MIN_ROWS", 100)
    generate_customers(count=20, seed=8)
    definitions, oids, constraints = _schema("customers_customer")
    tag_definitions, tag_oids, tag_constraints = _schema("tags_customertag")

    result = generate_customers(count=300, seed=9)  # 300 rows onto 20: worth a rebuild

    assert result.created == 300
    assert result.tagged > 100  # and the tag assignments too
    new_definitions, new_oids, new_constraints = _schema("customers_customer")
    assert new_definitions == definitions
    assert new_constraints == constraints
    # Built again: every plain index (sort keys, look-ups, the user_id LIKE one); the primary
    # key and the user_id unique constraint stay.
    plain = {name for name, definition in definitions.items() if " UNIQUE " not in definition}
    assert len(plain) == 7
    assert len(new_oids - oids) == len(plain)
    assert Customer.objects.filter(user_id__startswith="demo-9-").count() == 300

    new_tag_definitions, new_tag_oids, new_tag_constraints = _schema("tags_customertag")
    assert new_tag_definitions == tag_definitions
    assert new_tag_constraints == tag_constraints
    assert len(new_tag_oids - tag_oids) == 4  # all but the primary key and (customer, tag)


def test_a_big_load_tags_only_its_customers_with_existing_tags(monkeypatch):
    # Assignments keep no key constraints (tags/models.py): the load names its own new
    # customers and the tags it locked.
    monkeypatch.setattr(demo_data, "REBUILD_MIN_ROWS", 50)

    generate_customers(count=100, seed=9)

    assert CustomerTag.objects.count() > 50
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM tags_customertag ct"
            " WHERE NOT EXISTS (SELECT FROM customers_customer c WHERE c.id = ct.customer_id)"
            "    OR NOT EXISTS (SELECT FROM tags_tag t WHERE t.id = ct.tag_id)"
        )
        assert cursor.fetchone() == (0,)


def test_small_load_onto_a_bigger_table_keeps_the_indexes(monkeypatch):
    monkeypatch.setattr(demo_data, "REBUILD_MIN_ROWS", 10)
    generate_customers(count=100, seed=8)
    _, oids, _ = _schema("customers_customer")
    _, tag_oids, _ = _schema("tags_customertag")

    generate_customers(count=20, seed=9)  # 20 rows onto 100: not worth it

    assert _schema("customers_customer")[1] == oids
    assert _schema("tags_customertag")[1] == tag_oids


def test_command_loads_customers():
    out = StringIO()
    call_command("generate_demo_data", customers=40, seed=2, stdout=out)

    assert Customer.objects.count() == 40
    assert "40 created of 40 requested (seed 2)" in out.getvalue()
    assert f"{CustomerTag.objects.count()} tag assignments" in out.getvalue()
    assert "custom fields created: plan, interests" in out.getvalue()


def test_command_rejects_negative_customers():
    with pytest.raises(CommandError, match="--customers"):
        call_command("generate_demo_data", customers=-1, stdout=StringIO())
    assert not Customer.objects.exists()


def test_command_rejects_negative_seed():
    with pytest.raises(CommandError, match="--seed"):
        call_command("generate_demo_data", customers=5, seed=-3, stdout=StringIO())

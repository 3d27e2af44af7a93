"""Rows an earlier import already applied (imports/digest.py): staged on the customer's digest
without being checked, counted unchanged, and checked after all when the customer changed in
between, at any moment of the import."""

from __future__ import annotations

from array import array

import pytest
from django.db import connection

from customers.custom_fields import CustomFieldSpec
from customers.models import Customer
from customers.profile import STANDARD_FIELDS, CleanProfile
from customers.services import custom_field_create, customer_erase, customer_update
from customers.upsert import UpsertItem, customers_upsert
from imports import digest as digest_module
from imports import pipeline, services
from imports.digest import RowDigests, known_digests
from imports.models import ImportChange, ImportStatus
from imports.rows import BlockTyper
from imports.undo import import_undo_run
from segments.fields import ChangeKind
from segments.models import PendingCustomer
from tests.imports.conftest import (
    SYSTEM,
    counts,
    csv_text,
    customer,
    customers,
    make_import,
    tag_names,
)

pytestmark = pytest.mark.django_db

DATA = csv_text(
    "id,Name,Email,Phone,Country,Plan",
    "a,Ann,ann@example.com,+4915123456789,DE,gold",
    "b,Bob,bob@example.com,,PT,",
    "c,Cy,,+351912345678,DE,free",
)


@pytest.fixture(autouse=True)
def big(settings):
    """Files big enough to read every customer's digest (in this process, so it can be
    watched)."""
    settings.IMPORTS_PARALLEL_FROM_ROWS = 0
    settings.IMPORTS_STAGE_PROCESSES = 1
    settings.IMPORTS_MERGE_CONNECTIONS = 1


@pytest.fixture(autouse=True)
def plan(db):
    return custom_field_create(label="Plan", type="text", actor=SYSTEM)


@pytest.fixture
def checked(monkeypatch) -> list[str]:
    """The user IDs of the rows checked and typed (not vouched for by a digest)."""
    seen: list[str] = []
    original = BlockTyper._typed_lines

    def spy(self, plain, marks, others):
        seen.extend(row[1][self.user_id.index] for row in plain)
        return original(self, plain, marks, others)

    monkeypatch.setattr(BlockTyper, "_typed_lines", spy)
    return seen


def digest(user_id: str) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT import_digest FROM customers_customer WHERE user_id = %s", [user_id])
        return cursor.fetchone()[0]


def edit(user_id: str, **values) -> None:
    customer_update(customer=customer(user_id), profile=CleanProfile(values=values), actor=SYSTEM)


def test_the_same_rows_again_are_not_checked_and_change_nothing(checked):
    first = make_import(DATA)
    assert sorted(checked) == ["a", "b", "c"] and first.created == 3
    assert all(digest(u) is not None for u in "abc")
    before = customers()
    checked.clear()
    PendingCustomer.objects.all().delete()

    second = make_import(DATA, tags=["Again"])

    assert checked == []
    assert counts(second) == {
        "created": 0,
        "updated": 0,
        "unchanged": 3,
        "failed": 0,
        "tagged": 3,
        "total": 3,
    }
    assert second.status == ImportStatus.COMPLETED
    assert customers() == before
    assert not ImportChange.objects.filter(import_id=second.pk).exists()
    assert tag_names("b") == {"Again"}  # the tags still go on every imported customer
    assert set(PendingCustomer.objects.values_list("kinds", flat=True)) == {ChangeKind.TAGS}


def test_only_the_rows_that_differ_are_checked(checked):
    make_import(DATA)
    old = digest("b")
    checked.clear()

    imp = make_import(DATA.replace("Bob,", "Bobby,"))

    assert checked == ["b"]
    assert (imp.updated, imp.unchanged) == (1, 2)
    assert customers()["b"]["name"] == "Bobby"
    assert digest("b") not in (None, old)


def test_a_customer_changed_since_the_import_is_checked_and_set_back(checked):
    make_import(DATA)
    edit("a", name="Anna")
    assert digest("a") is None
    checked.clear()

    imp = make_import(DATA)

    assert checked == ["a"]
    assert (imp.updated, imp.unchanged) == (1, 2)
    assert customers()["a"]["name"] == "Ann"
    assert digest("a") is not None


def test_other_mappings_and_options_do_not_take_the_short_way(checked):
    make_import(DATA)
    checked.clear()
    make_import(DATA, fill_empty=["Name"])
    assert sorted(checked) == ["a", "b", "c"]
    checked.clear()
    make_import(DATA, {"Plan": "skip"})
    assert sorted(checked) == ["a", "b", "c"]


def _writes():
    return {
        "the ORM's save": lambda c: (setattr(c, "city", "Porto"), c.save()),
        "a queryset update": lambda c: Customer.objects.filter(pk=c.pk).update(city="Porto"),
        "the API's upsert": lambda c: customers_upsert(
            [UpsertItem(c.user_id, CleanProfile(custom_set={"plan": "silver"}))], SYSTEM
        ),
        "a custom value": lambda c: Customer.objects.filter(pk=c.pk).update(custom={}),
    }


@pytest.mark.parametrize("write", list(_writes()))
def test_any_other_write_of_an_imported_field_clears_the_digest(write):
    make_import(DATA)
    _writes()[write](customer("a"))
    assert digest("a") is None
    assert digest("b") is not None


def test_a_write_of_fields_no_import_writes_keeps_the_digest():
    make_import(DATA)
    Customer.objects.filter(user_id="a").update(last_seen="2026-01-01T00:00:00Z")
    assert digest("a") is not None


def test_the_trigger_watches_every_column_an_import_writes():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attname FROM pg_trigger t JOIN pg_attribute a"
            " ON a.attrelid = t.tgrelid AND a.attnum = ANY(t.tgattr::int2[])"
            " WHERE t.tgname = 'imports_digest_clear'"
        )
        watched = {name for (name,) in cursor.fetchall()}
    assert watched == {"user_id", "custom", *STANDARD_FIELDS}


@pytest.fixture
def changed_while_reading(monkeypatch):
    """Customer a is edited and b erased just after the import read the digests."""
    original = pipeline.known_digests

    def read_then_change():
        known = original()
        edit("a", name="Anna")
        customer_erase(customer=customer("b"), actor=SYSTEM)
        return known

    monkeypatch.setattr(pipeline, "known_digests", read_then_change)


def test_a_customer_changed_or_erased_after_the_digests_were_read(checked, request):
    make_import(DATA)
    request.getfixturevalue("changed_while_reading")
    checked.clear()

    imp = make_import(DATA)

    assert checked == []  # read as unchanged, then found changed when merged
    assert counts(imp) == {
        "created": 1,
        "updated": 1,
        "unchanged": 1,
        "failed": 0,
        "tagged": 0,
        "total": 3,
    }
    found = customers()
    assert found["a"]["name"] == "Ann" and found["b"]["name"] == "Bob"
    assert found["b"]["custom"] == {}  # its empty Plan cell gave no value
    assert digest("a") is not None and digest("b") is not None


def test_a_dry_run_counts_customers_changed_after_the_digests_were_read(request):
    make_import(DATA)
    request.getfixturevalue("changed_while_reading")

    imp = make_import(DATA, dry_run=True)

    assert (imp.created, imp.updated, imp.unchanged, imp.failed) == (1, 1, 1, 0)
    assert customers()["a"]["name"] == "Anna" and "b" not in customers()


def test_a_row_that_fails_when_checked_late_is_reported(monkeypatch, request):
    """The custom field's type changed between reading and merging: the row fails then."""
    make_import(DATA)
    request.getfixturevalue("changed_while_reading")
    read = pipeline.known_digests
    real_specs = pipeline.custom_field_specs

    def number_plan():
        specs = real_specs()
        specs["plan"] = CustomFieldSpec("plan", "number", "Plan")
        return specs

    def read_then_retype():
        known = read()
        monkeypatch.setattr(pipeline, "custom_field_specs", number_plan)
        return known

    monkeypatch.setattr(pipeline, "known_digests", read_then_retype)

    imp = make_import(DATA)

    assert (imp.created, imp.updated, imp.unchanged, imp.failed) == (1, 0, 1, 1)
    assert imp.status == ImportStatus.COMPLETED_WITH_ERRORS
    assert customers()["a"]["name"] == "Anna"


def test_undo_of_an_import_that_only_tagged_removes_its_tags():
    make_import(DATA)
    before = customers()
    imp = make_import(DATA, tags=["Again"])
    services.import_undo(imp=imp, actor=SYSTEM)
    import_undo_run(imp.pk)
    assert customers() == before
    assert tag_names("a") == set()


def test_the_known_digests_are_every_customers_sorted():
    make_import(DATA)
    assert list(known_digests()) == sorted(digest(u) for u in "abc")


@pytest.mark.parametrize("limit", [0, 10], ids=["bisection", "set"])
def test_a_digest_is_known_exactly_when_a_customer_carries_it(monkeypatch, limit):
    monkeypatch.setattr(digest_module, "SET_LIMIT", limit)
    known = array("q", [-(2**63), -5, 0, 7, 2**63 - 1])
    digests = RowDigests(b"key", known.tobytes())
    for value in [*known, -(2**63) + 1, -6, -4, 1, 6, 8, 2**63 - 2]:
        assert digests.is_known(value) == (value in known)

"""Tag assignments keep no key constraint on the customer (tags/models.py): a writer locks the
customers it tags, and an erasure deletes the rows first and the assignments after. Whichever
of the two gets there first, no assignment outlives its customer."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from activity.services import Actor
from customers.models import Customer
from customers.services import customers_erase
from segments import incremental
from tags.models import CustomerTag
from tags.services import customers_tag, customers_tag_by_name, tags_ensure
from tests import concurrency
from tests.factories import CustomerFactory

ACTOR = Actor.system("tests")

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_drain(monkeypatch):
    monkeypatch.setattr(incremental, "_trigger", lambda: None)  # commits really happen here


def _blocked(pid: int) -> None:
    """Wait until the backend ``pid`` waits for a lock."""
    with connection.cursor() as cursor:
        for _ in range(600):
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
            if cursor.fetchone() == ("Lock",):
                return
            time.sleep(0.05)
    raise AssertionError(f"backend {pid} never waited for a lock")


def _pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_an_erasure_waits_for_a_writer_that_locked_the_customer_and_takes_its_tag_along():
    customer = CustomerFactory()
    (vip,) = tags_ensure(["vip"], ACTOR)
    tagged, eraser = threading.Event(), {}

    def tag() -> int:
        with transaction.atomic():
            added = customers_tag(Customer.objects.filter(pk=customer.pk), [vip], ACTOR)
            tagged.set()
            while "pid" not in eraser:
                time.sleep(0.01)
            _blocked(eraser["pid"])  # the erasure waits for this transaction
        return added

    def erase() -> int:
        eraser["pid"] = _pid()
        assert tagged.wait(timeout=30)
        return customers_erase(Customer.objects.filter(pk=customer.pk), ACTOR)

    added, erased = concurrency.race(tag, erase)

    assert (added, erased) == (1, 1)
    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert not CustomerTag.objects.exists()


@pytest.mark.parametrize("writer", ["customers_tag", "customers_tag_by_name"])
def test_a_writer_that_waited_for_an_erasure_tags_no_one(writer):
    customer, other = CustomerFactory(), CustomerFactory()
    (vip,) = tags_ensure(["vip"], ACTOR)
    erased, tagger = threading.Event(), {}

    def erase() -> int:
        with transaction.atomic():
            done = customers_erase(Customer.objects.filter(pk=customer.pk), ACTOR)
            erased.set()
            while "pid" not in tagger:
                time.sleep(0.01)
            _blocked(tagger["pid"])  # the writer waits for the erasure to commit
        return done

    def tag() -> object:
        assert erased.wait(timeout=30)
        tagger["pid"] = _pid()
        if writer == "customers_tag":
            both = Customer.objects.filter(pk__in=[customer.pk, other.pk])
            return customers_tag(both, [vip], ACTOR)
        return customers_tag_by_name([(customer.pk, "vip"), (other.pk, "vip")], ACTOR)

    done, result = concurrency.race(erase, tag)

    assert done == 1
    assert result in (1, {other.pk})  # the erased customer got nothing
    assert list(CustomerTag.objects.values_list("customer_id", flat=True)) == [other.pk]

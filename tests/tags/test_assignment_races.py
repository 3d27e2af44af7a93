"""Tag assignments keep no key constraints (tags/models.py): a writer locks the customers and
tags it names, and erasing a customer or deleting a tag deletes the rows first and the
assignments after. Whichever gets there first, no assignment outlives its customer or tag."""

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
from tags.services import customers_tag, customers_tag_by_name, tag_delete, tags_ensure
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


def _delete(what: str, customer: Customer, tag) -> int:
    if what == "customer":
        return customers_erase(Customer.objects.filter(pk=customer.pk), ACTOR)
    tag_delete(tag=tag, actor=ACTOR)
    return 1


@pytest.mark.parametrize("what", ["customer", "tag"])
def test_a_deletion_waits_for_a_writer_that_locked_the_row_and_takes_its_assignment_along(what):
    customer = CustomerFactory()
    (vip,) = tags_ensure(["vip"], ACTOR)
    tagged, deleter = threading.Event(), {}

    def tag() -> int:
        with transaction.atomic():
            added = customers_tag(Customer.objects.filter(pk=customer.pk), [vip], ACTOR)
            tagged.set()
            while "pid" not in deleter:
                time.sleep(0.01)
            _blocked(deleter["pid"])  # the deletion waits for this transaction
        return added

    def delete() -> int:
        deleter["pid"] = _pid()
        assert tagged.wait(timeout=30)
        return _delete(what, customer, vip)

    added, deleted = concurrency.race(tag, delete)

    assert (added, deleted) == (1, 1)
    assert not CustomerTag.objects.exists()


@pytest.mark.parametrize("what", ["customer", "tag"])
@pytest.mark.parametrize("writer", ["customers_tag", "customers_tag_by_name"])
def test_a_writer_that_waited_for_a_deletion_names_nothing_deleted(writer, what):
    customer, other = CustomerFactory(), CustomerFactory()
    (vip,) = tags_ensure(["vip"], ACTOR)
    deleted, tagger = threading.Event(), {}

    def delete() -> int:
        with transaction.atomic():
            done = _delete(what, customer, vip)
            deleted.set()
            while "pid" not in tagger:
                time.sleep(0.01)
            _blocked(tagger["pid"])  # the writer waits for the deletion to commit
        return done

    def tag() -> object:
        assert deleted.wait(timeout=30)
        tagger["pid"] = _pid()
        if writer == "customers_tag":
            both = Customer.objects.filter(pk__in=[customer.pk, other.pk])
            return customers_tag(both, [vip], ACTOR)
        return customers_tag_by_name([(customer.pk, "vip"), (other.pk, "vip")], ACTOR)

    done, result = concurrency.race(delete, tag)

    assert done == 1
    survivors = [other.pk] if what == "customer" else []
    assert result in (len(survivors), set(survivors))
    assert list(CustomerTag.objects.values_list("customer_id", flat=True)) == survivors

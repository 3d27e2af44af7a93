"""entries_add / entries_remove: set-based, idempotent, logged once per action, and queueing the
customers holding the contacts for segment re-evaluation."""

from __future__ import annotations

import pytest
from django.db import connection

from activity.models import Activity
from donotcontact.contacts import ContactInvalid, entry_clean
from donotcontact.models import Entry, Source
from donotcontact.services import (
    entries_add,
    entries_remove,
    entries_remove_matching,
)
from segments.fields import ChangeKind
from segments.models import Segment
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _entries(*specs):
    return [entry_clean(*spec) for spec in specs]


def test_add_stores_normalised_entries_with_their_details(system_actor, marketer):
    from activity.services import Actor

    actor = Actor("ui", member=marketer)
    result = entries_add(
        entries=_entries(("Ann@Example.com",), ("0044 20 7946 0958", "WhatsApp", "Acme", "eu")),
        source=Source.END_USER,
        reason=" Replied   STOP ",
        note="Called twice",
        actor=actor,
    )
    assert (len(result.added), result.existing) == (2, 0)
    rows = sorted(
        Entry.objects.values_list(
            "contact", "channel", "sender", "account", "source", "reason", "note", "added_by"
        )
    )
    assert rows == [
        (
            "+442079460958",
            "whatsapp",
            "Acme",
            "eu",
            "end_user",
            "Replied STOP",
            "Called twice",
            marketer.pk,
        ),
        (
            "ann@example.com",
            "email",
            "",
            "",
            "end_user",
            "Replied STOP",
            "Called twice",
            marketer.pk,
        ),
    ]


def test_readding_an_identical_entry_is_a_no_op(system_actor):
    first = entries_add(
        entries=_entries(("ann@example.com",)),
        source=Source.MANUAL,
        reason="first",
        actor=system_actor,
    )
    again = entries_add(
        entries=_entries(("ANN@example.com", "email"), ("ann@example.com",)),
        source=Source.API,
        reason="second",
        actor=system_actor,
    )
    assert (len(first.added), first.existing) == (1, 0)
    assert (again.added, again.existing) == ([], 1)
    entry = Entry.objects.get()
    # The original keeps its time, source and reason.
    assert (entry.source, entry.reason, entry.added_at) == (
        "manual",
        "first",
        first.added[0].added_at,
    )
    assert Activity.objects.filter(action="do_not_contact.added").count() == 1


def test_the_same_contact_on_two_channels_is_two_entries(system_actor):
    result = entries_add(
        entries=_entries(("+442079460958", "sms"), ("+442079460958", "viber")),
        source=Source.MANUAL,
        actor=system_actor,
    )
    assert len(result.added) == 2
    assert sorted(Entry.objects.values_list("channel", flat=True)) == ["sms", "viber"]


def test_per_entry_details(system_actor):
    entries_add(
        entries=_entries(("a@example.com",), ("b@example.com",)),
        source=Source.API,
        details=[("r1", "n1"), ("r2", "")],
        actor=system_actor,
    )
    assert sorted(Entry.objects.values_list("contact", "reason", "note")) == [
        ("a@example.com", "r1", "n1"),
        ("b@example.com", "r2", ""),
    ]


def test_bad_reason_or_note_is_refused_and_nothing_is_stored(system_actor):
    with pytest.raises(ContactInvalid, match="reason is longer"):
        entries_add(
            entries=_entries(("a@example.com",)),
            source=Source.API,
            reason="x" * 201,
            actor=system_actor,
        )
    with pytest.raises(ContactInvalid, match="NUL"):
        entries_add(
            entries=_entries(("a@example.com",)),
            source=Source.API,
            note="a\x00",
            actor=system_actor,
        )
    assert not Entry.objects.exists()


def test_bulk_add_is_one_statement_and_one_log_entry(system_actor, django_assert_max_num_queries):
    entries = _entries(*((f"user{i}@example.com",) for i in range(500)))
    with django_assert_max_num_queries(8):
        result = entries_add(entries=entries, source=Source.IMPORT, actor=system_actor)
    assert len(result.added) == 500
    log = Activity.objects.get(action="do_not_contact.added")
    assert (log.count, log.changes["entries"]) == (500, 500)


def test_add_and_remove_queue_the_customers_for_segments(system_actor):
    customer = CustomerFactory(email="ann@example.com")
    CustomerFactory(email="other@example.com")
    # A segment that reads the list: customers_mark_for_contacts only queues when one does.
    Segment.objects.create(name="dnc", rules={}, change_kinds=ChangeKind.DO_NOT_CONTACT)
    result = entries_add(
        entries=_entries(("ann@example.com",)), source=Source.API, actor=system_actor
    )

    def pending():
        with connection.cursor() as cursor:
            cursor.execute("SELECT customer_id, kinds FROM segments_pendingcustomer")
            return cursor.fetchall()

    assert pending() == [(customer.pk, ChangeKind.DO_NOT_CONTACT)]
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM segments_pendingcustomer")
    entries_remove(ids=[result.added[0].pk], actor=system_actor)
    assert pending() == [(customer.pk, ChangeKind.DO_NOT_CONTACT)]


def test_remove_one_and_many(add, system_actor):
    a = add("a@example.com")
    b = add("+442079460958", "sms")
    c = add("+442079460958", "viber")
    assert entries_remove(ids=[a.pk, 10**12], actor=system_actor) == 1
    one = Activity.objects.get(action="do_not_contact.removed")
    assert (one.target_id, one.count) == (a.pk, 1)
    removed = entries_remove_matching(
        Entry.objects.filter(contact="+442079460958"), actor=system_actor
    )
    assert removed == 2 and not Entry.objects.filter(pk__in=[b.pk, c.pk]).exists()
    bulk = Activity.objects.filter(action="do_not_contact.removed").order_by("-pk").first()
    assert (bulk.target_id, bulk.count, bulk.changes) == (None, 2, {"entries": 2})
    assert entries_remove(ids=[a.pk], actor=system_actor) == 0
    assert Activity.objects.filter(action="do_not_contact.removed").count() == 2

"""The suppressed contacts (donotcontact.models.SuppressedContact), which the triggers of
migration 0003 keep in step with the list: held to a grouping of the list written in Python
after any mix of additions, removals and changes, and against two transactions racing on one
contact."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from donotcontact.models import Channel, Entry, SuppressedContact
from donotcontact.suppression import CHANNEL_BITS
from tests.concurrency import race, wait_for_blocked_lock

EMAILS = ["ann@example.com", "bob@example.com"]
PHONES = ["+442079460958", "+14155550123"]
EVERY_CHANNEL = sum(CHANNEL_BITS.values())


def _expected() -> dict[str, tuple[bool, int]]:
    """The list grouped in Python: entries for every sender and account, by contact."""
    grouped: dict[str, tuple[bool, int]] = {}
    for e in Entry.objects.filter(sender="", account=""):
        bits = CHANNEL_BITS[e.channel] if e.channel else EVERY_CHANNEL
        _, before = grouped.get(e.contact, (None, 0))
        grouped[e.contact] = ("@" in e.contact, before | bits)
    return grouped


def _stored() -> dict[str, tuple[bool, int]]:
    return {s.contact: (s.is_email, s.channels) for s in SuppressedContact.objects.all()}


@pytest.mark.django_db
def test_the_sql_bits_are_the_python_bits():
    with connection.cursor() as cursor:
        for channel, bit in [*CHANNEL_BITS.items(), ("", EVERY_CHANNEL)]:
            cursor.execute("SELECT dnc_channel_bits(%s)", [channel])
            assert cursor.fetchone()[0] == bit


entry = st.tuples(
    st.sampled_from(EMAILS + PHONES),
    st.sampled_from(["", *Channel.values]),
    st.sampled_from(["", "acme"]),
    st.sampled_from(["", "eu"]),
)
step = st.one_of(
    st.tuples(st.just("add"), st.lists(entry, min_size=1, max_size=4)),
    st.tuples(st.just("remove"), st.lists(entry, min_size=1, max_size=4)),
    st.tuples(st.just("change"), entry, entry),
    st.tuples(st.just("truncate")),
)


@pytest.mark.django_db
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=8))
def test_the_table_is_the_list_grouped_after_any_writes(steps):
    with transaction.atomic():
        for action, *args in steps:
            if action == "add":
                rows = {
                    e: Entry(contact=e[0], channel=e[1], sender=e[2], account=e[3]) for e in args[0]
                }
                Entry.objects.bulk_create(rows.values(), ignore_conflicts=True)
            elif action == "remove":
                for contact, channel, sender, account in args[0]:
                    Entry.objects.filter(
                        contact=contact, channel=channel, sender=sender, account=account
                    ).delete()
            elif action == "change":
                (
                    (contact, channel, sender, account),
                    (to_contact, to_channel, to_sender, to_account),
                ) = args
                if not Entry.objects.filter(
                    contact=to_contact, channel=to_channel, sender=to_sender, account=to_account
                ).exists():
                    Entry.objects.filter(
                        contact=contact, channel=channel, sender=sender, account=account
                    ).update(
                        contact=to_contact, channel=to_channel, sender=to_sender, account=to_account
                    )
            else:
                with connection.cursor() as cursor:
                    # The added-by key's checks wait for the commit, which TRUNCATE refuses.
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                    cursor.execute("TRUNCATE donotcontact_entry")
            assert _stored() == _expected(), (action, args)
        transaction.set_rollback(True)


@pytest.mark.django_db(transaction=True)
def test_a_removal_waiting_on_an_addition_to_the_same_contact_keeps_it():
    """The removal recounts the contact once the addition has committed: counted from its
    own earlier snapshot, it would drop the WhatsApp bit the addition set."""
    phone = PHONES[0]
    Entry.objects.create(contact=phone, channel=Channel.SMS)
    added, release = threading.Event(), threading.Event()

    def addition():
        with transaction.atomic():
            Entry.objects.create(contact=phone, channel=Channel.WHATSAPP)
            added.set()
            assert release.wait(30)

    def removal():
        assert added.wait(30)
        with transaction.atomic():
            Entry.objects.filter(contact=phone, channel=Channel.SMS).delete()

    def referee():
        assert added.wait(30)
        wait_for_blocked_lock()  # the removal waits for the addition's row
        release.set()

    assert race(addition, removal, referee) == [None, None, None]
    assert _stored() == {phone: (False, CHANNEL_BITS[Channel.WHATSAPP])} == _expected()


@pytest.mark.django_db(transaction=True)
def test_two_additions_to_one_new_contact_at_once_keep_both():
    email = EMAILS[0]
    outcomes = race(
        lambda: Entry.objects.create(contact=email, channel=Channel.EMAIL, sender=""),
        lambda: Entry.objects.create(contact=email, channel=""),
    )
    assert outcomes == [outcomes[0], outcomes[1]] and all(isinstance(o, Entry) for o in outcomes)
    assert _stored() == {email: (True, EVERY_CHANNEL)} == _expected()

"""The suppressed phone numbers (donotcontact.models.SuppressedPhone), which the triggers of
migration 0003 keep in step with the list: held to a grouping of the list written in Python
after any mix of additions, removals and changes, and against two transactions racing on one
number. And the rule the reachable counts rely on for e-mail: an address is on the list for
Email only."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from donotcontact.models import Channel, Entry, SuppressedPhone
from donotcontact.suppression import CHANNEL_BITS
from tests.concurrency import race, wait_for_blocked_lock

EMAILS = ["ann@example.com", "bob@example.com"]
PHONES = ["+442079460958", "+14155550123"]
EVERY_CHANNEL = sum(CHANNEL_BITS.values())


def _expected() -> dict[str, int]:
    """The list grouped in Python: phone numbers' entries for every sender and account."""
    grouped: dict[str, int] = {}
    for e in Entry.objects.filter(sender="", account="").exclude(contact__contains="@"):
        bits = CHANNEL_BITS[e.channel] if e.channel else EVERY_CHANNEL
        grouped[e.contact] = grouped.get(e.contact, 0) | bits
    return grouped


def _stored() -> dict[str, int]:
    return dict(SuppressedPhone.objects.values_list("contact", "channels"))


@pytest.mark.django_db
def test_the_sql_bits_are_the_python_bits():
    with connection.cursor() as cursor:
        for channel, bit in [*CHANNEL_BITS.items(), ("", EVERY_CHANNEL)]:
            cursor.execute("SELECT dnc_channel_bits(%s)", [channel])
            assert cursor.fetchone()[0] == bit


entry = st.tuples(
    st.one_of(
        st.tuples(st.sampled_from(EMAILS), st.just(Channel.EMAIL.value)),
        st.tuples(
            st.sampled_from(PHONES),
            st.sampled_from(["", *(c for c in Channel.values if c != Channel.EMAIL)]),
        ),
    ),
    st.sampled_from(["", "acme"]),
    st.sampled_from(["", "eu"]),
).map(lambda t: (*t[0], t[1], t[2]))
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
    assert _stored() == {phone: CHANNEL_BITS[Channel.WHATSAPP]} == _expected()


@pytest.mark.django_db(transaction=True)
def test_two_additions_to_one_new_number_at_once_keep_both():
    phone = PHONES[1]
    outcomes = race(
        lambda: Entry.objects.create(contact=phone, channel=Channel.SMS),
        lambda: Entry.objects.create(contact=phone, channel=Channel.VOICE),
    )
    assert all(isinstance(o, Entry) for o in outcomes), outcomes
    bits = CHANNEL_BITS[Channel.SMS] | CHANNEL_BITS[Channel.VOICE]
    assert _stored() == {phone: bits} == _expected()


@pytest.mark.django_db
@pytest.mark.parametrize("channel", ["", Channel.SMS])
def test_an_email_address_is_on_the_list_for_email_only(channel):
    with pytest.raises(IntegrityError, match="dnc_entry_email_for_email"), transaction.atomic():
        Entry.objects.create(contact=EMAILS[0], channel=channel)

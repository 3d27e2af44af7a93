"""The suppression rules (donotcontact/suppression.py) against real rows, held to a plain-Python
reference by a property test; and the rule that entries are by value: they hold before a
customer exists, when one is created or imported later, and after that customer is erased."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from activity.services import Actor
from customers.models import Customer
from customers.profile import profile_clean
from customers.services import customer_erase
from customers.upsert import UpsertItem, customers_upsert
from donotcontact.models import Channel, Entry
from donotcontact.selectors import customer_dnc_status, entries_suppressing
from donotcontact.suppression import (
    PHONE_CHANNELS,
    reach_joins_sql,
    suppressed_sql,
)
from tests.factories import CustomerFactory

EMAILS = ["ann@example.com", "bob@example.com"]
PHONES = ["+442079460958", "+14155550123"]
SENDERS = ["", "acme", "shop"]
ACCOUNTS = ["", "eu"]
CHANNELS = list(Channel.values)


def _entry_strategy():
    email = st.tuples(st.sampled_from(EMAILS), st.just(Channel.EMAIL.value))
    phone = st.tuples(
        st.sampled_from(PHONES), st.sampled_from(["", *(c.value for c in PHONE_CHANNELS)])
    )
    return st.tuples(st.one_of(email, phone), st.sampled_from(SENDERS), st.sampled_from(ACCOUNTS))


customer_strategy = st.tuples(
    st.sampled_from(["", *EMAILS]), st.sampled_from(["", *PHONES]), st.booleans()
)


def _covers(entry, address, channel, sender, account) -> bool:
    """The reference rule, written from the issue's words rather than from the SQL."""
    if not address or entry.contact != address:
        return False
    if channel is not None and entry.channel not in ("", channel):
        return False
    # Without a sender (account) only entries for every sender (account) count.
    if entry.sender and entry.sender != sender:
        return False
    return not (entry.account and entry.account != account)


def _addresses(customer, channel):
    if channel is None:
        return [customer.email, customer.phone]
    return [customer.phone if channel in PHONE_CHANNELS else customer.email]


def _suppressed(entries, customer, channel, sender, account) -> bool:
    return any(
        _covers(e, address, channel, sender, account)
        for e in entries
        for address in _addresses(customer, channel)
    )


def _has_address(customer, channel) -> bool:
    if channel == Channel.PUSH:
        return bool(customer.device_tokens)
    return bool(_addresses(customer, channel)[0])


def _matching_ids(sql, params) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT c.id FROM customers_customer c WHERE {sql}", params)  # noqa: S608
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    entries=st.lists(_entry_strategy(), max_size=8),
    customers=st.lists(customer_strategy, min_size=1, max_size=5),
    channel=st.one_of(st.none(), st.sampled_from(CHANNELS)),
    sender=st.sampled_from(SENDERS),
    account=st.sampled_from(ACCOUNTS),
)
def test_sql_matches_the_reference(entries, customers, channel, sender, account):
    with transaction.atomic():
        rows = {
            (contact, ch, s, a): Entry(contact=contact, channel=ch, sender=s, account=a)
            for (contact, ch), s, a in entries
        }
        Entry.objects.bulk_create(rows.values())
        made = [
            Customer.objects.create(
                user_id=f"u{i}",
                email=email,
                phone=phone,
                device_tokens=[{"token": "t", "platform": "ios"}] if device else [],
            )
            for i, (email, phone, device) in enumerate(customers)
        ]
        stored = list(rows.values())

        sql, params = suppressed_sql(channel, sender=sender, account=account)
        expected = {c.pk for c in made if _suppressed(stored, c, channel, sender, account)}
        assert _matching_ids(sql, params) == expected

        if channel is not None and not sender and not account:
            # The reachable counts' joins (every sender and account), for all channels at once
            # as the preview counts: each customer once (a list, so duplicates would show).
            expected_reachable = sorted(
                c.pk
                for c in made
                if _has_address(c, channel) and not _suppressed(stored, c, channel, "", "")
            )
            joins, conditions = reach_joins_sql(CHANNELS)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT c.id FROM customers_customer c{joins}"  # noqa: S608
                    f" WHERE {conditions[channel]} ORDER BY c.id"
                )
                assert [row[0] for row in cursor.fetchall()] == expected_reachable

        # The check (entries_matching_q) agrees, contact by contact.
        for contact in EMAILS + PHONES:
            found = {e.pk for e in entries_suppressing(contact, channel, sender, account)}
            wanted = {e.pk for e in stored if _covers(e, contact, channel, sender, account)}
            assert found == wanted

        # The customer page's status agrees with the SQL for every channel.
        for customer in made:
            status = {c.channel: c for c in customer_dnc_status(customer).channels}
            for ch in CHANNELS:
                assert status[ch].suppressed == _suppressed(stored, customer, ch, "", "")
        transaction.set_rollback(True)


def _suppressed_customers(channel=Channel.EMAIL) -> set[str]:
    sql, params = suppressed_sql(channel)
    ids = _matching_ids(sql, params)
    return set(Customer.objects.filter(pk__in=ids).values_list("user_id", flat=True))


def test_entry_holds_for_a_customer_created_later(add):
    add("Jane@Example.com")
    CustomerFactory(user_id="jane", email="jane@example.com")
    assert _suppressed_customers() == {"jane"}


def test_entry_holds_for_a_customer_imported_later(add):
    add("+44 20 7946 0958", "sms")
    profile = profile_clean({"phone": "+442079460958"}, {})
    customers_upsert([UpsertItem("imported", profile)], Actor.system("import"))
    assert _suppressed_customers(Channel.SMS) == {"imported"}
    assert _suppressed_customers(Channel.WHATSAPP) == set()


def test_erasing_the_customer_keeps_the_entry(add):
    entry = add("jane@example.com", reason="Asked by phone")
    customer = CustomerFactory(user_id="jane", email="jane@example.com")
    customer_erase(customer=customer, actor=Actor.system("tests"))
    assert Entry.objects.filter(pk=entry.pk, reason="Asked by phone").exists()
    # The person comes back as a new profile: still suppressed.
    CustomerFactory(user_id="jane-again", email="jane@example.com")
    assert _suppressed_customers() == {"jane-again"}


def test_customer_status_lists_scoped_entries_without_suppressing(add):
    customer = CustomerFactory(email="ann@example.com", phone="+442079460958")
    add("ann@example.com")
    add("+442079460958", "sms", sender="acme")
    add("+442079460958", "")
    status = {c.channel: c for c in customer_dnc_status(customer).channels}
    assert status["email"].suppressed
    assert status["sms"].suppressed  # the all-channels entry
    assert [e.sender for e in status["sms"].entries] == ["", "acme"]
    assert status["viber"].suppressed and len(status["viber"].entries) == 1


def test_customer_status_scoped_only(add):
    customer = CustomerFactory(email="", phone="+442079460958")
    add("+442079460958", "viber", sender="acme")
    status = {c.channel: c for c in customer_dnc_status(customer).channels}
    assert status["viber"].scoped and not status["viber"].suppressed
    assert not status["sms"].entries and status["sms"].reachable
    assert not status["email"].reachable
    assert not status["push"].reachable  # no device token

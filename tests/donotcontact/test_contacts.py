"""Normalisation: every entry point goes through entry_clean, so these hold for all of them."""

from __future__ import annotations

import pytest

from donotcontact.contacts import ContactInvalid, entry_clean


@pytest.mark.parametrize(
    "typed",
    [
        "+44 20 7946 0958",
        "0044 20 7946 0958",
        "442079460958",
        "+44 (20) 7946-0958",
        "+44.20.7946.0958",
    ],
)
def test_phones_in_several_spellings_become_e164(typed):
    assert entry_clean(typed, "sms").contact == "+442079460958"


def test_emails_are_lower_cased_and_always_email():
    entry = entry_clean("  Jane.Doe@Example.COM ", "")
    assert (entry.contact, entry.channel) == ("jane.doe@example.com", "email")
    assert entry_clean("jane@example.com", "Email").channel == "email"


@pytest.mark.parametrize("channel", ["sms", "WhatsApp", "viber", "push"])
def test_an_email_with_another_channel_is_refused(channel):
    with pytest.raises(ContactInvalid, match="only be added for Email"):
        entry_clean("jane@example.com", channel)


def test_a_phone_with_the_email_channel_is_refused():
    with pytest.raises(ContactInvalid, match="can't be added for Email"):
        entry_clean("+442079460958", "email")


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("WhatsApp", "whatsapp"),
        ("SMS", "sms"),
        ("viber", "viber"),
        ("", ""),
        ("all", ""),
        ("*", ""),
    ],
)
def test_channel_labels_and_values_are_accepted(typed, stored):
    assert entry_clean("+442079460958", typed).channel == stored


@pytest.mark.parametrize(
    ("contact", "channel", "message"),
    [
        ("", "", "Enter an e-mail address"),
        ("not a contact", "", "neither an e-mail address nor a phone number"),
        ("12", "sms", "neither an e-mail address nor a phone number"),
        ("jane@", "", "not a valid e-mail"),
        ("+442079460958", "fax", "Unknown channel"),
    ],
)
def test_bad_input_says_why(contact, channel, message):
    with pytest.raises(ContactInvalid, match=message):
        entry_clean(contact, channel)


def test_sender_and_account_are_trimmed_and_limited():
    entry = entry_clean("+442079460958", "sms", "  Acme   Shop ", " eu ")
    assert (entry.sender, entry.account) == ("Acme Shop", "eu")
    with pytest.raises(ContactInvalid, match="sender is longer"):
        entry_clean("+442079460958", "sms", "x" * 101)
    with pytest.raises(ContactInvalid, match="account contains a NUL"):
        entry_clean("+442079460958", "sms", "", "a\x00b")

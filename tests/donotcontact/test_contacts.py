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


@pytest.mark.parametrize(
    "contact", ['"a\tb"@example.com', '"a\x01b"@example.com', '"a\x7fb"@example.com']
)
def test_a_contact_with_a_control_character_is_refused(contact):
    # A quoted local part may hold almost anything; a tab would break the import's COPY.
    with pytest.raises(ContactInvalid, match="control character"):
        entry_clean(contact)


@pytest.mark.parametrize("value", ["Sh\x01op", "\x01=HYPERLINK(1)", "a\x7f"])
def test_a_sender_or_account_with_a_control_character_is_refused(value):
    with pytest.raises(ContactInvalid, match="control character"):
        entry_clean("a@example.com", "", value)
    with pytest.raises(ContactInvalid, match="control character"):
        entry_clean("a@example.com", "", "", value)


def test_reason_and_note_refuse_control_characters_but_a_note_keeps_its_lines():
    from donotcontact.services import note_clean, reason_clean

    with pytest.raises(ContactInvalid, match="control character"):
        reason_clean("\x01=HYPERLINK(1)")
    with pytest.raises(ContactInvalid, match="control character"):
        note_clean("li\x1fne")
    assert reason_clean("one\ttwo") == "one two"
    assert note_clean("first\r\nsecond\tthird") == "first\r\nsecond\tthird"

"""What a Do Not Contact entry may hold: the contact normalised (an e-mail address lower-cased,
a phone number in E.164) and the channel checked against it. Every entry point (the screen, the
API, file imports) goes through ``entry_clean``, so they accept and refuse the same things."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from customers.profile import clean_email, clean_phone
from donotcontact.models import Channel

SENDER_MAX = 100
ACCOUNT_MAX = 100
_INTERNATIONAL_DIGITS = re.compile(r"(?:00)?([1-9]\d{6,16})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PHONE_PUNCTUATION = re.compile(r"[\s().\-/]")


class ContactInvalid(ValueError):
    """The value is not a usable contact, channel, sender or account; the message says why."""


def contact_clean(value: Any) -> str:
    """An e-mail address (lower-cased) or a phone number (E.164). Phone numbers are read in
    international format; "441234567890", "0044 1234 567890" and "+44 1234 567890" are the
    same number."""
    if not isinstance(value, str):
        raise ContactInvalid("Enter an e-mail address or a phone number.")
    value = value.strip()
    if not value:
        raise ContactInvalid("Enter an e-mail address or a phone number.")
    # A quoted local part may hold almost anything; a tab or newline would break the import's
    # COPY and no real address has one.
    if has_control(value):
        raise ContactInvalid("The contact contains a control character.")
    if "@" in value:
        try:
            return clean_email(value)
        except ValueError as exc:
            raise ContactInvalid(str(exc)) from None
    compact = _PHONE_PUNCTUATION.sub("", value)
    if match := _INTERNATIONAL_DIGITS.fullmatch(compact):
        compact = "+" + match.group(1)
    try:
        phone = clean_phone(compact)
    except ValueError:
        raise ContactInvalid(
            f"“{value}” is neither an e-mail address nor a phone number in international"
            " format (e.g. +441234567890)."
        ) from None
    return phone


def has_control(value: str) -> bool:
    return _CONTROL.search(value) is not None


def is_email(contact: str) -> bool:
    return "@" in contact


def channel_clean(value: Any, contact: str) -> str:
    """The channel for this contact: "" means every channel. An e-mail address can only be
    suppressed on Email (an empty channel becomes Email); a phone number on any other."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ContactInvalid("The channel must be text.")
    channel = value.strip().lower()
    if channel in ("all", "any", "*"):
        channel = ""
    if channel and channel not in Channel.values:
        # Accept the labels too ("WhatsApp", "SMS").
        by_label = {label.lower(): v for v, label in Channel.choices}
        if channel not in by_label:
            allowed = ", ".join(Channel.labels)
            raise ContactInvalid(f"Unknown channel “{value.strip()}”. Use one of: {allowed}.")
        channel = by_label[channel]
    if is_email(contact):
        if channel not in ("", Channel.EMAIL):
            raise ContactInvalid(
                f"An e-mail address can only be added for Email, not {Channel(channel).label}."
            )
        return Channel.EMAIL.value
    if channel == Channel.EMAIL:
        raise ContactInvalid("A phone number can't be added for Email; choose another channel.")
    return channel


def _label_clean(value: Any, what: str, max_length: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ContactInvalid(f"The {what} must be text.")
    value = " ".join(value.split())
    if "\x00" in value:
        raise ContactInvalid(f"The {what} contains a NUL character.")
    if has_control(value):
        raise ContactInvalid(f"The {what} contains a control character.")
    if len(value) > max_length:
        raise ContactInvalid(f"The {what} is longer than {max_length} characters.")
    return value


def sender_clean(value: Any) -> str:
    return _label_clean(value, "sender", SENDER_MAX)


def account_clean(value: Any) -> str:
    return _label_clean(value, "account", ACCOUNT_MAX)


@dataclass(frozen=True)
class CleanEntry:
    contact: str
    channel: str
    sender: str
    account: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.contact, self.channel, self.sender, self.account)


def entry_clean(contact: Any, channel: Any = "", sender: Any = "", account: Any = "") -> CleanEntry:
    """The four values that identify an entry, normalised; ContactInvalid says what is wrong."""
    clean_contact = contact_clean(contact)
    return CleanEntry(
        contact=clean_contact,
        channel=channel_clean(channel, clean_contact),
        sender=sender_clean(sender),
        account=account_clean(account),
    )

"""The Do Not Contact list: who must not be contacted, on which channel, by which sender and
from which sending account. An entry names the contact by value (an e-mail address or an E.164
phone number), not by customer, so it holds before a profile exists, when one is imported later
and after it is erased. The contact rules are in donotcontact/contacts.py; how entries suppress
customers (segments, exports, hand-overs) in donotcontact/suppression.py."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now
from django.utils.timezone import now


class Channel(models.TextChoices):
    # The stored value "" (no channel) means every channel; see ALL_CHANNELS_LABEL.
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    WHATSAPP = "whatsapp", "WhatsApp"
    VIBER = "viber", "Viber"
    RCS = "rcs", "RCS"
    VOICE = "voice", "Voice"
    PUSH = "push", "Push"


ALL_CHANNELS_LABEL = "All channels"


class Source(models.TextChoices):
    END_USER = "end_user", "Message from the end user"
    CAMPAIGN = "campaign", "Campaign action"
    URL_OPT_OUT = "url_opt_out", "URL opt-out"
    MANUAL = "manual", "Added manually"
    IMPORT = "import", "Import"
    API = "api", "API"


class Entry(models.Model):
    # Lower-cased e-mail address or E.164 phone number (donotcontact/contacts.py).
    contact = models.CharField(max_length=254)
    channel = models.CharField(max_length=16, blank=True, default="")  # "" = every channel
    sender = models.CharField(max_length=100, blank=True, default="")  # "" = every sender
    account = models.CharField(max_length=100, blank=True, default="")  # "" = every account
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    reason = models.CharField(max_length=200, blank=True, default="")
    note = models.TextField(blank=True, default="")
    added_at = models.DateTimeField(default=now, db_default=Now())
    added_by = models.ForeignKey(
        "members.Member", null=True, blank=True, on_delete=models.DB_SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "entries"
        constraints = [
            # Re-adding an identical entry is a no-op (INSERT ... ON CONFLICT DO NOTHING). The
            # index leads with the contact, so it also serves every check and the segment
            # conditions' EXISTS look-ups by a customer's e-mail or phone.
            models.UniqueConstraint(
                fields=["contact", "channel", "sender", "account"], name="dnc_entry_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(channel__in=["", *Channel.values]), name="dnc_entry_channel"
            ),
            models.CheckConstraint(
                condition=models.Q(source__in=Source.values), name="dnc_entry_source"
            ),
        ]
        indexes = [
            # The list's default order (newest first) and its keyset cursor.
            models.Index(fields=["-added_at", "-id"], name="dnc_entry_added_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.contact} ({self.channel or 'all channels'})"

    @property
    def channel_label(self) -> str:
        return Channel(self.channel).label if self.channel else ALL_CHANNELS_LABEL

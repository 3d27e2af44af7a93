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
            # An e-mail address is suppressed on Email only (contacts.channel_clean turns
            # "every channel" into Email): the reachable counts rely on it.
            models.CheckConstraint(
                condition=~models.Q(contact__contains="@") | models.Q(channel="email"),
                name="dnc_entry_email_for_email",
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


class SuppressedPhone(models.Model):
    """One row per phone number that entries for every sender and account suppress, with a
    bit per channel it is suppressed on (donotcontact.suppression.CHANNEL_BITS; an entry for
    every channel sets them all): derived from the entries and kept in step with them by
    triggers on ``donotcontact_entry`` (migration 0003), in the writer's own transaction,
    whoever writes. The reachable counts join customers' phone numbers to it, one look-up for
    six channels, instead of grouping the list in every query. E-mail addresses need no such
    table: they are only ever suppressed on Email (``dnc_entry_email_for_email``), so at most
    one entry per address applies to every sender and account. Never written by the app."""

    contact = models.CharField(max_length=254, primary_key=True)
    channels = models.SmallIntegerField()

    def __str__(self) -> str:
        return self.contact


class ImportStatus(models.TextChoices):
    DRAFT = "draft", "Draft"  # uploaded; choosing the start row and columns
    ANALYZING = "analyzing", "Analyzing"
    ANALYZED = "analyzed", "Analyzed"  # counts known; choosing accounts
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Importing"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


IMPORT_FINISHED = (ImportStatus.COMPLETED, ImportStatus.FAILED)


class EntryImport(models.Model):
    """A file of contacts imported into the Do Not Contact list, through the wizard: upload,
    start row and columns, analysis, accounts, import. The pipeline and its checkpoints are
    described in donotcontact/importing.py."""

    file_name = models.CharField(max_length=255)
    # The upload under settings.DNC_IMPORTS_DIR; removed once the import has finished.
    file_path = models.CharField(max_length=500, blank=True, default="")
    file_size = models.BigIntegerField(default=0)
    # How to read it (donotcontact.filereader.DataFile.as_options): kind, data_path (the file
    # taken out of a zip, or the upload), encoding, delimiter, inner_name, ignored files.
    file_info = models.JSONField(default=dict)
    start_row = models.PositiveIntegerField(default=1)  # 1-based; 2 skips a header row
    # Column index (0-based) of each target: {"contact": 0, "sender": 2, "channel": null}.
    mapping = models.JSONField(default=dict)
    accounts = models.JSONField(default=list)  # "" = every account; one entry per account

    status = models.CharField(max_length=12, choices=ImportStatus.choices, default="draft")
    message = models.TextField(blank=True, default="")  # why it failed

    # Analysis: counted over the rows from start_row on.
    rows_read = models.IntegerField(default=0)
    rows_estimate = models.IntegerField(default=0)
    total_rows = models.IntegerField(default=0)  # non-empty rows
    valid = models.IntegerField(default=0)
    invalid = models.IntegerField(default=0)
    duplicates = models.IntegerField(default=0)  # valid rows repeating an earlier row
    already_present = models.IntegerField(default=0)  # distinct entries already on the list
    unique_valid = models.IntegerField(default=0)
    # The first invalid rows: [[row number, value, reason], ...].
    problems = models.JSONField(default=list)

    # Import: the last staged row number whose entries are in, moved in the same transaction
    # as those entries, so a re-run resumes after it.
    applied_through = models.IntegerField(default=0)
    last_row = models.IntegerField(default=0)  # the highest staged row number
    added = models.IntegerField(default=0)
    present = models.IntegerField(default=0)  # entries (per account) that were already there

    created_by = models.ForeignKey(
        "members.Member", null=True, blank=True, on_delete=models.DB_SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=now)
    analyzed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.file_name

    @property
    def finished(self) -> bool:
        return self.status in IMPORT_FINISHED

    @property
    def working(self) -> bool:
        return self.status in (ImportStatus.ANALYZING, ImportStatus.QUEUED, ImportStatus.RUNNING)

    @property
    def progress(self) -> int:
        if self.status == ImportStatus.ANALYZING:
            return min(99, int(100 * self.rows_read / max(self.rows_estimate, 1)))
        if self.status in (ImportStatus.QUEUED, ImportStatus.RUNNING):
            span = max(self.last_row - self.start_row + 1, 1)
            return min(99, int(100 * max(self.applied_through - self.start_row + 1, 0) / span))
        return 100 if self.finished else 0

    @property
    def accounts_label(self) -> str:
        return ", ".join(a or "All accounts" for a in self.accounts) or "All accounts"


class EntryImportRow(models.Model):
    """A valid row of an import's file, normalised, waiting to be added. The table is
    UNLOGGED (migration 0002): it is rebuilt from the file if lost, and skipping the WAL makes
    staging a million rows cheap. Rows are deleted when the import finishes."""

    pk = models.CompositePrimaryKey("import_id", "row_no")
    import_id = models.BigIntegerField()
    row_no = models.IntegerField()
    contact = models.CharField(max_length=254)
    channel = models.CharField(max_length=16)
    sender = models.CharField(max_length=100)

    def __str__(self) -> str:
        return f"import {self.import_id} row {self.row_no}"

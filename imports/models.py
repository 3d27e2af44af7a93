"""CSV imports of customers: the import itself (file, mapping, options, status, progress and
counts), the file's rows as staged for the upsert, and what each import changed (for undo).

The pipeline is in imports/pipeline.py; its rules and checkpoints are described there.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.utils.timezone import now

from tags.models import Source

UNDO_WINDOW = timedelta(days=7)


class ImportStatus(models.TextChoices):
    DRAFT = "draft", "Draft"  # uploaded, still in the wizard
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors", "Completed with errors"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    UNDOING = "undoing", "Undoing"
    UNDONE = "undone", "Undone"


FINISHED = (
    ImportStatus.COMPLETED,
    ImportStatus.COMPLETED_WITH_ERRORS,
    ImportStatus.FAILED,
    ImportStatus.CANCELLED,
    ImportStatus.UNDONE,
)


class ImportPhase(models.TextChoices):
    STAGE = "stage", "Reading the file"
    APPLY = "apply", "Updating customers"
    DONE = "done", "Done"


class Import(models.Model):
    file_name = models.CharField(max_length=255)
    # The upload, under settings.IMPORTS_DIR; removed once the import has finished.
    file_path = models.CharField(max_length=255, blank=True, default="")
    file_size = models.BigIntegerField(default=0)
    encoding = models.CharField(max_length=16, blank=True, default="")
    delimiter = models.CharField(max_length=1, blank=True, default=",")
    headers = models.JSONField(default=list)
    # One target per column: "id", a standard field, "custom.<name>", "new.<type>" (a custom
    # field created from the header when the import starts) or "skip".
    mapping = models.JSONField(default=list)
    # {"tags": [names], "fill_empty": [targets only written where the customer has no value]}
    options = models.JSONField(default=dict)
    dry_run = models.BooleanField(default=False)

    status = models.CharField(
        max_length=24, choices=ImportStatus.choices, default=ImportStatus.DRAFT
    )
    phase = models.CharField(max_length=8, choices=ImportPhase.choices, default=ImportPhase.STAGE)
    message = models.TextField(blank=True, default="")  # why it failed, or a note
    cancel_requested = models.BooleanField(default=False)

    # Staging's checkpoint: the last file row staged, moved in the same transaction as the rows
    # it covers, so a re-run resumes exactly there. (Merged chunks are MergedChunk rows.)
    staged_through = models.IntegerField(default=1)  # row 1 is the header
    applied_through = models.IntegerField(default=0)  # rows of the merged chunks (progress)
    total_rows = models.IntegerField(default=0)  # data rows, known once staging is done
    rows_estimate = models.IntegerField(default=0)  # from the file size, for the progress bar
    rows_read = models.IntegerField(default=0)
    created = models.IntegerField(default=0)
    updated = models.IntegerField(default=0)
    unchanged = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    tagged = models.IntegerField(default=0)
    tag_ids = models.JSONField(default=list)  # resolved when the import starts

    source = models.CharField(max_length=8, choices=Source.choices, default=Source.UI)
    created_by = models.ForeignKey(
        "members.Member", null=True, blank=True, on_delete=models.DB_SET_NULL, related_name="+"
    )
    token = models.ForeignKey(
        "apitokens.ApiToken", null=True, blank=True, on_delete=models.DB_SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=now)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        "members.Member", null=True, blank=True, on_delete=models.DB_SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "queued_at"], name="import_status_idx")]

    def __str__(self) -> str:
        return self.file_name

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def processed(self) -> int:
        return self.created + self.updated + self.unchanged + self.failed

    @property
    def progress(self) -> int:
        """Percent done: reading the file is the first 40%, updating customers the rest."""
        if self.finished or self.phase == ImportPhase.DONE:
            return 100
        if self.phase == ImportPhase.STAGE:
            return min(39, int(40 * self.rows_read / max(self.rows_estimate, 1)))
        done = self.applied_through / max(self.total_rows + 1, 1)
        return 40 + min(59, int(60 * done))

    @property
    def duration(self) -> timedelta | None:
        if not self.started_at:
            return None
        return (self.finished_at or now()) - self.started_at

    @property
    def duration_label(self) -> str:
        seconds = int(self.duration.total_seconds()) if self.duration else 0
        if seconds < 60:
            return f"{seconds} s"
        minutes, seconds = divmod(seconds, 60)
        if minutes < 60:
            return f"{minutes} min {seconds} s"
        return f"{minutes // 60} h {minutes % 60} min"

    @property
    def undo_until(self) -> object:
        return (self.finished_at or self.created_at) + UNDO_WINDOW

    @property
    def can_undo(self) -> bool:
        return (
            not self.dry_run
            and self.status
            in (
                ImportStatus.COMPLETED,
                ImportStatus.COMPLETED_WITH_ERRORS,
                ImportStatus.CANCELLED,
            )
            and self.created + self.updated + self.tagged > 0
            and now() < self.undo_until
        )

    @property
    def can_cancel(self) -> bool:
        return self.status in (ImportStatus.DRAFT, ImportStatus.QUEUED, ImportStatus.RUNNING)


class StagedRow(models.Model):
    """One data row of an import's file, validated and typed. Rows with ``errors`` are never
    applied; they make the error report. ``superseded_by`` is a later row with the same user ID
    (the last row wins)."""

    pk = models.CompositePrimaryKey("import_id", "row_no")
    import_id = models.BigIntegerField()
    row_no = models.IntegerField()
    user_id = models.TextField()
    vals = models.JSONField(null=True)  # standard fields given in the row
    custom = models.JSONField(null=True)  # custom field values given in the row
    errors = models.JSONField(null=True)  # [[column, reason], ...]
    raw = models.JSONField(null=True)  # the original cells, kept for failed rows only
    superseded_by = models.IntegerField(null=True)
    digest = models.BigIntegerField(null=True)  # imports/digest.py, for rows that can have one
    # A row a customer's digest vouches for is staged unchecked: its cells, joined, instead of
    # vals and custom.
    cells = models.TextField(null=True)

    def __str__(self) -> str:
        return f"import {self.import_id} row {self.row_no}"


class MergedChunk(models.Model):
    """A chunk of staged rows (row numbers lo+1 … lo+size) merged into customers, written in
    the chunk's own transaction: chunks may commit in any order when merged in parallel, and a
    re-run skips exactly those present."""

    pk = models.CompositePrimaryKey("import_id", "lo")
    import_id = models.BigIntegerField()
    lo = models.IntegerField()

    def __str__(self) -> str:
        return f"import {self.import_id} chunk after row {self.lo}"


class ImportCreated(models.Model):
    """Customers an import created, one chunk's worth a row (a row per customer cost ~2.6 µs
    each in a million-row import): undo erases them. ``first_id`` is the smallest of them."""

    pk = models.CompositePrimaryKey("import_id", "first_id")
    import_id = models.BigIntegerField()
    first_id = models.BigIntegerField()
    ids = models.JSONField()  # [customer id, ...], ascending

    def __str__(self) -> str:
        return f"import {self.import_id}: {len(self.ids)} created from {self.first_id}"


class ImportChange(models.Model):
    """A customer an import changed (or, before ImportCreated, created): enough to undo it.
    ``changes`` maps each field the import changed to [value before, value written] (custom
    fields as "custom.<name>", null meaning no value)."""

    pk = models.CompositePrimaryKey("import_id", "customer_id")
    import_id = models.BigIntegerField()
    customer_id = models.BigIntegerField()
    created = models.BooleanField()
    changes = models.JSONField(null=True)

    def __str__(self) -> str:
        return f"import {self.import_id} customer {self.customer_id}"

"""An export built in the background: what it reads, how far it got, and where its file is."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now
from django.utils.timezone import now


class ExportSource(models.TextChoices):
    ALL = "all", "All customers"
    FILTER = "filter", "Customers matching a filter"
    SELECTION = "selection", "Selected customers"
    SEGMENT = "segment", "Segment members"


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    XLSX = "xlsx", "Excel (XLSX)"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"  # the file was removed (exports/services.py exports_expire)


class Export(models.Model):
    member = models.ForeignKey(
        "members.Member", null=True, blank=True, on_delete=models.DB_SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=now, db_default=Now())
    source = models.CharField(max_length=16, choices=ExportSource.choices)
    description = models.CharField(max_length=300)
    # What the job rebuilds its rows from: {"filter": "<query string>", "tz": "<IANA name>"},
    # {"ids": [...]} or {"segment": <id>} (see exports/sources.py).
    query = models.JSONField(default=dict)
    format = models.CharField(max_length=8, choices=ExportFormat.choices)
    columns = models.JSONField(default=list)  # column keys, in file order
    status = models.CharField(
        max_length=16, choices=ExportStatus.choices, default=ExportStatus.QUEUED
    )
    expected_rows = models.BigIntegerField(default=0)  # an estimate, for the progress bar
    progress = models.BigIntegerField(default=0)  # rows written so far
    row_count = models.BigIntegerField(null=True, blank=True)  # exact, once ready
    file_path = models.CharField(max_length=255, blank=True)  # relative to EXPORTS_DIR
    size = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["member", "-created_at"], name="export_member_idx"),
            models.Index(fields=["expires_at"], name="export_expires_idx"),
        ]

    def __str__(self) -> str:
        return f"Export {self.pk}: {self.description}"

    @property
    def percent(self) -> int:
        if self.status == ExportStatus.READY:
            return 100
        if not self.expected_rows:
            return 0
        return min(99, self.progress * 100 // self.expected_rows)

    @property
    def in_progress(self) -> bool:
        return self.status in (ExportStatus.QUEUED, ExportStatus.RUNNING)

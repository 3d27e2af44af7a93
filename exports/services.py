"""Exports: stream a small set at once, build a large one in the background, expire old files.

A set of at most EXPORTS_STREAM_MAX_ROWS rows (counted with a LIMIT, never a count of the whole
table) goes straight into the response. A larger one becomes an Export row and a
``build_export`` job that writes the file under EXPORTS_DIR; the member downloads it from the
Exports page for EXPORT_LIFETIME, after which a periodic job removes the file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from activity.services import Actor, activity_record
from customers.custom_fields import custom_field_specs
from customers.export import ExportColumn, columns_pick, csv_lines
from exports.models import Export, ExportFormat, ExportSource, ExportStatus
from exports.sources import (
    Source,
    source_columns,
    source_count_upto,
    source_estimate,
    source_rows,
)
from exports.writers import CONTENT_TYPES, write_export
from segments.models import Segment
from workbench import engines
from workbench.jobs import enqueue_on_commit

EXPORT_LIFETIME = timedelta(days=7)
PROGRESS_EVERY = 2000  # rows between two progress updates (one per read batch)
ERROR_MAX = 2000


def exports_dir() -> Path:
    return Path(getattr(settings, "EXPORTS_DIR", engines.VAR_DIR / "exports"))


def stream_max_rows() -> int:
    return int(getattr(settings, "EXPORTS_STREAM_MAX_ROWS", 10_000))


@dataclass(frozen=True)
class Streamed:
    """A response body ready to send: CSV lines, or a finished XLSX temporary file."""

    content: Iterator[str] | IO[bytes]
    content_type: str
    filename: str


@dataclass(frozen=True)
class Requested:
    streamed: Streamed | None = None
    export: Export | None = None


def _filename(source: Source, fmt: str) -> str:
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    if source.kind == ExportSource.SEGMENT:
        return f"segment-{source.query['segment']}-{stamp}.{fmt}"
    return f"customers-{stamp}.{fmt}"


def _columns(source: Source, keys: Iterable[str]) -> list[ExportColumn]:
    return columns_pick(keys, source_columns(source, custom_field_specs()))


def _record(actor: Actor, source: Source, fmt: str, count: int, approximate: bool) -> None:
    left_out = {"left_out_for": source.leave_out} if source.leave_out else {}
    if source.kind == ExportSource.SEGMENT:
        segment = Segment.objects.only("name").get(pk=source.query["segment"])
        activity_record(
            actor,
            "segment.exported",
            target_type="segment",
            target_id=segment.pk,
            target_label=segment.name,
            changes={"format": fmt, **left_out},
            count=count,
        )
    else:
        activity_record(
            actor,
            "customers.exported",
            target_type="customer",
            changes={"approximate": approximate, "format": fmt, **left_out},
            count=count,
        )


def export_request(*, actor: Actor, source: Source, fmt: str, column_keys: list[str]) -> Requested:
    """Export ``source``: streamed when small, otherwise queued as an Export for ``actor``."""
    limit = stream_max_rows()
    counted = source_count_upto(source, limit)
    if counted <= limit:
        _record(actor, source, fmt, counted, approximate=False)
        return Requested(streamed=export_stream(source, fmt, column_keys))
    expected, approximate = source_estimate(source)
    expected = max(expected, counted)
    _record(actor, source, fmt, expected, approximate)
    return Requested(
        export=export_create(
            actor=actor, source=source, fmt=fmt, column_keys=column_keys, expected=expected
        )
    )


def export_stream(source: Source, fmt: str, column_keys: list[str]) -> Streamed:
    columns = _columns(source, column_keys)
    header = [c.header for c in columns]
    rows = source_rows(source, columns)
    filename = _filename(source, fmt)
    if fmt == ExportFormat.XLSX:
        # A zip file cannot be streamed as it is written; a small one is built first (it is
        # deleted when the response closes it).
        fh = tempfile.TemporaryFile()  # noqa: SIM115 - the response closes it
        try:
            write_export(fmt, fh, header, rows)
        except BaseException:
            fh.close()
            raise
        fh.seek(0)
        return Streamed(fh, CONTENT_TYPES[ExportFormat.XLSX], filename)
    return Streamed(csv_lines(header, rows), CONTENT_TYPES[ExportFormat.CSV], filename)


def export_create(
    *, actor: Actor, source: Source, fmt: str, column_keys: list[str], expected: int = 0
) -> Export:
    from exports.tasks import build_export  # the tasks module imports this one

    columns = [c.key for c in _columns(source, column_keys)]
    with transaction.atomic():
        export = Export.objects.create(
            member=actor.member,
            source=source.kind,
            description=source.description,
            query=source.query,
            format=fmt,
            columns=columns,
            expected_rows=expected,
            expires_at=timezone.now() + EXPORT_LIFETIME,
        )
        enqueue_on_commit(build_export, export.pk)
    return export


class _Counter:
    """Counts the rows going through and stores the count on the export every so often, so
    the Exports page can show how far the build got."""

    def __init__(self, export_id: int) -> None:
        self.export_id = export_id
        self.rows = 0

    def wrap(self, rows: Iterable[list[str]]) -> Iterator[list[str]]:
        for row in rows:
            yield row
            self.rows += 1
            if self.rows % PROGRESS_EVERY == 0:
                Export.objects.filter(pk=self.export_id).update(progress=self.rows)


def _files_of(export_id: int) -> list[Path]:
    """The export's file and any temporary file a killed build left behind."""
    return list(exports_dir().glob(f"export-{export_id}.*"))


def export_build(export_id: int) -> str:
    """Write the export's file from scratch. Safe to run again: every run writes a new
    temporary file and renames it over the final name only once it is complete."""
    export = Export.objects.filter(pk=export_id).first()
    if export is None or export.status == ExportStatus.EXPIRED:
        return "gone"
    Export.objects.filter(pk=export_id).update(status=ExportStatus.RUNNING, progress=0, error="")
    source = Source(export.source, export.query, export.description)
    columns = _columns(source, export.columns)
    directory = exports_dir()
    directory.mkdir(parents=True, exist_ok=True)
    name = f"export-{export.pk}.{export.format}"
    counter = _Counter(export.pk)
    with tempfile.NamedTemporaryFile(
        dir=directory, prefix=f"{name}.", suffix=".part", delete=False
    ) as fh:
        part = Path(fh.name)
        try:
            rows = source_rows(source, columns)
            write_export(export.format, fh, [c.header for c in columns], counter.wrap(rows))
        except BaseException:
            fh.close()
            part.unlink(missing_ok=True)
            raise
    os.replace(part, directory / name)
    finished = timezone.now()
    Export.objects.filter(pk=export_id).update(
        status=ExportStatus.READY,
        progress=counter.rows,
        row_count=counter.rows,
        file_path=name,
        size=(directory / name).stat().st_size,
        finished_at=finished,
        expires_at=finished + EXPORT_LIFETIME,
    )
    return "ready"


def export_failed(export_id: int, exc: BaseException) -> None:
    Export.objects.filter(pk=export_id).update(
        status=ExportStatus.FAILED,
        error=(str(exc) or exc.__class__.__name__)[:ERROR_MAX],
        finished_at=timezone.now(),
    )


def exports_expire(now: datetime | None = None) -> int:
    """Remove the files of exports past their expiry; the rows stay, marked expired."""
    now = now or timezone.now()
    due = list(
        Export.objects.filter(expires_at__lte=now)
        .exclude(status=ExportStatus.EXPIRED)
        .values_list("pk", flat=True)
    )
    for export_id in due:
        for path in _files_of(export_id):
            path.unlink(missing_ok=True)
    Export.objects.filter(pk__in=due).update(status=ExportStatus.EXPIRED, file_path="", size=0)
    return len(due)

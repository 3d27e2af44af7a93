"""What the imports API answers."""

from __future__ import annotations

from datetime import datetime

from ninja import Schema


class ImportCounts(Schema):
    rows: int
    created: int
    updated: int
    unchanged: int
    failed: int
    tagged: int


class ImportOut(Schema):
    id: int
    file_name: str
    file_size: int
    status: str
    phase: str
    dry_run: bool
    progress: int
    counts: ImportCounts
    message: str
    headers: list[str]
    mapping: list[str]
    options: dict
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    undo_until: datetime | None
    errors_url: str | None


class ImportListOut(Schema):
    items: list[ImportOut]

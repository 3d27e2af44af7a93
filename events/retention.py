"""Dropping events older than the retention period, in small batches.

Each batch is its own short transaction deleting at most BATCH rows of one event name found
through the (type, time) index, so the job never holds long locks, never bloats one huge
transaction, and a killed run simply resumes where the data says it stopped. Beyond ~100M
events, monthly partitions make this a DROP TABLE per month (see README "Events at scale").
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from events.catalog import catalog_recount
from events.models import EventType

BATCH = 10_000
# pg_try_advisory_lock key: one maintenance run at a time across workers.
_LOCK_KEY = 0x6576_656E_7473  # "events"


def events_drop_expired(*, days: int, now: datetime | None = None, batch: int = BATCH) -> int:
    """Delete events that occurred more than ``days`` days ago; returns how many."""
    if days <= 0:
        raise ValueError("days must be positive")
    cutoff = (now or timezone.now()) - timedelta(days=days)
    dropped = 0
    for type_id in EventType.objects.order_by("pk").values_list("pk", flat=True):
        while True:
            with connection.cursor() as cursor:
                cursor.execute(
                    "DELETE FROM events_event WHERE id IN ("
                    " SELECT id FROM events_event"
                    " WHERE event_type_id = %s AND occurred_at < %s LIMIT %s)",
                    [type_id, cutoff, batch],
                )
                deleted = cursor.rowcount
            dropped += deleted
            if deleted < batch:
                break
    return dropped


def events_maintain(*, retention_days: int, now: datetime | None = None) -> dict[str, int]:
    """The daily job: apply retention (when set), then correct the catalog's counts, which
    retention and erasures change without touching the catalog. Skips when another run holds
    the lock."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_LOCK_KEY])
        if not cursor.fetchone()[0]:
            return {"skipped": 1}
        try:
            dropped = events_drop_expired(days=retention_days, now=now) if retention_days else 0
            return {"dropped": dropped, "catalog_updated": catalog_recount()}
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])

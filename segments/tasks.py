"""Segment jobs: thin actors over segments/membership.py, incremental.py and indexes.py.
Each is safe to run twice."""

from __future__ import annotations

import logging

import dramatiq
from django.conf import settings
from dramatiq_crontab import cron

from segments import incremental, indexes, membership, sweep

log = logging.getLogger(__name__)


@dramatiq.actor(queue_name=settings.QUEUE_LONG, max_retries=5, time_limit=3_600_000)
def build_segment(segment_id: int, revision: int) -> None:
    """Build a segment after a rules change; a newer revision makes this one stop early."""
    try:
        result = membership.segment_build(segment_id, revision)
    except Exception as exc:
        membership.segment_failed(segment_id, revision, exc)
        raise
    log.info("segment %s build: %s", segment_id, result.status)


@cron("* * * * *")  # a safety net: every mark sends its own drain message
@dramatiq.actor(queue_name=settings.QUEUE_SHORT, max_retries=10, time_limit=600_000)
def evaluate_pending() -> None:
    """Drain the queue of changed customers (segments/incremental.py)."""
    incremental.pending_drain()


@cron(settings.SEGMENTS_SWEEP_CRON)
@dramatiq.actor(queue_name=settings.QUEUE_LONG, max_retries=3, time_limit=3_600_000)
def sweep_segments() -> None:
    """Periodic: rebuild time-based and never-built segments."""
    log.info("segment sweep: %s", sweep.segments_sweep())


@dramatiq.actor(queue_name=settings.QUEUE_LONG, max_retries=3, time_limit=6 * 3_600_000)
def ensure_segment_indexes() -> None:
    """Create the expression indexes segments need, drop the ones none needs any more."""
    log.info("segment indexes: %s", indexes.indexes_sync())

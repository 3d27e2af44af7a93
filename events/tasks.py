from __future__ import annotations

import logging

import dramatiq
from django.conf import settings
from dramatiq_crontab import cron

from events.retention import events_maintain

log = logging.getLogger(__name__)


@cron("17 3 * * *")  # daily, at a quiet hour
@dramatiq.actor(queue_name=settings.QUEUE_LONG, max_retries=3, time_limit=6 * 3_600_000)
def maintain_events() -> None:
    """Daily: retention, then catalog recount. Safe to run twice."""
    log.info(
        "events maintenance: %s", events_maintain(retention_days=settings.EVENTS_RETENTION_DAYS)
    )

"""Export jobs: thin actors over exports/services.py. Each is safe to run twice."""

from __future__ import annotations

import logging

import dramatiq
from django.conf import settings
from dramatiq_crontab import cron

from exports import services
from exports.sources import SourceGone

log = logging.getLogger(__name__)


@dramatiq.actor(queue_name=settings.QUEUE_LONG, max_retries=3, time_limit=4 * 3_600_000)
def build_export(export_id: int) -> None:
    """Write an export's file (from scratch on every run, renamed into place at the end)."""
    try:
        result = services.export_build(export_id)
    except SourceGone as exc:
        services.export_failed(export_id, exc)  # nothing to retry: the segment is gone
        return
    except Exception as exc:
        services.export_failed(export_id, exc)
        raise
    log.info("export %s: %s", export_id, result)


@cron("23 * * * *")
@dramatiq.actor(queue_name=settings.QUEUE_SHORT, max_retries=3, time_limit=600_000)
def expire_exports() -> None:
    """Periodic: remove export files past their expiry (seven days after they were built)."""
    log.info("expired exports: %s", services.exports_expire())

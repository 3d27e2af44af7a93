"""Do Not Contact import jobs: thin actors over donotcontact/importing.py. Both are safe to run
twice: analysis starts over, the import resumes from its checkpoint."""

from __future__ import annotations

import logging

import dramatiq
from django.conf import settings
from dramatiq_crontab import cron

from donotcontact import importing

log = logging.getLogger(__name__)
ANALYZE_TIME_LIMIT_MS = 3_600_000
ANALYZE_MAX_RETRIES = 3
# The longest an analysis can run: every attempt at the time limit (plus retry back-off).
ANALYZE_MAX_SECONDS = (ANALYZE_MAX_RETRIES + 1) * ANALYZE_TIME_LIMIT_MS // 1000 + 3600


@dramatiq.actor(
    queue_name=settings.QUEUE_LONG,
    max_retries=ANALYZE_MAX_RETRIES,
    time_limit=ANALYZE_TIME_LIMIT_MS,
)
def analyze_entry_import(import_id: int) -> None:
    try:
        importing.import_analyze(import_id)
    except Exception as exc:
        if _last_retry():
            importing.import_error(import_id, exc)
        raise


@dramatiq.actor(queue_name=settings.QUEUE_LONG, max_retries=3, time_limit=3_600_000)
def run_entry_import(import_id: int) -> None:
    try:
        imp = importing.import_run(import_id)
    except Exception as exc:
        if _last_retry():
            importing.import_error(import_id, exc)
        raise
    if imp is not None:
        log.info("dnc import %s: %s, %s added", import_id, imp.status, imp.added)


def _last_retry() -> bool:
    message = dramatiq.middleware.CurrentMessage.get_current_message()
    if message is None:  # called directly (tests, a shell)
        return True
    return message.options.get("retries", 0) >= 3


@cron("17 * * * *")
@dramatiq.actor(queue_name=settings.QUEUE_SHORT, max_retries=3, time_limit=600_000)
def sweep_entry_imports() -> None:
    """Hourly: free the files and staged rows of imports abandoned in the wizard."""
    swept = importing.entry_imports_sweep()
    if swept:
        log.info("dnc import sweep: %s abandoned", swept)

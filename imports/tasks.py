"""Import jobs: thin actors over imports/pipeline.py, undo.py and services.py. Each is safe to
run twice (checkpoints and a runner lock per import)."""

from __future__ import annotations

import logging

import dramatiq
from django.conf import settings
from dramatiq_crontab import cron

from imports import pipeline, services, undo

log = logging.getLogger(__name__)


@dramatiq.actor(queue_name=settings.QUEUE_LONG, max_retries=3, time_limit=6 * 3_600_000)
def run_import(import_id: int) -> None:
    """Run or resume an import; it waits as queued when every slot is taken."""
    try:
        imp = pipeline.import_run(import_id)
    except Exception as exc:
        pipeline.import_error(import_id, exc)
        raise
    if imp is not None:
        log.info("import %s: %s", import_id, imp.status)


@dramatiq.actor(queue_name=settings.QUEUE_LONG, max_retries=3, time_limit=6 * 3_600_000)
def undo_import(import_id: int) -> None:
    undo.import_undo_run(import_id)


@cron("* * * * *")
@dramatiq.actor(queue_name=settings.QUEUE_SHORT, max_retries=3, time_limit=600_000)
def sweep_imports() -> None:
    """Periodic: resume or fail imports whose worker stopped; start queued ones."""
    result = services.imports_sweep()
    if any(result.values()):
        log.info("import sweep: %s", result)

"""Periodic jobs. `manage.py runscheduler` (started by `make run`) calls ``enqueue_due`` every
few seconds; a job is enqueued when its Redis key (SET NX with the job's interval as expiry)
could be set, so any number of schedulers together enqueue each job once per interval and a
restarted scheduler does not run a job early. The jobs themselves are ordinary Dramatiq
actors, safe to run twice."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache


@dataclass(frozen=True)
class Periodic:
    name: str
    actor: str  # "module.actor"
    every_seconds: int


PERIODIC: list[Periodic] = [
    Periodic("maintain_events", "events.tasks.maintain_events", 24 * 3600),
    Periodic("sweep_segments", "segments.tasks.sweep_segments", settings.SEGMENTS_SWEEP_SECONDS),
    # A safety net: marks normally send their own drain message.
    Periodic("evaluate_pending", "segments.tasks.evaluate_pending", 60),
]


def enqueue_due(jobs: list[Periodic] = PERIODIC) -> list[str]:
    """Enqueue the jobs whose interval has passed; returns their names."""
    sent = []
    for job in jobs:
        if cache.add(f"schedule:{job.name}", 1, timeout=job.every_seconds):
            module, _, name = job.actor.rpartition(".")
            getattr(importlib.import_module(module), name).send()
            sent.append(job.name)
    return sent

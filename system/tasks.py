from __future__ import annotations

import os
import socket

import dramatiq
from django.conf import settings

from system import services

# One actor per queue: a Dramatiq actor is bound to one queue, and the check proves that
# workers consume each of them.


def _this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dramatiq.actor(queue_name=settings.QUEUE_SHORT, max_retries=3, time_limit=30_000)
def complete_worker_check(check_id: int) -> None:
    services.worker_check_complete(check_id=check_id, worker=_this_worker())


@dramatiq.actor(queue_name=settings.QUEUE_LONG, max_retries=3, time_limit=30_000)
def complete_worker_check_long(check_id: int) -> None:
    services.worker_check_complete(check_id=check_id, worker=_this_worker())

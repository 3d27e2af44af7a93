"""The one way to enqueue background work: after the surrounding transaction commits.

A job enqueued inside a transaction that later rolls back would run against rows that never
existed; a job enqueued before commit could run before its rows are visible. on_commit avoids both.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from django.db import transaction


def enqueue_on_commit(actor: dramatiq.Actor, *args: Any, **kwargs: Any) -> None:
    transaction.on_commit(lambda: actor.send(*args, **kwargs), robust=False)

"""Running code in several threads at once, each on its own database connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection, connections


def race(*jobs: Callable[[], Any]) -> list:
    """Run each job in its own thread (its own connection, opened first so the threads really
    overlap), released together; returns each job's result or the exception it raised."""
    barrier = threading.Barrier(len(jobs))
    outcomes: list = [None] * len(jobs)

    def run(i: int) -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=30)
            outcomes[i] = jobs[i]()
        except Exception as exc:  # reported by the test, not lost in the thread
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    connections.close_all()
    return outcomes


def wait_for_blocked_advisory_lock(timeout: float = 30) -> None:
    """Wait until some other connection waits for an advisory lock (it is queued behind one
    this test holds in another thread)."""
    wait_for_blocked_lock("advisory", timeout)


def wait_for_blocked_lock(locktype: str | None = None, timeout: float = 30) -> None:
    """Wait until some other connection waits for a lock (of ``locktype``, or of any type:
    a row lock shows as a wait for the holder's transaction)."""
    import time

    deadline = time.monotonic() + timeout
    with connections["default"].cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT 1 FROM pg_locks WHERE NOT granted AND (%s::text IS NULL OR locktype = %s)",
                [locktype, locktype],
            )
            if cursor.fetchone():
                return
            time.sleep(0.01)
    raise AssertionError(f"nobody waited for a lock ({locktype or 'any type'})")

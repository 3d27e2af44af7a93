"""The gate between erasure and the writers of events.

Events keep no key constraint on the customer. The constraint's check ran once per event at
commit (an index look-up and a row lock each: ~17 ms of a 1,000-event batch, and each
segment-entered/exited event of an evaluation paid it too). Instead, every transaction that
writes events for customers holds this gate shared, from before it reads the customers'
ids until it commits; an erasure holds it exclusively while it deletes the rows and their
events. So a writer either commits before an erasure starts (the erasure then deletes what it
wrote) or starts after the erasure committed (and no longer finds the customer).

One lock a transaction, whatever its size. Erasures queue behind the writers in flight and
hold them up for as long as an erasure transaction takes.
"""

from __future__ import annotations

GATE = (5110, 0)  # pg_advisory_xact_lock(namespace, key)


def events_writer_enter(cursor) -> None:
    """Hold the gate shared until the end of the caller's transaction (take it first)."""
    cursor.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", list(GATE))


def erasure_enter(cursor) -> None:
    """Hold the gate exclusively until the end of the caller's transaction (take it first)."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", list(GATE))

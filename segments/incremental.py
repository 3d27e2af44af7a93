"""Incremental evaluation: a customer changed through the UI, the API, an import, a tag or an
event is re-evaluated against the segments that can be affected, within seconds, in batches.

Writers call ``pending_mark`` inside their own transaction: the customer ids go into
``segments_pendingcustomer`` (durable, and rolled back with the write that caused them), and
after commit one ``evaluate_pending`` message is sent unless one is already waiting. The
drain takes the oldest rows in batches, evaluates them against the affected segments in
dependency order (one transaction per segment), then deletes only rows not marked again
meanwhile. A drain killed half-way leaves its rows behind and the next one repeats the
(idempotent) diffs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from graphlib import CycleError, TopologicalSorter
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction

from segments.fields import ChangeKind
from segments.membership import Changes, segments_evaluate
from segments.models import Segment
from workbench.bound_cursor import bound_cursor

DRAIN_BATCH = 1000
DRAIN_QUEUED_KEY = "segments:drain-queued"


def dependency_order(segments: Iterable[Segment]) -> list[Segment]:
    """Segments before the segments that read them ("in segment")."""
    by_id = {s.pk: s for s in segments}
    graph = {s.pk: [d for d in s.depends_on if d in by_id] for s in by_id.values()}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError:  # refused on save; never trust it blindly
        order = sorted(by_id)
    return [by_id[pk] for pk in order]


def _trigger() -> None:
    from segments.tasks import evaluate_pending

    if cache.add(DRAIN_QUEUED_KEY, 1, timeout=60):
        evaluate_pending.send()


def pending_mark(customer_ids: Sequence[int], kinds: int | Sequence[int]) -> None:
    """Queue customers for re-evaluation, in the caller's transaction (or autocommit).
    ``kinds``: ChangeKind bits for all of them, or one value per customer."""
    if not customer_ids:
        return
    per_customer = [kinds] * len(customer_ids) if isinstance(kinds, int) else list(kinds)
    pending_mark_selected(  # the ids in binary: ingestion marks 1,000 a batch
        "SELECT id, bit_or(k) AS k FROM unnest(%b::bigint[], %b::int[]) AS x(id, k) GROUP BY id",
        [list(customer_ids), per_customer],
        binary=True,
    )


def pending_mark_sql(select_sql: str, *, fresh: bool = False) -> str:
    """The statement that queues the customers ``select_sql`` selects, as (id, k) rows of
    distinct ids with their ChangeKind bits; usable as a data-modifying CTE of a writer's own
    statement (it returns one row a customer queued). Rows go in in id order, so two writers
    marking overlapping sets lock them in the same order. One sequence number for the whole
    statement (nextval a row cost ~2.7 µs): the drain only needs a later mark of a customer to
    carry a larger number than the one it read. A caller running it itself calls
    ``pending_marked`` when it queued anyone. ``fresh``: customers created by the same
    statement, which no one can have queued yet (no conflict check; a conflict is an error)."""
    on_conflict = (
        ""
        if fresh
        else "ON CONFLICT (customer_id) DO UPDATE"
        " SET kinds = segments_pendingcustomer.kinds | EXCLUDED.kinds, seq = EXCLUDED.seq"
    )
    return f"""
        INSERT INTO segments_pendingcustomer (customer_id, kinds, seq, marked_at)
        SELECT id, k, (SELECT nextval('segments_pending_seq')), now()
        FROM ({select_sql}) ids ORDER BY id
        {on_conflict}
        RETURNING 1
    """  # noqa: S608 - select_sql is the callers' own SQL; values are parameters


def pending_marked() -> None:
    """After the caller's transaction commits, make sure a drain is on its way."""
    transaction.on_commit(_trigger)


def pending_mark_selected(select_sql: str, params: Sequence[Any], *, binary: bool = False) -> int:
    """Queue the customers a query selects (see ``pending_mark_sql``); returns how many.
    ``binary``: ``select_sql`` takes its parameters as ``%b``, through a ``bound_cursor``."""
    with bound_cursor() if binary else connection.cursor() as cursor:
        cursor.execute(pending_mark_sql(select_sql), list(params))
        marked = cursor.rowcount
    if marked:
        pending_marked()
    return marked


def affected_segments(kinds: int) -> list[Segment]:
    segments = Segment.objects.only("id", "name", "rules", "timezone", "depends_on", "change_kinds")
    if kinds & ChangeKind.CREATED:
        return list(segments)
    return [s for s in segments if s.change_kinds & (kinds | ChangeKind.MEMBERSHIP)]


def customers_evaluate(
    customer_ids: Sequence[int], kinds: int, *, now: datetime | None = None
) -> dict[int, Changes]:
    """Re-evaluate customers against every segment their change can affect; a segment whose
    membership changed makes the segments that read it re-evaluate those customers too."""
    segments = dependency_order(affected_segments(kinds))

    def skip(segment: Segment, changed: dict[int, Changes]) -> bool:
        reads_changed = any(d in changed for d in segment.depends_on)
        return not segment.change_kinds & kinds and not reads_changed

    return segments_evaluate(segments, customer_ids, now=now, skip=skip)


def pending_drain(*, batch: int = DRAIN_BATCH, max_batches: int | None = None) -> int:
    """Evaluate queued customers until the queue is empty; returns how many were done."""
    cache.delete(DRAIN_QUEUED_KEY)  # marks from now on send a new message
    done = batches = 0
    while max_batches is None or batches < max_batches:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT customer_id, kinds, seq FROM segments_pendingcustomer"
                " ORDER BY seq LIMIT %s",
                [batch],
            )
            rows = cursor.fetchall()
        if not rows:
            break
        kinds = 0
        for _, row_kinds, _ in rows:
            kinds |= row_kinds
        customers_evaluate([r[0] for r in rows], kinds)
        with connection.cursor() as cursor:
            pairs = sorted((r[0], r[2]) for r in rows)
            cursor.execute(
                "DELETE FROM segments_pendingcustomer p"
                " USING unnest(%s::bigint[], %s::bigint[]) AS d(id, seq)"
                " WHERE p.customer_id = d.id AND p.seq = d.seq",
                [[p[0] for p in pairs], [p[1] for p in pairs]],
            )
        done += len(rows)
        batches += 1
    return done

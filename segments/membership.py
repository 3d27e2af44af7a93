"""Stored membership: the diff that applies a segment's rules to a scope of customers, with
its transitions and timeline events written in the same transaction, the full (chunked,
resumable) build, and the member count and size history.

Each diff runs under the segment's advisory lock, so a customer's membership of a segment is
changed by one transaction at a time: they enter (a new membership row) or exit (a deleted
row) exactly once, and a transition is recorded only for a row actually inserted or deleted.
The ranges of one build hold the lock shared with each other (their customers are disjoint),
every other writer holds it alone.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from customers.erasure_gate import events_writer_enter
from events.catalog import event_types_ensure
from segments.compiler import PerCustomer, Sql, compile_rules
from segments.fields import ChangeKind
from segments.models import Segment, SegmentSize, SegmentStatus
from segments.query import Lookups, compile_context, set_work_mem
from webhooks.relay import relay_wake
from workbench.bound_cursor import bound_cursor

LOCK_NAMESPACE = 5105  # pg_advisory_xact_lock(namespace, segment id): one diff at a time
BUILD_LOCK_NAMESPACE = 5106  # pg_advisory_lock(namespace, segment id): one full build at a time
BUILD_CHUNK = 250_000
ANALYZE_AFTER = 10_000  # membership rows changed by one build
SYSTEM_EVENT_PROPERTIES = {"segment_id": "number", "segment_name": "string"}


@dataclass
class Changes:
    entered: list[int] = field(default_factory=list)
    exited: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.entered or self.exited)

    def add(self, other: Changes) -> None:
        self.entered += other.entered
        self.exited += other.exited

    @property
    def customer_ids(self) -> list[int]:
        return [*self.entered, *self.exited]


def system_event_ids() -> tuple[int, int]:
    """The catalog ids of segment-entered / segment-exited (seeded by a migration; recreated
    if someone emptied the table)."""
    with connection.cursor() as cursor:
        ids = event_types_ensure(cursor, ["segment-entered", "segment-exited"])
    return ids["segment-entered"], ids["segment-exited"]


# The diff over one scope. %(scope_c)s / %(scope_m)s narrow customers and memberships alike.
_DIFF_SQL = """
WITH want AS MATERIALIZED (
    SELECT c.id FROM customers_customer c WHERE {scope_c} AND {rules}
),
gone AS (
    DELETE FROM segments_membership m
    WHERE m.segment_id = %s AND {scope_m}
      AND NOT EXISTS (SELECT 1 FROM want w WHERE w.id = m.customer_id)
    RETURNING m.customer_id
),
came AS (
    INSERT INTO segments_membership (segment_id, customer_id, entered_at)
    SELECT %s, w.id, %s FROM want w
    WHERE NOT EXISTS (
        SELECT 1 FROM segments_membership m WHERE m.segment_id = %s AND m.customer_id = w.id
    )
    ON CONFLICT DO NOTHING
    RETURNING customer_id
),
changes AS (
    SELECT customer_id, TRUE AS entered FROM came
    UNION ALL SELECT customer_id, FALSE FROM gone
),
timeline AS (
    INSERT INTO events_event (customer_id, event_type_id, occurred_at, received_at, properties,
                              context)
    SELECT ch.customer_id, CASE WHEN ch.entered THEN %s ELSE %s END, %s, %s, %s::jsonb, '{{}}'
    FROM changes ch
    RETURNING id, customer_id, event_type_id
)
INSERT INTO segments_transition (segment_id, segment_name, customer_id, user_id, kind,
                                 occurred_at, event_id)
SELECT %s, %s, t.customer_id,
       (SELECT c.user_id FROM customers_customer c WHERE c.id = t.customer_id),
       CASE WHEN t.event_type_id = %s THEN 'entered' ELSE 'exited' END, %s, t.id
FROM timeline t
RETURNING customer_id, kind
"""


def _diff(
    cursor,
    segment: Segment,
    rules: Sql,
    scope_c: tuple[str, list],
    scope_m: tuple[str, list],
    now: datetime,
    system_ids: tuple[int, int],
) -> Changes:
    """Apply the compiled rules to one scope, inside the caller's transaction and lock."""
    entered_id, exited_id = system_ids
    payload = json.dumps({"segment_id": segment.pk, "segment_name": segment.name})
    sql = _DIFF_SQL.format(scope_c=scope_c[0], scope_m=scope_m[0], rules=rules.sql)
    params = [
        *scope_c[1],
        *rules.params,
        segment.pk,
        *scope_m[1],
        segment.pk,
        now,
        segment.pk,
        entered_id,
        exited_id,
        now,
        now,
        payload,
        segment.pk,
        segment.name,
        entered_id,
        now,
    ]
    cursor.execute(sql, params)
    changes = Changes()
    for customer_id, kind in cursor.fetchall():
        (changes.entered if kind == "entered" else changes.exited).append(customer_id)
    return changes


def catalog_add(cursor, entered: int, exited: int, now: datetime, system_ids) -> None:
    """Count the segment-entered/exited events just written. The catalog rows are locked
    last (after every segment lock of the transaction), in id order, until commit."""
    if entered or exited:
        transaction.on_commit(relay_wake)  # webhooks deliver the transitions just written
    for type_id, n in sorted(zip(system_ids, (entered, exited), strict=True)):
        if n:
            cursor.execute(
                "UPDATE events_eventtype SET event_count = event_count + %s,"
                " first_seen = LEAST(first_seen, %s), last_seen = GREATEST(last_seen, %s),"
                " properties = %s::jsonb || properties WHERE id = %s",
                [n, now, now, json.dumps(SYSTEM_EVENT_PROPERTIES), type_id],
            )


def lock_segment(cursor, segment_id: int, *, shared: bool = False) -> None:
    """The segment's transaction lock: one diff per segment at a time. A full build's id
    ranges are disjoint, so its chunks share the lock with each other (``shared``) and still
    exclude every other writer of the segment's membership."""
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    cursor.execute(f"SELECT {function}(%s, %s)", [LOCK_NAMESPACE, segment_id])


def lock_segments(cursor, segment_ids: Sequence[int]) -> set[int]:
    """``lock_segment`` for several segments, in id order (so two callers cannot deadlock),
    then each one's row, as a foreign key check would (memberships have no key constraint on
    the segment): a segment cannot be deleted until this transaction ends. Returns the ids of
    the segments that still exist."""
    cursor.execute(
        "SELECT count(pg_advisory_xact_lock(%s, id))"
        " FROM (SELECT DISTINCT unnest(%s::int[]) AS id ORDER BY 1) ids",
        [LOCK_NAMESPACE, list(segment_ids)],
    )
    return set(hold_segments(cursor, segment_ids))


def hold_segments(cursor, segment_ids: Sequence[int]) -> dict[int, int]:
    """Lock the segments' rows as a foreign key check would (FOR KEY SHARE): none of them can
    be deleted before this transaction ends. Returns id → revision of those that exist."""
    cursor.execute(
        "SELECT id, revision FROM segments_segment WHERE id = ANY(%s) ORDER BY id FOR KEY SHARE",
        [list(segment_ids)],
    )
    return dict(cursor.fetchall())


# Writes a batch of (segment, customer) enters and exits with their timeline events and
# transitions, in one statement; the caller holds the segments' locks. The customers' user IDs
# come with the batch (the evaluation read them), not from a look-up per transition.
_CHANGES_SQL = """
WITH gone AS (
    DELETE FROM segments_membership m USING unnest(%b::bigint[], %b::bigint[]) AS x(s, c)
    WHERE m.segment_id = x.s AND m.customer_id = x.c
    RETURNING m.segment_id, m.customer_id
),
came AS (
    INSERT INTO segments_membership (segment_id, customer_id, entered_at)
    SELECT x.s, x.c, %b::timestamptz FROM unnest(%b::bigint[], %b::bigint[]) AS x(s, c)
    ON CONFLICT DO NOTHING
    RETURNING segment_id, customer_id
),
changes AS (
    SELECT segment_id, customer_id, TRUE AS entered FROM came
    UNION ALL SELECT segment_id, customer_id, FALSE FROM gone
),
timeline AS (
    INSERT INTO events_event (customer_id, event_type_id, occurred_at, received_at, properties,
                              context)
    SELECT ch.customer_id, CASE WHEN ch.entered THEN %b::bigint ELSE %b::bigint END,
           %b::timestamptz, %b::timestamptz,
           jsonb_build_object('segment_id', s.id, 'segment_name', s.name), '{}'
    FROM changes ch JOIN segments_segment s ON s.id = ch.segment_id
    RETURNING id, customer_id, event_type_id, properties
)
INSERT INTO segments_transition (segment_id, segment_name, customer_id, user_id, kind,
                                 occurred_at, event_id)
SELECT (t.properties->>'segment_id')::bigint, t.properties->>'segment_name', t.customer_id,
       u.user_id, CASE WHEN t.event_type_id = %b::bigint THEN 'entered' ELSE 'exited' END,
       %b::timestamptz, t.id
FROM timeline t LEFT JOIN unnest(%b::bigint[], %b::text[]) AS u(id, user_id) ON u.id = t.customer_id
RETURNING segment_id, customer_id, kind
"""


def _evaluate_wave(
    cursor,
    wave: list[Segment],
    ids: list[int],
    now: datetime,
    lookups: Lookups,
    system_ids: tuple[int, int],
) -> dict[int, Changes]:
    """Segments none of which reads another: one query over the customers gives every rule as
    a column and the customers' current memberships of these segments (the rules' event, tag
    and membership counts and those memberships in one pass per table, compiler.PerCustomer),
    then one statement writes all the changes."""
    per_customer = PerCustomer()
    columns, params = [], []
    for segment in wave:
        ctx = compile_context(
            segment.rules,
            segment.timezone,
            now=now,
            candidates=ids,
            lookups=lookups,
            per_customer=per_customer,
        )
        rules = compile_rules(segment.rules, ctx)
        columns.append(f"COALESCE({rules.sql}, FALSE)")
        params += rules.params
    members = per_customer.column(
        "memberships",
        Sql(
            "COALESCE(array_agg(m.segment_id) FILTER (WHERE m.segment_id = ANY(%s)), '{}')",
            [[s.pk for s in wave]],
        ),
    )
    joins = per_customer.joins()
    cursor.execute(
        f"SELECT c.id, c.user_id, {members}, {', '.join(columns)}"
        f" FROM customers_customer c{joins.sql} WHERE c.id = ANY(%s)",
        [*params, *joins.params, ids],
    )
    want: dict[int, set[int]] = {s.pk: set() for s in wave}
    have: dict[int, set[int]] = {s.pk: set() for s in wave}
    user_ids: dict[int, str] = {}
    for customer_id, user_id, segment_ids, *hits in cursor.fetchall():
        user_ids[customer_id] = user_id
        for segment, hit in zip(wave, hits, strict=True):
            if hit:
                want[segment.pk].add(customer_id)
        for segment_id in segment_ids:
            have[segment_id].add(customer_id)
    came = sorted((pk, c) for pk in want for c in want[pk] - have[pk])
    gone = sorted((pk, c) for pk in want for c in have[pk] - want[pk])
    if not came and not gone:
        return {}
    entered_id, exited_id = system_ids
    with bound_cursor() as bound:  # ~5,000 pairs in binary
        bound.execute(
            _CHANGES_SQL,
            [
                [pk for pk, _ in gone],
                [c for _, c in gone],
                now,
                [pk for pk, _ in came],
                [c for _, c in came],
                entered_id,
                exited_id,
                now,
                now,
                entered_id,
                now,
                list(user_ids),
                list(user_ids.values()),
            ],
        )
        rows = bound.fetchall()
    changed: dict[int, Changes] = {}
    for segment_id, customer_id, kind in rows:
        changes = changed.setdefault(segment_id, Changes())
        (changes.entered if kind == "entered" else changes.exited).append(customer_id)
    cursor.execute(
        "UPDATE segments_segment s SET member_count = s.member_count + d.n"
        " FROM unnest(%s::bigint[], %s::bigint[]) AS d(id, n) WHERE s.id = d.id",
        [
            list(changed),
            [len(c.entered) - len(c.exited) for c in changed.values()],
        ],
    )
    return changed


def segments_evaluate(
    segments: Sequence[Segment],
    customer_ids: Sequence[int],
    *,
    now: datetime | None = None,
    lookups: Lookups | None = None,
    skip: Callable[[Segment, dict[int, Changes]], bool] | None = None,
) -> dict[int, Changes]:
    """Re-evaluate some customers against segments given in dependency order, in one
    transaction. Every segment's lock is taken first, in id order, so concurrent evaluations
    and builds cannot deadlock. Segments are evaluated in waves: a segment that reads another
    of this run waits for the wave after it, so it sees that segment's new membership.
    ``skip(segment, changed so far)`` leaves a segment out."""
    now = now or timezone.now()
    ids = sorted(set(customer_ids))
    lookups = lookups or Lookups.load(s.rules for s in segments)
    system_ids = system_event_ids()
    changed: dict[int, Changes] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        events_writer_enter(cursor)  # timeline events and memberships: no erasure meanwhile
        existing = lock_segments(cursor, [s.pk for s in segments])
        segments = [s for s in segments if s.pk in existing]  # deleted meanwhile
        set_work_mem(cursor)
        wave: list[Segment] = []
        for segment in [*segments, None]:
            if segment is None or any(d in {s.pk for s in wave} for d in segment.depends_on):
                if wave:
                    changed |= _evaluate_wave(cursor, wave, ids, now, lookups, system_ids)
                wave = []
            if segment is not None and not (skip and skip(segment, changed)):
                wave.append(segment)
        entered = sum(len(c.entered) for c in changed.values())
        exited = sum(len(c.exited) for c in changed.values())
        catalog_add(cursor, entered, exited, now, system_ids)
    return changed


def segment_evaluate(
    segment: Segment, customer_ids: Sequence[int], *, now: datetime | None = None
) -> Changes:
    """Re-evaluate some customers against one segment."""
    return segments_evaluate([segment], customer_ids, now=now).get(segment.pk, Changes())


@dataclass
class BuildResult:
    status: str  # "built", "stale" (a newer revision exists), "missing"
    changes: Changes = field(default_factory=Changes)


def segment_build(
    segment_id: int,
    revision: int | None = None,
    *,
    now: datetime | None = None,
    chunk: int = BUILD_CHUNK,
    workers: int | None = None,
    on_chunk: Callable[[tuple[int | None, int | None]], object] | None = None,
) -> BuildResult:
    """Apply a segment's rules to every customer, one id range per transaction, writing only
    the differences; ``workers`` ranges at a time on their own connections (default
    SEGMENTS_BUILD_WORKERS; one inside a transaction, whose rows other connections cannot
    see). Safe to rerun and to interrupt: each range is a complete diff, so a killed build
    leaves a consistent mix of old and new membership, and the next run ends in the same state
    as an uninterrupted one. A build for an older revision stops at the next range."""
    now = now or timezone.now()
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:
        return BuildResult("missing")
    if revision is not None and segment.revision != revision:
        return BuildResult("stale")
    revision = segment.revision
    if workers is None:
        workers = settings.SEGMENTS_BUILD_WORKERS
    if connection.in_atomic_block:
        workers = 1
    with connection.cursor() as cursor:
        # A second build of the same segment waits here; an older revision's build ahead of
        # it stops at its next range, so the wait is short.
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [BUILD_LOCK_NAMESPACE, segment_id])
    try:
        return _build(segment, revision, now, chunk, max(1, workers), on_chunk)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [BUILD_LOCK_NAMESPACE, segment_id])


class _Ranges:
    """A build's id ranges, handed out to its workers one at a time, and what they found.
    The ranges are disjoint; the open ends take ids created during the build (or below the
    minimum)."""

    def __init__(self, low: int, high: int, chunk: int) -> None:
        self.todo: list[tuple[int | None, int | None]] = []
        start = low
        while True:
            end = start + chunk - 1
            self.todo.append((None if start == low else start, None if end >= high else end))
            if end >= high:
                break
            start = end + 1
        self.total = len(self.todo)
        self.done = 0
        self.changes = Changes()
        self.stale = self.failed = False
        self._lock = threading.Lock()

    def take(self) -> tuple[int | None, int | None] | None:
        with self._lock:
            return None if self.stale or self.failed or not self.todo else self.todo.pop(0)

    def record(self, changes: Changes | None) -> int:
        """One range's changes (None: a newer revision exists); returns the build's progress."""
        with self._lock:
            if changes is None:
                self.stale = True
            else:
                self.changes.add(changes)
                self.done += 1
            return 100 if self.done == self.total else min(99, 100 * self.done // self.total)


def _build(
    segment: Segment, revision: int, now: datetime, chunk: int, workers: int, on_chunk
) -> BuildResult:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(min(id), 0), coalesce(max(id), 0) FROM customers_customer")
        low, high = cursor.fetchone()
    ranges = _Ranges(low, high, chunk)
    system_ids = system_event_ids()
    rules = compile_rules(segment.rules, compile_context(segment.rules, segment.timezone, now=now))
    dependents = Segment.objects.filter(depends_on__contains=[segment.pk]).exists()

    def work(own_connection: bool) -> None:
        try:
            while (bounds := ranges.take()) is not None:
                changes = _build_range(
                    segment, revision, rules, bounds, now, system_ids, dependents
                )
                progress = ranges.record(changes)
                if changes is not None:
                    Segment.objects.filter(pk=segment.pk).update(build_progress=progress)
                if on_chunk:
                    on_chunk(bounds)
        except BaseException:
            ranges.failed = True  # the other workers stop at their next range
            raise
        finally:
            if own_connection:
                connection.close()

    workers = min(workers, ranges.total)
    if workers == 1:
        work(own_connection=False)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for future in [pool.submit(work, True) for _ in range(workers)]:
                future.result()  # a failed range fails the build (the job retries it)
    if ranges.stale:
        return BuildResult("stale", ranges.changes)
    if len(ranges.changes.customer_ids) >= ANALYZE_AFTER:
        # Fresh statistics for the next diff's plan: autovacuum waits for 10% of the table.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE segments_membership")
    _build_finish(segment, revision, now)
    return BuildResult("built", ranges.changes)


def _build_range(
    segment: Segment,
    revision: int,
    rules: Sql,
    bounds: tuple[int | None, int | None],
    now: datetime,
    system_ids: tuple[int, int],
    dependents: bool,
) -> Changes | None:
    """One id range's diff in its own transaction; None when a newer revision exists."""
    with transaction.atomic(), connection.cursor() as cursor:
        events_writer_enter(cursor)  # timeline events and memberships: no erasure meanwhile
        lock_segment(cursor, segment.pk, shared=True)
        if hold_segments(cursor, [segment.pk]).get(segment.pk) != revision:
            return None  # a newer revision, or deleted
        set_work_mem(cursor, bulk=True)
        lo, hi = bounds
        scope_c, scope_m = _range("c.id", lo, hi), _range("m.customer_id", lo, hi)
        changes = _diff(cursor, segment, rules, scope_c, scope_m, now, system_ids)
        if changes:
            cursor.execute(
                "UPDATE segments_segment SET member_count = member_count + %s WHERE id = %s",
                [len(changes.entered) - len(changes.exited), segment.pk],
            )
        catalog_add(cursor, len(changes.entered), len(changes.exited), now, system_ids)
        if changes and dependents:
            _dependents_mark(changes)
    return changes


def _range(column: str, lo: int | None, hi: int | None) -> tuple[str, list[int]]:
    """An id range; an open end takes ids created during the build (or below the minimum)."""
    parts, params = [], []
    if lo is not None:
        parts.append(f"{column} >= %s")
        params.append(lo)
    if hi is not None:
        parts.append(f"{column} <= %s")
        params.append(hi)
    return " AND ".join(parts) or "TRUE", params


def _dependents_mark(changes: Changes) -> None:
    """Segments that read this one ("in segment") re-evaluate the changed customers."""
    from segments.incremental import pending_mark  # incremental builds on this module

    pending_mark(changes.customer_ids, ChangeKind.MEMBERSHIP)


def _build_finish(segment: Segment, revision: int, now: datetime) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        lock_segment(cursor, segment.pk)
        cursor.execute(
            "SELECT count(*) FROM segments_membership WHERE segment_id = %s", [segment.pk]
        )
        count = cursor.fetchone()[0]
        updated = Segment.objects.filter(pk=segment.pk, revision=revision).update(
            status=SegmentStatus.READY,
            build_progress=100,
            build_error="",
            built_revision=revision,
            built_at=now,
            member_count=count,
        )
        if updated:
            size_record(segment.pk, count, now)


def size_record(segment_id: int, count: int, now: datetime | None = None) -> None:
    day = timezone.localdate(now or timezone.now())
    SegmentSize.objects.update_or_create(
        segment_id=segment_id, day=day, defaults={"member_count": count}
    )


def segment_failed(segment_id: int, revision: int, exc: Exception) -> None:
    """Show a failed build on the segment (the job retries; a later success clears it)."""
    Segment.objects.filter(pk=segment_id, revision=revision).update(
        status=SegmentStatus.FAILED, build_error=str(exc)[:1000]
    )

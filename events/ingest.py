"""Storing a batch of events: one transaction, a handful of set-based statements whatever the
batch size.

1. Validate every event (events/validation.py); rejected ones get their errors, the rest go on.
2. Find or create the customers by user ID (a profile is created when first seen).
3. Find or create the catalog rows for the event names.
4. Insert the events with ids drawn up front, ON CONFLICT on (customer, client id) DO NOTHING:
   an event sent again with its client id is stored once and answered with the stored id, so a
   retried request gets the same answer, even when the retry races the original.
5. Move the customers' analytics fields forward (events/analytics.py).
6. Add the counts to the catalog, last, so its hot rows are locked only until the commit.
Nothing is acknowledged before the commit.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import OperationalError, connection, transaction
from django.utils import timezone
from psycopg import errors as pg_errors

from activity.services import Actor, activity_record
from customers.erasure_gate import events_writer_enter
from events.analytics import analytics_columns, customers_analytics_update
from events.catalog import TypeStats, catalog_add, event_types_ensure
from events.validation import CleanEvent, EventInvalid, event_clean
from segments.fields import ChangeKind
from segments.incremental import pending_mark
from workbench.bound_cursor import bound_cursor

MAX_BATCH = 1000
_DEADLOCK_RETRIES = 3

_INSERT_SQL = """
INSERT INTO events_event
    (id, customer_id, event_type_id, occurred_at, client_id, properties, context)
SELECT * FROM unnest(
    %b::bigint[], %b::bigint[], %b::bigint[], %b::timestamptz[], %b::text[],
    %b::text[]::jsonb[], %b::text[]::jsonb[])
ON CONFLICT (customer_id, client_id) WHERE client_id IS NOT NULL DO NOTHING
RETURNING id
"""


@dataclass
class IngestResult:
    """Per event, in request order: {"index", "status": "accepted", "id", "client_id"} or
    {"index", "status": "rejected", "errors": [...]}."""

    results: list[dict[str, Any]]
    stored: int = 0  # new rows (accepted minus those already stored under their client id)
    customers_created: int = 0
    customer_ids: set[int] = field(default_factory=set)  # customers with new events

    @property
    def accepted(self) -> int:
        return sum(1 for r in self.results if r["status"] == "accepted")

    @property
    def rejected(self) -> int:
        return len(self.results) - self.accepted


def events_ingest(
    raw_events: Sequence[Any], *, actor: Actor, now: datetime | None = None
) -> IngestResult:
    """Validate and store up to MAX_BATCH events; valid ones are stored even when others fail."""
    if len(raw_events) > MAX_BATCH:
        raise ValueError(f"At most {MAX_BATCH} events per batch.")
    now = now or timezone.now()
    results: list[dict[str, Any]] = []
    valid: list[tuple[int, CleanEvent]] = []
    for index, raw in enumerate(raw_events):
        try:
            valid.append((index, event_clean(raw, now=now)))
            results.append({"index": index, "status": "accepted"})
        except EventInvalid as exc:
            results.append(
                {"index": index, "status": "rejected", "errors": [e.as_dict() for e in exc.errors]}
            )
    outcome = IngestResult(results)
    if valid:
        for attempt in range(_DEADLOCK_RETRIES + 1):
            try:
                _store(valid, actor, outcome)
                break
            except OperationalError as exc:
                # Lock ordering makes deadlocks rare; a retry is safe because the whole batch
                # rolled back.
                deadlock = isinstance(exc.__cause__, pg_errors.DeadlockDetected)
                if not deadlock or attempt == _DEADLOCK_RETRIES or connection.in_atomic_block:
                    raise
                time.sleep(0.01 * (attempt + 1))
    return outcome


def _store(valid: list[tuple[int, CleanEvent]], actor: Actor, outcome: IngestResult) -> None:
    # The statements with a value per event go through a bound cursor (arrays in binary).
    with transaction.atomic(), connection.cursor() as cursor, bound_cursor() as bound:
        events_writer_enter(cursor)  # no erasure until this commits (events have no key)
        customers, created_ids = _customers_ensure(bound, [e.user_id for _, e in valid])
        created = len(created_ids)
        types = event_types_ensure(cursor, [e.name for _, e in valid])

        # One row per (customer, client id): the first of the batch; later copies share its id.
        rows: list[tuple[int, int, CleanEvent]] = []  # (index, customer id, event)
        first_of: dict[tuple[int, str], int] = {}
        copies: dict[int, int] = {}  # index → index of the row it repeats
        for index, event in valid:
            customer_id = customers[event.user_id]
            if event.client_id is not None:
                key = (customer_id, event.client_id)
                if key in first_of:
                    copies[index] = first_of[key]
                    continue
                first_of[key] = index
            rows.append((index, customer_id, event))

        bound.execute(
            "SELECT nextval(pg_get_serial_sequence('events_event', 'id'))"
            " FROM generate_series(1, %b::int)",
            [len(rows)],
        )
        ids = [r[0] for r in bound.fetchall()]
        bound.execute(
            _INSERT_SQL,
            [
                ids,
                [customer_id for _, customer_id, _ in rows],
                [types[e.name] for _, _, e in rows],
                [e.occurred_at for _, _, e in rows],
                [e.client_id for _, _, e in rows],
                [e.properties_json or "{}" for _, _, e in rows],
                [e.context_json or "{}" for _, _, e in rows],
            ],
        )
        inserted = {r[0] for r in bound.fetchall()}

        event_id: dict[int, int] = {}
        already: list[tuple[int, int, str]] = []  # (index, customer id, client id)
        new_rows = []
        for pk, (index, customer_id, event) in zip(ids, rows, strict=True):
            if pk in inserted:
                event_id[index] = pk
                new_rows.append((customer_id, event))
            else:
                already.append((index, customer_id, event.client_id))
        event_id |= _stored_ids(bound, already)
        for index, original in copies.items():
            event_id[index] = event_id[original]

        customers_analytics_update(
            bound, analytics_columns((c, e.occurred_at, e.platform, e.context) for c, e in new_rows)
        )
        if created:
            activity_record(
                actor, "customers.created_from_events", target_type="customer", count=created
            )
        stats: dict[int, TypeStats] = {}
        for _, event in new_rows:
            stats.setdefault(types[event.name], TypeStats()).add(
                event.occurred_at, event.properties
            )
        catalog_add(cursor, stats)
        # Segments re-read these customers within seconds (segments/incremental.py).
        changed = {customer_id for customer_id, _ in new_rows}
        marked = sorted(changed | created_ids)
        pending_mark(
            marked,
            [ChangeKind.EVENTS | (ChangeKind.CREATED if c in created_ids else 0) for c in marked],
        )

    for index, event in valid:
        outcome.results[index]["id"] = event_id[index]
        outcome.results[index]["client_id"] = event.client_id
    outcome.stored = len(new_rows)
    outcome.customers_created = created
    outcome.customer_ids = {customer_id for customer_id, _ in new_rows}


def _customers_ensure(cursor, user_ids: list[str]) -> tuple[dict[str, int], set[int]]:
    """user ID → customer id, creating bare profiles for unknown IDs. Returns the ids of
    those created. A concurrent creator of the same ID wins the INSERT; its row is read back."""
    wanted = sorted(set(user_ids))
    cursor.execute(
        "SELECT user_id, id FROM customers_customer WHERE user_id = ANY(%b::text[])", [wanted]
    )
    found = dict(cursor.fetchall())
    missing = [u for u in wanted if u not in found]
    created: set[int] = set()
    if missing:
        cursor.execute(
            "INSERT INTO customers_customer (user_id) SELECT unnest(%b::text[])"
            " ON CONFLICT (user_id) DO NOTHING RETURNING user_id, id",
            [missing],
        )
        new = dict(cursor.fetchall())
        created = set(new.values())
        found |= new
        if raced := [u for u in missing if u not in new]:
            cursor.execute(
                "SELECT user_id, id FROM customers_customer WHERE user_id = ANY(%b::text[])",
                [raced],
            )
            found |= dict(cursor.fetchall())
    return found, created


def _stored_ids(cursor, already: list[tuple[int, int, str]]) -> dict[int, int]:
    """Ids of events stored before under the same (customer, client id)."""
    if not already:
        return {}
    cursor.execute(
        "SELECT e.customer_id, e.client_id, e.id FROM events_event e"
        " JOIN unnest(%b::bigint[], %b::text[]) AS k(customer_id, client_id)"
        " USING (customer_id, client_id)",
        [[c for _, c, _ in already], [k for _, _, k in already]],
    )
    stored = {(c, k): pk for c, k, pk in cursor.fetchall()}
    return {index: stored[(c, k)] for index, c, k in already}

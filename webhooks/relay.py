"""The relay: segment transitions (the transactional outbox, segments_transition) become
deliveries, once per endpoint.

Each endpoint keeps a cursor, the last transition id it has been given. Under the endpoint's
row lock the relay turns the transitions after the cursor that the endpoint subscribes to into
Delivery rows (each with its stable webhook-id and body) and moves the cursor, in one
transaction. Sending (webhooks/delivery.py) only ever re-sends a stored delivery, so a
transition is never sent under two ids, and since the cursor and the deliveries commit
together none is skipped or duplicated by a relay killed half-way.

The cursor may only pass ids whose transactions have finished: transition ids come from a
sequence, so a transaction still writing could commit id 10 after id 11 is visible. The
relay therefore moves cursors only up to a *settled horizon*: it reads the sequence's last
value H, then waits for every transaction holding a segment's diff lock (segments/membership.py
writes transitions only under ``lock_segment``, taken before the ids are drawn). After that,
every id up to H is committed or rolled back for good. The wait is a lock taken and released
at once, so builds are never held up by the relay.
"""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from webhooks.models import Endpoint
from webhooks.payload import profile_sql

log = logging.getLogger(__name__)

RELAY_QUEUED_KEY = "webhooks:relay-queued"
# Transition ids per fan-out transaction: bounds the statement and the lock after a huge build.
RELAY_CHUNK = 50_000


def relay_wake() -> None:
    """After a transaction that wrote transitions commits: one relay message, however many
    commits come in a burst. Never raises: the periodic sweep picks up anything missed, and a
    segment build must not fail or wait because Redis is down."""
    try:
        from webhooks.tasks import relay_transitions

        if cache.add(RELAY_QUEUED_KEY, 1, timeout=60):
            relay_transitions.send()
    except Exception:
        log.warning("webhooks: could not wake the relay; the sweep will", exc_info=True)


def settled_horizon() -> int:
    """The highest transition id at or below which no transaction is still writing."""
    # membership imports this module
    from segments.membership import LOCK_NAMESPACE, lock_segment

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_serial_sequence('segments_transition', 'id')",
        )
        sequence = cursor.fetchone()[0]
        cursor.execute(f"SELECT last_value, is_called FROM {sequence}")  # noqa: S608 - catalog name
        last_value, is_called = cursor.fetchone()
        horizon = last_value if is_called else last_value - 1
        cursor.execute(
            "SELECT DISTINCT objid::bigint FROM pg_locks"
            " WHERE locktype = 'advisory' AND classid = %s AND objsubid = 2 AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [LOCK_NAMESPACE],
        )
        held = sorted(row[0] for row in cursor.fetchall())
    for segment_id in held:
        # Taken and released straight away: we only wait for the writer that holds it.
        with transaction.atomic(), connection.cursor() as cursor:
            lock_segment(cursor, segment_id)
    return horizon


_FAN_OUT_SQL = """
WITH picked AS (
    SELECT t.id, t.kind, t.segment_id, t.segment_name, t.customer_id, t.user_id, t.occurred_at,
           (row_number() OVER (PARTITION BY t.kind ORDER BY t.id) - 1) / %s AS batch
    FROM segments_transition t
    WHERE t.id > %s AND t.id <= %s AND t.kind = ANY(%s::text[])
      AND (%s::boolean OR t.segment_id = ANY(%s::bigint[]))
),
items AS (
    SELECT p.id, p.kind, p.batch,
           json_build_object(
               'id', p.id, 'event', 'segment-' || p.kind,
               'segment', json_build_object('id', p.segment_id, 'name', p.segment_name),
               'user_id', p.user_id, 'occurred_at', p.occurred_at, 'profile', {profile}
           ) AS item
    FROM picked p LEFT JOIN customers_customer c ON c.id = p.customer_id
)
INSERT INTO webhooks_delivery (endpoint_id, webhook_id, event, body, item_count, transition_ids,
                               status, attempts, next_attempt_at, give_up_at, created_at,
                               last_error)
SELECT %s, 'msg_' || %s || '_' || min(id), 'segment-' || kind,
       json_build_object('type', 'segment-' || kind, 'timestamp', %s::timestamptz,
                         'data', json_agg(item ORDER BY id))::text,
       count(*), jsonb_agg(id ORDER BY id), 'pending', 0, %s, %s, %s, ''
FROM items
GROUP BY kind, batch
ON CONFLICT (webhook_id) DO NOTHING
"""


def endpoint_fan_out(endpoint_id: int, horizon: int) -> int:
    """Turn the endpoint's transitions up to ``horizon`` into deliveries; returns how many
    deliveries were created. Safe to run concurrently and twice: the row lock serialises
    relays and the cursor only moves forward in the same transaction as the inserts."""
    from webhooks.delivery import give_up_time

    created = 0
    while True:
        with transaction.atomic():
            endpoint = (
                # Waits for a concurrent relay on this endpoint (a short transaction), then
                # carries on from where it left the cursor up to this relay's horizon.
                Endpoint.objects.select_for_update().filter(pk=endpoint_id, enabled=True).first()
            )
            if endpoint is None or endpoint.cursor >= horizon:
                return created
            upto = min(horizon, endpoint.cursor + RELAY_CHUNK)
            kinds = [e.removeprefix("segment-") for e in endpoint.events]
            segments = [int(pk) for pk in endpoint.segment_ids]
            profile, profile_params = profile_sql(endpoint.profile_fields)
            now = timezone.now()
            with connection.cursor() as cursor:
                cursor.execute(
                    _FAN_OUT_SQL.format(profile=profile),
                    [
                        endpoint.batch_size,
                        endpoint.cursor,
                        upto,
                        kinds,
                        endpoint.all_segments,
                        segments,
                        *profile_params,
                        endpoint.pk,
                        endpoint.pk,
                        now,
                        now,
                        give_up_time(now),
                        now,
                    ],
                )
                created += cursor.rowcount
            Endpoint.objects.filter(pk=endpoint.pk).update(cursor=upto)


def relay_run() -> int:
    """One pass over every enabled endpoint; returns the deliveries created. A disabled
    endpoint keeps its cursor, so on re-enabling it receives what happened meanwhile."""
    horizon = settled_horizon()
    created = 0
    endpoints = Endpoint.objects.filter(enabled=True, cursor__lt=horizon).values_list(
        "pk", flat=True
    )
    for endpoint_id in list(endpoints):
        # One endpoint's bad settings must not stop the others; its fan-out transaction
        # (a savepoint inside an outer one) rolls back alone, its cursor stays.
        try:
            created += endpoint_fan_out(endpoint_id, horizon)
        except Exception:
            log.exception("webhooks: relaying to endpoint %s failed", endpoint_id)
    return created


def cursor_start() -> int:
    """Where a new endpoint starts: after every transition already recorded. The settled
    horizon, not max(id): a writer still in flight may commit a lower id than the highest
    one visible, and a cursor past it would never deliver it."""
    return settled_horizon()

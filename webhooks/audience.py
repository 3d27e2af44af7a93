"""Handing an audience over: a selection of customers, everyone matching the Customers
screen's filter, or a segment's members, sent once to an endpoint as ``customers-sent``
deliveries of ``batch_size`` customers each, optionally leaving out customers on the Do Not
Contact list for a channel.

The deliveries are written by one INSERT … SELECT in the job's transaction, together with
the hand-over's status, so a job run twice (or killed and retried) creates them once; their
webhook-ids (``msg_<endpoint>_h<hand-over>_<batch>``) are stable. From there they are sent,
retried and logged like any other delivery.
"""

from __future__ import annotations

import zoneinfo

from django.db import connection, transaction
from django.http import QueryDict
from django.utils import timezone

from customers.filters import customers_filtered
from donotcontact.suppression import suppressed_sql
from webhooks.delivery import give_up_time
from webhooks.models import Handover, HandoverStatus
from webhooks.payload import profile_sql

_HANDOVER_SQL = """
WITH audience AS (
    SELECT c.*, (row_number() OVER (ORDER BY c.id) - 1) / %s AS batch
    FROM customers_customer c
    WHERE c.id IN ({source}) AND NOT {suppressed}
),
items AS (
    SELECT c.id, c.batch, json_build_object('user_id', c.user_id, 'profile', {profile}) AS item
    FROM audience c
),
made AS (
    INSERT INTO webhooks_delivery (endpoint_id, webhook_id, event, body, item_count,
                                   transition_ids, handover_id, status, attempts,
                                   next_attempt_at, give_up_at, created_at, last_error)
    SELECT %s, 'msg_' || %s || '_h' || %s || '_' || batch, 'customers-sent',
           json_build_object('type', 'customers-sent', 'timestamp', %s::timestamptz,
                             'handover', json_build_object('id', %s, 'description', %s),
                             'data', json_agg(item ORDER BY id))::text,
           count(*), '[]'::jsonb, %s, 'pending', 0, %s, %s, %s, ''
    FROM items
    GROUP BY batch
    ON CONFLICT (webhook_id) DO NOTHING
    RETURNING item_count
)
SELECT count(*), coalesce(sum(item_count), 0) FROM made
"""


def _source_sql(handover: Handover) -> tuple[str, list]:
    """The audience's customer ids as a subquery."""
    if handover.segment_id is not None:
        return (
            "SELECT m.customer_id FROM segments_membership m WHERE m.segment_id = %s",
            [handover.segment_id],
        )
    if handover.use_filter:
        filterset, qs = customers_filtered(QueryDict(handover.filter_query))
        if not filterset.is_valid():
            raise ValueError("The customer filter is no longer valid.")
        sql, params = qs.values("id").query.sql_with_params()
        return sql, list(params)
    return "SELECT unnest(%s::bigint[])", [[int(pk) for pk in handover.customer_ids]]


def handover_fail(handover_id: int, error: str) -> None:
    """Mark a hand-over that could not run as failed (if it is still queued)."""
    with transaction.atomic():
        Handover.objects.filter(pk=handover_id, status=HandoverStatus.QUEUED).update(
            status=HandoverStatus.FAILED, error=error[:500], finished_at=timezone.now()
        )


def handover_run(handover_id: int) -> Handover | None:
    """Create the hand-over's deliveries (once). Returns the hand-over, None if it is gone."""
    with transaction.atomic():
        handover = (
            Handover.objects.select_for_update()
            .select_related("endpoint")
            .filter(pk=handover_id)
            .first()
        )
        if handover is None or handover.status != HandoverStatus.QUEUED:
            return handover
        endpoint = handover.endpoint
        try:
            tz = zoneinfo.ZoneInfo(handover.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            tz = zoneinfo.ZoneInfo("UTC")
        try:
            with timezone.override(tz):
                source, source_params = _source_sql(handover)
        except ValueError as exc:
            handover.status, handover.error = HandoverStatus.FAILED, str(exc)
            handover.finished_at = timezone.now()
            handover.save(update_fields=["status", "error", "finished_at"])
            return handover
        if handover.exclude_channel:
            suppressed, suppressed_params = suppressed_sql(handover.exclude_channel, alias="c")
        else:
            suppressed, suppressed_params = "FALSE", []
        profile, profile_params = profile_sql(endpoint.profile_fields)
        now = timezone.now()
        sql = _HANDOVER_SQL.format(source=source, suppressed=suppressed, profile=profile)
        with connection.cursor() as cursor:
            cursor.execute(
                sql,
                [
                    endpoint.batch_size,
                    *source_params,
                    *suppressed_params,
                    *profile_params,
                    endpoint.pk,
                    endpoint.pk,
                    handover.pk,
                    now,
                    handover.pk,
                    handover.description,
                    handover.pk,
                    now,
                    give_up_time(now),
                    now,
                ],
            )
            deliveries, customers = cursor.fetchone()
        handover.status = HandoverStatus.DONE
        handover.delivery_count, handover.customer_count = deliveries, customers
        handover.finished_at = now
        handover.save(update_fields=["status", "delivery_count", "customer_count", "finished_at"])
    return handover

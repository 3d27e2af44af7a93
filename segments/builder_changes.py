"""What saving edited rules would do to a segment's stored membership: how many customers
would enter (match the new rules, not members now) and exit (members now, no longer matching),
computed by the one compiler against the membership table, under a statement timeout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.utils import OperationalError

from segments.compiler import compile_rules
from segments.models import Segment
from segments.query import compile_context, set_work_mem


@dataclass(frozen=True)
class MembershipChange:
    entering: int | None  # None: not counted within the timeout
    exiting: int | None

    @property
    def known(self) -> bool:
        return self.entering is not None

    def size_after(self, members_now: int) -> int | None:
        if self.entering is None or self.exiting is None:
            return None
        return members_now + self.entering - self.exiting


def membership_change(
    segment: Segment, tree: dict[str, Any], tz: ZoneInfo | str, *, timeout_ms: int | None = None
) -> MembershipChange:
    """+entering / −exiting if ``tree`` (clean) replaced the segment's rules now. One scan of
    the customers: each row's verdict (compiled conditions never yield NULL) against a left
    join on the segment's membership key."""
    ctx = compile_context(tree, tz)
    where = compile_rules(tree, ctx)
    timeout = timeout_ms or settings.SEGMENTS_PREVIEW_TIMEOUT_MS
    # Composed from the compiler's output only; every value is a bound parameter.
    sql = (
        "SELECT count(*) FILTER (WHERE s.matches AND m.customer_id IS NULL),"
        " count(*) FILTER (WHERE NOT s.matches AND m.customer_id IS NOT NULL)"
        f" FROM (SELECT c.id, {where.sql} AS matches FROM customers_customer c OFFSET 0) AS s"
        " LEFT JOIN segments_membership m ON m.segment_id = %s AND m.customer_id = s.id"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        set_work_mem(cursor)
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(timeout)])
        try:
            with transaction.atomic():
                cursor.execute(sql, [*where.params, segment.pk])
                entering, exiting = cursor.fetchone()
        except OperationalError:  # QueryCanceled: the statement timeout
            return MembershipChange(None, None)
    return MembershipChange(entering, exiting)

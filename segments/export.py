"""The members CSV of a segment: streamed in keyset batches, formula-escaped."""

from __future__ import annotations

from collections.abc import Iterator

from customers.export import csv_lines, escape_cell, without_suppressed
from segments.models import Membership, Segment

EXPORT_BATCH = 2000
EXPORT_HEADER = (
    "user_id",
    "name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "country",
    "entered_at",
)


def members_csv(
    segment: Segment, batch: int = EXPORT_BATCH, *, leave_out: str = ""
) -> Iterator[str]:
    """Every member, in keyset batches on the membership key: one query per batch, never
    the whole segment in memory. Cells a spreadsheet would run as formulas are escaped.
    ``leave_out`` (a channel) drops the members the Do Not Contact list suppresses on it; an
    unknown channel raises ValueError here, before anything is streamed."""
    base = without_suppressed(
        Membership.objects.filter(segment=segment), leave_out, column="customer_id"
    )
    return csv_lines(list(EXPORT_HEADER), _member_rows(base, batch))


def _member_rows(base, batch: int) -> Iterator[list[str]]:
    after = 0
    while True:
        rows = list(
            base.filter(customer_id__gt=after)
            .order_by("customer_id")
            .values_list(
                "customer_id",
                "customer__user_id",
                "customer__name",
                "customer__first_name",
                "customer__last_name",
                "customer__email",
                "customer__phone",
                "customer__country",
                "entered_at",
            )[:batch]
        )
        if not rows:
            return
        for _customer_id, *values, entered_at in rows:
            yield [*(escape_cell(v) for v in values), entered_at.isoformat()]
        after = rows[-1][0]

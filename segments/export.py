"""The members CSV of a segment: streamed in keyset batches, formula-escaped."""

from __future__ import annotations

from collections.abc import Iterator

from customers.export import csv_lines, escape_cell
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


def members_csv(segment: Segment, batch: int = EXPORT_BATCH) -> Iterator[str]:
    """Every member, in keyset batches on the membership key: one query per batch, never
    the whole segment in memory. Cells a spreadsheet would run as formulas are escaped."""
    yield from csv_lines(list(EXPORT_HEADER), _member_rows(segment, batch))


def _member_rows(segment: Segment, batch: int) -> Iterator[list[str]]:
    after = 0
    while True:
        rows = list(
            Membership.objects.filter(segment=segment, customer_id__gt=after)
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

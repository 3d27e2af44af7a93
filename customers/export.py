"""CSV export of customers, streamed (a server-side cursor, never the whole table in memory).

Cells that a spreadsheet would read as a formula (starting with = + - @, tab or carriage
return) get a leading apostrophe."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.db.models import OuterRef, QuerySet, StringAgg, Subquery, Value

from customers.custom_fields import CustomFieldSpec
from customers.models import Customer
from customers.profile import STANDARD_FIELDS
from tags.models import CustomerTag

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _custom_cell(value: object) -> str:
    # Stored form, so an exported file imports back unchanged: ISO dates, true/false.
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


class _Echo:
    def write(self, value: str) -> str:
        return value


def export_header(custom: dict[str, CustomFieldSpec]) -> list[str]:
    return [
        "id",
        *STANDARD_FIELDS,
        *(f"custom.{name}" for name in custom),
        "tags",
        "first_seen",
        "last_seen",
        "created_at",
        "updated_at",
    ]


def customers_csv(qs: QuerySet[Customer], custom: dict[str, CustomFieldSpec]) -> Iterator[str]:
    tags = (
        CustomerTag.objects.filter(customer=OuterRef("pk"))
        .values("customer")
        .annotate(names=StringAgg("tag__name", Value(", "), order_by="tag__name"))
        .values("names")
    )
    rows = qs.annotate(tag_names=Subquery(tags)).order_by("pk").iterator(chunk_size=2000)
    writer = csv.writer(_Echo())
    yield writer.writerow(export_header(custom))
    for c in rows:
        yield writer.writerow(
            escape_cell(v)
            for v in (
                c.user_id,
                *(getattr(c, name) for name in STANDARD_FIELDS),
                *(_custom_cell(c.custom.get(name)) for name in custom),
                c.tag_names or "",
                c.first_seen.isoformat() if c.first_seen else "",
                c.last_seen.isoformat() if c.last_seen else "",
                c.created_at.isoformat(),
                c.updated_at.isoformat(),
            )
        )

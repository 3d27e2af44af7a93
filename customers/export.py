"""Customer rows for export: the registry of exportable columns and a reader that yields
formula-escaped text rows in keyset batches on the customer id (one query per batch, never the
whole set in memory). exports/ writes them as CSV or XLSX; ``customers_csv`` is the fixed-column
stream the bulk "export" action has always returned to scripts.

Cells that a spreadsheet would read as a formula (starting with = + - @, tab or carriage
return) get a leading apostrophe."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import BooleanField, OuterRef, QuerySet, StringAgg, Subquery, Value
from django.db.models.expressions import RawSQL
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from customers.custom_fields import CustomFieldSpec
from customers.models import Customer
from customers.profile import STANDARD_FIELDS
from donotcontact.suppression import suppressed_sql
from tags.models import CustomerTag

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXPORT_BATCH = 2000


def escape_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def xlsx_cell(text: str) -> str:
    """An escaped cell as an XLSX writer may hold it: XML cannot hold most control characters
    (openpyxl refuses them), so they are dropped, and dropping them can uncover a formula
    ("\x01=HYPERLINK(...)" becomes "=HYPERLINK(...)"), so what is left is escaped again.
    A cell with nothing to drop stays as it is (an E.164 number written unescaped stays so)."""
    cleaned = ILLEGAL_CHARACTERS_RE.sub("", text)
    return text if cleaned == text else escape_cell(cleaned)


def _custom_cell(value: object) -> str:
    # Stored form, so an exported file imports back unchanged: ISO dates, true/false.
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _text_cell(value: object) -> str:
    return "" if value is None else str(value)


def _time_cell(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else ""


@dataclass(frozen=True)
class ExportColumn:
    """One exportable column. ``field`` is what the reader selects, relative to the customer
    ("custom" for every custom field, "tag_names" for the aggregated tags, "entered_at" on a
    segment membership); ``cell`` turns the selected value into text."""

    key: str
    label: str
    group: str
    field: str
    cell: Callable[[Any], str] = _text_cell
    custom_name: str = ""

    @property
    def header(self) -> str:
        # The user ID has always been the "id" column of an export (and of an import).
        return "id" if self.key == "user_id" else self.key

    def value(self, raw: Any) -> str:
        if self.custom_name:
            return _custom_cell((raw or {}).get(self.custom_name))
        return self.cell(raw)


def export_columns(
    custom: dict[str, CustomFieldSpec], *, segment: bool = False
) -> dict[str, ExportColumn]:
    """Every exportable column by key, in the order of today's export header."""
    columns = [ExportColumn("user_id", "User ID", "Profile", "user_id")]
    columns += [ExportColumn(f.name, f.label, "Profile", f.name) for f in STANDARD_FIELDS.values()]
    columns += [
        ExportColumn(
            f"custom.{name}", spec.label or name, "Custom fields", "custom", custom_name=name
        )
        for name, spec in custom.items()
    ]
    columns += [
        ExportColumn("tags", "Tags", "Profile", "tag_names"),
        ExportColumn("first_seen", "First seen", "Analytics", "first_seen", _time_cell),
        ExportColumn("last_seen", "Last seen", "Analytics", "last_seen", _time_cell),
        ExportColumn("created_at", "Created", "Profile", "created_at", _time_cell),
        ExportColumn("updated_at", "Updated", "Profile", "updated_at", _time_cell),
    ]
    if segment:
        columns.append(
            ExportColumn("entered_at", "Entered the segment", "Segment", "entered_at", _time_cell)
        )
    return {c.key: c for c in columns}


def default_column_keys(custom: dict[str, CustomFieldSpec]) -> list[str]:
    """Today's export header, as column keys."""
    return [c.key for c in export_columns(custom).values()]


def export_header(custom: dict[str, CustomFieldSpec]) -> list[str]:
    return [c.header for c in export_columns(custom).values()]


def columns_pick(keys: Iterable[str], available: dict[str, ExportColumn]) -> list[ExportColumn]:
    """The chosen columns in the order given; unknown and repeated keys dropped."""
    picked: dict[str, ExportColumn] = {}
    for key in keys:
        if key in available and key not in picked:
            picked[key] = available[key]
    return list(picked.values())


def export_rows(
    base: QuerySet,
    columns: list[ExportColumn],
    *,
    key: str = "pk",
    prefix: str = "",
    batch: int = EXPORT_BATCH,
) -> Iterator[list[str]]:
    """Formula-escaped text rows of ``columns`` for every row of ``base``, in keyset batches on
    ``key`` (the customer id). ``base`` is a Customer queryset (``prefix`` "") or one whose rows
    point at a customer (segment memberships: ``key="customer_id"``, ``prefix="customer__"``)."""
    fields = list(dict.fromkeys(c.field for c in columns))
    qs = base
    if "tag_names" in fields:
        tags = (
            CustomerTag.objects.filter(customer=OuterRef(key))
            .values("customer")
            .annotate(names=StringAgg("tag__name", Value(", "), order_by="tag__name"))
            .values("names")
        )
        qs = qs.annotate(tag_names=Subquery(tags))
    selected = [
        name if name in ("tag_names", "entered_at") else f"{prefix}{name}" for name in fields
    ]
    position = {name: i + 1 for i, name in enumerate(fields)}
    readers = [(c, position[c.field]) for c in columns]
    after: Any = 0
    while True:
        rows = list(
            qs.filter(**{f"{key}__gt": after}).order_by(key).values_list(key, *selected)[:batch]
        )
        for row in rows:
            yield [escape_cell(column.value(row[i])) for column, i in readers]
        if len(rows) < batch:
            return
        after = rows[-1][0]


def without_suppressed(qs: QuerySet, channel: str, *, column: str = "id") -> QuerySet:
    """``qs`` without the customers the Do Not Contact list suppresses on ``channel`` (for
    every sender; "": nobody is left out). ``column`` of the queryset's own table holds the
    customer id ("id" on customers, "customer_id" on segment memberships). One index probe
    per exported row, in the same query as the rows: no customer list in Python. An unknown
    channel raises ValueError (suppression.address_column)."""
    if not channel:
        return qs
    # The table and column names are the model's own; the caller's values are parameters.
    table = qs.model._meta.db_table
    if column == "id":  # the customers themselves: their own address columns
        suppressed, params = suppressed_sql(channel, alias=f'"{table}"')
        sql = f"NOT {suppressed}"
    else:
        suppressed, params = suppressed_sql(channel, alias="dnc_c")
        sql = (
            "NOT EXISTS (SELECT 1 FROM customers_customer dnc_c"  # noqa: S608
            f' WHERE dnc_c.id = "{table}"."{column}" AND {suppressed})'
        )
    return qs.filter(RawSQL(sql, params, output_field=BooleanField()))  # noqa: S611


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(header: list[str], rows: Iterable[list[str]]) -> Iterator[str]:
    """CSV text, one line at a time (for a streamed response)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow(row)


def customers_csv(
    qs: QuerySet[Customer], custom: dict[str, CustomFieldSpec], *, leave_out: str = ""
) -> Iterator[str]:
    """Every customer of ``qs`` with today's fixed columns (the bulk action's CSV), without
    those on the Do Not Contact list for channel ``leave_out`` when one is given."""
    columns = list(export_columns(custom).values())
    rows = export_rows(without_suppressed(qs, leave_out), columns)
    return csv_lines([c.header for c in columns], rows)

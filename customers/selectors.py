"""Customer reads: search, keyset pages in every sort order, and totals that stay cheap at a
million rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import BooleanField, F, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.shortcuts import get_object_or_404

from customers.models import NAME_KEY, Customer

PAGE_SIZE = 50
# Above this many rows an exact count(*) costs more than the page itself; show the planner's
# estimate instead, marked approximate.
EXACT_COUNT_LIMIT = 100_000

_T = Customer._meta.db_table
# Row comparisons keep deep pages on the sort indexes: "(key, id) < (v, pk)" is an index
# condition, where "key < v OR (key = v AND id < pk)" would walk every earlier row.
_NAME_SQL = f'upper("{_T}"."name") COLLATE "C"'


_LAST_SEEN_SQL = f'"{_T}"."last_seen"'
# "Last seen" sorts go hour by hour along the index on last_seen_hour (Customer.last_seen_hour),
# then by the exact time within the hour: an incremental sort of one hour's rows at a time.
_HOUR_SQL = f'"{_T}"."last_seen_hour"'
_HOUR_OF = "timezone('UTC', date_trunc('hour', timezone('UTC', %s::timestamptz)))"


@dataclass(frozen=True)
class Sort:
    label: str
    key: Any  # the ORM expression for ORDER BY; None: the primary key alone (creation order)
    key_sql: str  # the same expression in SQL, for the cursor's row comparison
    descending: bool
    nullable: bool = False  # NULLs always come last, whatever the direction
    by_hour: bool = False  # last_seen: hour by hour first (see _HOUR_SQL)

    def order_by(self, *, by_pk_only: bool = False) -> list:
        pk = "-pk" if self.descending else "pk"
        if self.key is None or by_pk_only:
            return [pk]
        keys = [F("last_seen_hour"), self.key] if self.by_hour else [self.key]
        return [k.desc() if self.descending else k.asc() for k in keys] + [pk]


SORTS: dict[str, Sort] = {
    "-created": Sort("Newest first", None, "", True),
    "created": Sort("Oldest first", None, "", False),
    "-last_seen": Sort(
        "Last seen, recent first", F("last_seen"), _LAST_SEEN_SQL, True, True, by_hour=True
    ),
    "last_seen": Sort(
        "Last seen, long ago first", F("last_seen"), _LAST_SEEN_SQL, False, True, by_hour=True
    ),
    "name": Sort("Name A–Z", NAME_KEY, _NAME_SQL, False),
    "-name": Sort("Name Z–A", NAME_KEY, _NAME_SQL, True),
}
DEFAULT_SORT = "-created"


def customer_get(pk: int) -> Customer:
    """Every member may read every customer; the view guards the role."""
    return get_object_or_404(Customer, pk=pk)


def customer_search(qs: QuerySet[Customer], q: str) -> QuerySet[Customer]:
    """Prefix match on user ID, e-mail or name: each side is served by its own index."""
    q = q.strip()
    if not q:
        return qs
    return qs.alias(name_key=NAME_KEY).filter(
        Q(user_id__startswith=q)
        | Q(email__startswith=q.lower())
        | Q(name_key__startswith=q.upper())
    )


@dataclass
class CustomerPage:
    rows: list[Customer]
    next_cursor: str | None
    total: int
    total_is_estimate: bool
    sort: str


def _after(sort: Sort, value, pk: int) -> Q | RawSQL:
    """Rows after (value, pk) in ``sort`` order."""
    if sort.key is None:
        return Q(pk__lt=pk) if sort.descending else Q(pk__gt=pk)
    op = "<" if sort.descending else ">"
    if sort.by_hour:
        return RawSQL(  # noqa: S611 - the SQL is our SORTS registry's; values are parameters
            f'({_HOUR_SQL}, {sort.key_sql}, "{_T}"."id") {op} ({_HOUR_OF}, %s, %s)',
            [value, value, pk],
            output_field=BooleanField(),
        )
    placeholder = '%s COLLATE "C"' if sort.key_sql == _NAME_SQL else "%s"
    return RawSQL(  # noqa: S611 - the SQL is our SORTS registry's; values are parameters
        f'({sort.key_sql}, "{_T}"."id") {op} ({placeholder}, %s)',
        [value, pk],
        output_field=BooleanField(),
    )


def encode_cursor(sort: Sort, row: Customer) -> str:
    if sort.key is None:
        return str(row.pk)
    if sort.key_sql == _NAME_SQL:
        value = row.name.upper()
    else:
        value = row.last_seen.isoformat() if row.last_seen else None
    return json.dumps([value, row.pk], separators=(",", ":"))


def decode_cursor(sort: Sort, cursor: str) -> tuple[object, int] | None:
    """(sort value, pk) or None for a cursor that does not parse (treated as the first page)."""
    try:
        if sort.key is None:
            return None, int(cursor)
        value, pk = json.loads(cursor)
        if not isinstance(pk, int) or (value is not None and not isinstance(value, str)):
            return None
        if value is not None and sort.key_sql != _NAME_SQL:
            value = datetime.fromisoformat(value)
        return value, pk
    except (ValueError, TypeError):
        return None


def customer_page(
    qs: QuerySet[Customer], *, sort: str = DEFAULT_SORT, after: str = "", size: int | None = None
) -> CustomerPage:
    """One page of ``qs`` in ``sort`` order after the cursor ``after`` (keyset, no OFFSET)."""
    size = size or PAGE_SIZE
    spec = SORTS.get(sort) or SORTS[DEFAULT_SORT]
    position = decode_cursor(spec, after) if after else None
    rows: list[Customer] = []
    # A nullable sort runs in two phases: rows with a value in key order, then rows without
    # one in id order. A cursor with a None value is already in the second phase.
    in_nulls = spec.nullable and position is not None and position[0] is None
    if not in_nulls:
        # The hour's IS NOT NULL is what the index condition can use (the same rows): without
        # it a backward scan read and dropped every never-seen customer first.
        page_qs = (
            qs.filter(last_seen__isnull=False, last_seen_hour__isnull=False)
            if spec.nullable
            else qs
        )
        if position is not None:
            page_qs = page_qs.filter(_after(spec, *position))
        rows = list(page_qs.order_by(*spec.order_by())[: size + 1])
    if spec.nullable and len(rows) <= size:
        null_qs = qs.filter(last_seen__isnull=True)
        if in_nulls:
            by_pk = SORTS["-created" if spec.descending else "created"]
            null_qs = null_qs.filter(_after(by_pk, None, position[1]))
        rows += list(null_qs.order_by(*spec.order_by(by_pk_only=True))[: size + 1 - len(rows)])
    next_cursor = encode_cursor(spec, rows[size - 1]) if len(rows) > size else None
    total = customer_count(qs)
    return CustomerPage(rows[:size], next_cursor, total.value, total.estimate, sort)


@dataclass
class Total:
    value: int
    estimate: bool


def _table_estimate() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [_T])
        return max(0, int(cursor.fetchone()[0]))


def _plan_estimate(qs: QuerySet) -> int:
    plan = json.loads(qs.order_by().explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


def customer_count(qs: QuerySet[Customer]) -> Total:
    """Exact when the planner expects fewer than EXACT_COUNT_LIMIT rows, otherwise the
    planner's estimate, marked approximate."""
    if qs.query.is_empty():
        return Total(0, False)
    unfiltered = not qs.query.where
    estimate = _table_estimate() if unfiltered else _plan_estimate(qs)
    if estimate < EXACT_COUNT_LIMIT:
        return Total(qs.count(), False)
    return Total(estimate, True)


def customer_total() -> Total:
    return customer_count(Customer.objects.all())


def customers_for_palette(q: str, limit: int = 5) -> list[Customer]:
    if len(q.strip()) < 2:
        return []
    return list(customer_search(Customer.objects.all(), q).order_by("user_id")[:limit])

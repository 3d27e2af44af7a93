from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.models import Q, QuerySet

from customers.models import Customer

PAGE_SIZE = 50
# Above this many rows an exact count(*) costs more than the page itself; show the planner's
# estimate instead, marked approximate.
EXACT_COUNT_LIMIT = 100_000


@dataclass
class CustomerPage:
    rows: list[Customer]
    next_cursor: int | None
    total: int
    total_is_estimate: bool


def customer_search(q: str) -> QuerySet[Customer]:
    qs = Customer.objects.all()
    q = q.strip()
    if q:
        qs = qs.filter(
            Q(user_id__startswith=q) | Q(email__startswith=q.lower()) | Q(name__istartswith=q)
        )
    return qs


def _estimated_total() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = 'customers_customer'::regclass"
        )
        return max(0, int(cursor.fetchone()[0]))


@dataclass
class Total:
    value: int
    estimate: bool


def customer_total() -> Total:
    """Exact below EXACT_COUNT_LIMIT rows, the planner's estimate above it."""
    estimate = _estimated_total()
    if estimate < EXACT_COUNT_LIMIT:
        return Total(Customer.objects.count(), False)
    return Total(estimate, True)


def customer_page(*, q: str = "", before: int | None = None) -> CustomerPage:
    """Newest first, keyset-paginated on the primary key (no OFFSET)."""
    qs = customer_search(q).order_by("-pk")
    page_qs = qs.filter(pk__lt=before) if before else qs
    rows = list(page_qs[: PAGE_SIZE + 1])
    next_cursor = rows[PAGE_SIZE - 1].pk if len(rows) > PAGE_SIZE else None
    # Searches match few rows through the user ID, e-mail and name indexes: count exactly.
    total = Total(qs.count(), False) if q else customer_total()
    return CustomerPage(rows[:PAGE_SIZE], next_cursor, total.value, total.estimate)


def customers_for_palette(q: str, limit: int = 5) -> list[Customer]:
    q = q.strip()
    if len(q) < 2:
        return []
    return list(customer_search(q).order_by("user_id")[:limit])

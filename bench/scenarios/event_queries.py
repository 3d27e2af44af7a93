"""event_queries: the segment-shaped event queries at a million customers and 20M events: whole
base counts through the (type, time) INCLUDE (customer) index against a sequential scan, a
property filter, one customer's "≥ 3 in 30 days" and a timeline page."""

from __future__ import annotations

import argparse
from datetime import timedelta

from bench.dataset import (
    DEMO_EVENTS,
    active_customers,
    add_events_dataset_arguments,
    ensure_demo_customers,
    ensure_demo_events,
    finish,
)
from bench.scenarios import register, row_count
from bench.timing import Latency, fmt_ms, time_each

ANCHOR_WHOLE_BASE_MS = 72  # the figure for (a)
TARGET_ONE_CUSTOMER_MS = 1
WARMUP = 2

# (a) customers who purchased at least three times in the last 30 days.
AT_LEAST_3_IN_30_DAYS = """
SELECT count(*) FROM (
    SELECT customer_id FROM events_event
    WHERE event_type_id = %(type)s AND occurred_at >= %(since)s
    GROUP BY customer_id HAVING count(*) >= 3
) AS matched
"""
# (b) customers who purchased between two dates.
BETWEEN_DATES = """
SELECT count(DISTINCT customer_id) FROM events_event
WHERE event_type_id = %(type)s AND occurred_at >= %(since)s AND occurred_at < %(until)s
"""
# (c) customers with a purchase over 100 in the last 30 days: the property is read from the
# rows the (type, time) index narrows to (numbers only: a text "amount" never matches).
PROPERTY_OVER = """
SELECT count(DISTINCT customer_id) FROM events_event
WHERE event_type_id = %(type)s AND occurred_at >= %(since)s
  AND jsonb_typeof(properties -> 'amount') = 'number'
  AND (properties ->> 'amount')::numeric > 100
"""
# (d) one customer: at least three purchases in the last 30 days (stops at the third).
ONE_CUSTOMER = """
SELECT count(*) >= 3 FROM (
    SELECT 1 FROM events_event
    WHERE customer_id = %(customer)s AND event_type_id = %(type)s AND occurred_at >= %(since)s
    LIMIT 3
) AS found
"""
AGGREGATE_STRATEGIES = {
    "Hashed": "HashAggregate",
    "Sorted": "GroupAggregate",
    "Mixed": "MixedAggregate",
}
NO_INDEXES = (
    "SET LOCAL enable_indexscan = off",
    "SET LOCAL enable_indexonlyscan = off",
    "SET LOCAL enable_bitmapscan = off",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_events_dataset_arguments(parser)
    parser.add_argument(
        "--calls",
        type=row_count,
        default=20,
        help="calls per whole-base query (default 20; the sequential-scan baselines get 5)",
    )
    parser.add_argument(
        "--keys",
        type=row_count,
        default=1000,
        help="customers for the one-customer queries (default 1,000)",
    )


def _plan(sql: str, params, settings: tuple[str, ...] = ()) -> str:
    """The plan's nodes, outermost first, with the index each scan uses and, for index-only
    scans, how many rows it had to fetch from the heap (EXPLAIN ANALYZE, once, untimed)."""
    import json

    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        for statement in settings:
            cursor.execute(statement)
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        raw = cursor.fetchone()[0]
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    nodes = []

    def walk(node: dict) -> None:
        text = node["Node Type"]
        strategy = AGGREGATE_STRATEGIES.get(node.get("Strategy", ""))
        if text == "Aggregate" and strategy:
            text = strategy
        if "Index Name" in node:
            text += f" using {node['Index Name']}"
        if "Heap Fetches" in node:
            text += f" (heap fetches {node['Heap Fetches']:,})"
        if node.get("Workers Planned"):
            text += f" ({node['Workers Planned']} workers)"
        nodes.append(text)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan)
    return " > ".join(nodes)


def _query(sql: str, params: dict, settings: tuple[str, ...] = ()):
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        for statement in settings:
            cursor.execute(statement)
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _ratio(index: Latency, seq: Latency) -> str:
    return (
        f"ratio {seq.median / index.median:,.1f}x  (seq scan median {fmt_ms(seq.median)}"
        f" / index median {fmt_ms(index.median)})"
    )


@register(
    "event_queries",
    "whole-base and one-customer event queries at 1M customers / 20M events (index vs seq scan)",
    default_size=DEMO_EVENTS,
    add_arguments=add_arguments,
)
def run(args: argparse.Namespace) -> None:
    from django.db import connection
    from django.utils import timezone

    from events.models import EventType
    from events.selectors import event_timeline

    ensure_demo_customers(args.customers, args.seed)
    ensure_demo_events(args.size, args.seed)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE events_event")
    purchase = EventType.objects.get(name="purchase").pk
    now = timezone.now()
    params = {"type": purchase, "since": now - timedelta(days=30)}
    between = {**params, "since": now - timedelta(days=90), "until": now - timedelta(days=60)}
    whole_base = [
        ("(a) >= 3 purchase in the last 30 days", AT_LEAST_3_IN_30_DAYS, params),
        ("(b) a purchase between 90 and 60 days ago", BETWEEN_DATES, between),
        ("(c) a purchase with amount > 100 in the last 30 days", PROPERTY_OVER, params),
    ]
    lines = []
    for label, sql, query_params in whole_base:
        answer = _query(sql, query_params)
        if answer != _query(sql, query_params, NO_INDEXES):
            raise SystemExit(f"{label}: the index and the sequential scan disagree")
        print(f"{label}: {answer:,} customers")
        print(f"  plan: {_plan(sql, query_params)}")
        print(f"  baseline plan: {_plan(sql, query_params, NO_INDEXES)}")
        calls = range(WARMUP + args.calls)
        index = time_each(
            f"{label}, index",
            calls,
            lambda _, sql=sql, p=query_params: _query(sql, p),
            size=args.size,
            warmup=WARMUP,
        )
        seq = time_each(
            f"{label}, seq scan",
            range(1 + max(3, args.calls // 4)),
            lambda _, sql=sql, p=query_params: _query(sql, p, NO_INDEXES),
            size=args.size,
            warmup=1,
        )
        lines += [index.line(), seq.line(), _ratio(index, seq)]

    # One customer at a time, as incremental evaluation and the customer page meet them:
    # customers drawn by their events (the active ones more often).
    user_ids = active_customers(args.keys, args.seed)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM customers_customer WHERE user_id = ANY(%s) ORDER BY user_id",
            [user_ids],
        )
        customers = [row[0] for row in cursor.fetchall()]
    one = {**params, "customer": customers[0]}
    print(f"(d) one customer >= 3 purchase in 30 days: plan: {_plan(ONE_CUSTOMER, one)}")
    matched = 0

    def check_one(_, answer) -> None:
        nonlocal matched
        matched += bool(answer)

    keys = customers[:WARMUP] + customers * args.repeat
    one_customer = time_each(
        "(d) one customer >= 3 purchase in the last 30 days, index",
        keys,
        lambda customer: _query(ONE_CUSTOMER, {**params, "customer": customer}),
        size=args.size,
        warmup=WARMUP,
        check=check_one,
    )
    print(f"(e) timeline first page: plan: {_timeline_plan(customers[0])}")
    sizes = []
    timeline = time_each(
        "(e) event_timeline(customer, limit=50), first page",
        keys,
        lambda customer: event_timeline(customer, limit=50),
        size=args.size,
        warmup=WARMUP,
        check=lambda _, page: sizes.append(len(page.events)),
    )
    finish(args)

    print()
    for line in lines:
        print(line)
    print(f"  (issue anchor for (a): {ANCHOR_WHOLE_BASE_MS} ms)")
    print(one_customer.line(target_ms=TARGET_ONE_CUSTOMER_MS))
    print(f"  ({len(customers):,} customers drawn by their events, {matched:,} answers true)")
    print(timeline.line())
    full = sum(1 for n in sizes if n == 50)
    print(f"  ({full:,} of {len(sizes):,} pages full; events a page: median {_median(sizes)})")


def _timeline_plan(customer_id: int) -> str:
    from events.models import Event

    queryset = (
        Event.objects.filter(customer_id=customer_id)
        .select_related("event_type")
        .order_by("-occurred_at", "-pk")[:51]
    )
    sql, sql_params = queryset.query.sql_with_params()
    return _plan(sql, sql_params)


def _median(values: list[int]) -> int:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0

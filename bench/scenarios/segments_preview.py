"""segments_preview: the builder's live count at a million customers and 20M events, for an
attribute tree (standard, custom and analytics fields) and a tree with "≥ 3 purchases in the
last 30 days", each against the same question written by hand in SQL; before and after the
custom fields' expression indexes a saved segment asks for."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from bench.dataset import (
    DEMO_EVENTS,
    add_events_dataset_arguments,
    finish,
    remove_bench_segments,
    segment_new,
    segments_setup,
)
from bench.scenarios import register, row_count
from bench.scenarios.event_queries import _plan
from bench.timing import fmt_ms, fmt_seconds, time_each

TARGET_ATTRIBUTE_MS = 300
TARGET_RATIO = 1.5  # preview median / hand-written median, attribute rules
TARGET_EVENT_MS = 1000
WARMUP = 2
# Events cross the 30-day edge while the scenario runs: a count read a minute after another
# may differ by the few customers whose third purchase aged out meanwhile.
EVENT_DRIFT = 0.005

ATTRIBUTE_TREE = {
    "type": "group",
    "match": "all",
    "children": [
        {"type": "attribute", "field": "country", "operator": "is", "value": "DE"},
        {"type": "attribute", "field": "custom.plan", "operator": "is", "value": "pro"},
        {"type": "attribute", "field": "custom.lifetime_value", "operator": "gt", "value": 100},
        {
            "type": "attribute",
            "field": "last_seen",
            "operator": "was_within",
            "value": 90,
            "unit": "days",
        },
    ],
}
# The same question as a developer writes it for this data (country codes are stored upper
# case, plans lower case, lifetime values as JSON numbers); "was within 90 days" is the date
# part, from the start of the day 90 days ago to the end of today (UTC). The country is
# compared on the expression customer_country_ci_idx indexes (the table has no index on the
# bare column), as someone who knows the table would write it.
HAND_ATTRIBUTE = """
SELECT count(*) FROM customers_customer
WHERE lower(NULLIF(country, '')) = 'de' AND custom->>'plan' = 'pro'
  AND (custom->>'lifetime_value')::numeric > 100
  AND last_seen >= %(since)s AND last_seen < %(until)s
"""
EVENT_TREE = {
    "type": "group",
    "match": "all",
    "children": [
        {
            "type": "event",
            "name": "purchase",
            "count": {"operator": "gte", "value": 3},
            "time": {"operator": "within_last", "value": 30, "unit": "days"},
        },
        {"type": "attribute", "field": "custom.plan", "operator": "is", "value": "pro"},
    ],
}
HAND_EVENT = """
SELECT count(*) FROM customers_customer c
WHERE c.custom->>'plan' = 'pro' AND c.id IN (
    SELECT customer_id FROM events_event
    WHERE event_type_id = %(type)s AND occurred_at >= now() - interval '30 days'
    GROUP BY customer_id HAVING count(*) >= 3
)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_events_dataset_arguments(parser)
    parser.add_argument(
        "--calls",
        type=row_count,
        default=10,
        help="calls per figure, after 2 warm-up calls (default 10)",
    )


class Case:
    def __init__(self, label: str, raw: dict, hand: str, target_ms: float, ratio: float | None):
        self.label, self.raw, self.hand = label, raw, hand
        self.target_ms, self.ratio = target_ms, ratio
        self.tree: dict = {}
        self.hand_params: dict = {}
        self.answer = 0
        self.lines: list[str] = []


def _one(sql: str, params) -> int:
    from django.db import connection, transaction

    from segments.query import set_work_mem

    with transaction.atomic(), connection.cursor() as cursor:
        set_work_mem(cursor)  # as the preview has it
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _compiled(tree: dict, now: datetime | None = None) -> tuple[str, list]:
    """The core's count query for ``tree``, as preview runs it (without the sample)."""
    from segments.compiler import compile_rules
    from segments.query import compile_context

    where = compile_rules(tree, compile_context(tree, "UTC", now=now))
    return f"SELECT count(*) FROM customers_customer c WHERE {where.sql}", where.params  # noqa: S608


def _close(case: Case, count: int) -> bool:
    drift = EVENT_DRIFT if case.raw is EVENT_TREE else 0
    return abs(count - case.answer) <= drift * case.answer


def _figures(case: Case, calls: int, phase: str) -> None:
    from segments.query import preview

    def check(_, count) -> None:
        if not _close(case, count):
            raise SystemExit(f"{case.label}: preview counted {count:,}, expected {case.answer:,}")

    keys = range(WARMUP + calls)
    headline = time_each(
        f"{case.label}, {phase}: preview(steps=False).count",
        keys,
        lambda _: preview(case.tree, "UTC", steps=False).count,
        warmup=WARMUP,
        check=check,
    )
    sql, params = _compiled(case.tree)
    compiled = time_each(
        f"{case.label}, {phase}: the compiled count alone",
        keys,
        lambda _: _one(sql, params),
        warmup=WARMUP,
        check=check,
    )
    hand = time_each(
        f"{case.label}, {phase}: hand-written SQL",
        keys,
        lambda _: _one(case.hand, case.hand_params),
        warmup=WARMUP,
        check=check,
    )
    steps: list[list[int]] = []
    full = time_each(
        f"{case.label}, {phase}: preview(steps=True), count after each condition",
        keys,
        lambda _: preview(case.tree, "UTC", steps=True),
        warmup=WARMUP,
        check=lambda _, result: steps.append(result.steps),
    )
    ratio = headline.median / hand.median
    case.lines += [
        headline.line(target_ms=case.target_ms),
        compiled.line(),
        hand.line(),
        f"ratio {ratio:,.2f}x  (preview median {fmt_ms(headline.median)} / hand-written"
        f" median {fmt_ms(hand.median)})"
        + (
            f"  target <= {case.ratio:g}x: {'met' if ratio <= case.ratio else 'MISSED'}"
            if case.ratio
            else ""
        ),
        full.line() + f"  counts {', '.join(f'{n:,}' for n in steps[-1])}",
    ]
    print(f"  {headline.line(target_ms=case.target_ms)}", flush=True)
    print(f"  {hand.line()}", flush=True)


def _plans(cases: list[Case], phase: str) -> None:
    for case in cases:
        sql, params = _compiled(case.tree)
        print(f"{case.label}, {phase}: plan: {_plan(sql, params)}")
        print(f"{case.label}, {phase}: hand-written plan: {_plan(case.hand, case.hand_params)}")


@register(
    "segments_preview",
    "the builder's preview count (attribute rules; ≥ 3 purchases in 30 days) against"
    " hand-written SQL, without and with the custom fields' expression indexes",
    default_size=DEMO_EVENTS,
    add_arguments=add_arguments,
)
def run(args: argparse.Namespace) -> None:
    import time

    from django.db import connection
    from django.utils import timezone

    from events.models import EventType
    from segments.indexes import indexes_sync
    from segments.services import segment_rules_clean

    segments_setup(args)

    now = timezone.now()
    today = now.astimezone(UTC).date()
    midnight = datetime(today.year, today.month, today.day, tzinfo=UTC)
    cases = [
        Case("attribute rules", ATTRIBUTE_TREE, HAND_ATTRIBUTE, TARGET_ATTRIBUTE_MS, TARGET_RATIO),
        Case("purchase >= 3 in 30 days + plan", EVENT_TREE, HAND_EVENT, TARGET_EVENT_MS, None),
    ]
    cases[0].hand_params = {
        "since": midnight - timedelta(days=90),
        "until": midnight + timedelta(days=1),
    }
    cases[1].hand_params = {"type": EventType.objects.get(name="purchase").pk}
    for case in cases:
        case.tree = segment_rules_clean(case.raw, "UTC")
        sql, params = _compiled(case.tree, now)
        case.answer = _one(sql, params)
        hand = _one(case.hand, case.hand_params)
        if not _close(case, hand):
            raise SystemExit(f"{case.label}: compiled {case.answer:,}, hand-written {hand:,}")
        print(f"{case.label}: {case.answer:,} customers (the hand-written SQL agrees)")

    indexes: dict[str, list[str]] = {}
    try:
        _plans(cases, "no segment indexes")
        for case in cases:
            _figures(case, args.calls, "no segment indexes")

        # Saving the segments makes their custom fields indexed (the ensure_segment_indexes job).
        for n, case in enumerate(cases):
            segment_new(f"preview {n}", case.tree)
        started = time.perf_counter()
        indexes = indexes_sync()
        built = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE customers_customer")  # the expression indexes' statistics
        print(
            f"indexes_sync: created {', '.join(indexes['created']) or 'none'}"
            f" in {fmt_seconds(built)}",
            flush=True,
        )
        _plans(cases, "with segment indexes")
        for case in cases:
            _figures(case, args.calls, "with segment indexes")
    finally:
        remove_bench_segments()
    finish(args)

    print()
    for case in cases:
        print(f"{case.label} ({case.answer:,} customers):")
        for line in case.lines:
            print(f"  {line}")
    if indexes:
        print(
            f"indexes_sync created {len(indexes['created'])} expression indexes in"
            f" {fmt_seconds(built)} (dropped again at the end)"
        )

"""generate_events: the demo event generator (COPY, indexes and foreign keys rebuilt, catalog
and customers' first/last seen set-based) loading 20M events over a million demo customers,
against the ORM's bulk_create."""

from __future__ import annotations

import argparse

from bench.dataset import (
    add_events_dataset_arguments,
    empty_customers,
    empty_events,
    ensure_demo_customers,
    finish,
)
from bench.db import quiet_server
from bench.scenarios import register, row_count
from bench.timing import fmt_seconds, measure, ratio_line

DEFAULT_SIZE = 20_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_events_dataset_arguments(parser)
    parser.add_argument(
        "--baseline-size",
        type=row_count,
        default=100_000,
        help="events for the ORM bulk_create baseline (default 100,000; 0 skips it)",
    )
    parser.add_argument(
        "--days", type=int, default=180, help="spread over this many days (default 180)"
    )
    parser.add_argument(
        "--reuse-customers",
        action="store_true",
        help="keep the customers between runs (default: generate them afresh before each"
        " run, untimed, so every run moves first/last seen as a first load does)",
    )


def _empty() -> None:
    """Untimed, before each run: no events, and a quiet server (no checkpoint pending)."""
    empty_events()
    quiet_server()


def _fresh_customers(count: int, seed: int) -> None:
    """Untimed: the customers as the customer generator makes them (their first/last seen
    not yet moved by earlier runs), no events."""
    from customers.demo_data import generate_customers

    empty_customers()  # its CASCADE empties the events too
    generate_customers(count=count, seed=seed)
    _empty()


def make_plan(count: int, seed: int, days: int):
    """The generator's plan (customers loaded, tables made): untimed for the baseline."""
    from datetime import UTC, datetime

    from django.db import connection

    from events.demo_data import plan_events

    with connection.cursor() as cursor:
        return plan_events(cursor, count, seed, datetime.now(UTC).replace(microsecond=0), days)


def orm_bulk_create(plan) -> int:
    """The baseline: the generator's rows made into ``Event`` instances and saved with
    ``bulk_create(batch_size=5000)`` into the table with its indexes and keys."""
    import json
    from datetime import datetime

    from django.db import transaction

    from events.demo_data import event_lines
    from events.models import Event

    created = 0
    with transaction.atomic():
        for chunk in event_lines(plan):
            events = []
            for line in chunk.splitlines():
                customer, event_type, at, client_id, properties, context = line.split("\t")
                events.append(
                    Event(
                        customer_id=int(customer),
                        event_type_id=int(event_type),
                        occurred_at=datetime.fromisoformat(at),
                        client_id=client_id,
                        properties=json.loads(properties.replace("\\\\", "\\")),
                        context=json.loads(context.replace("\\\\", "\\")),
                    )
                )
            created += len(Event.objects.bulk_create(events, batch_size=5000))
    return created


@register(
    "generate_events",
    "events.demo_data.generate_events: 20M events over 1M demo customers (COPY);"
    " baseline ORM bulk_create",
    default_size=DEFAULT_SIZE,
    add_arguments=add_arguments,
)
def run(args: argparse.Namespace) -> None:
    from events.demo_data import generate_events

    ensure_demo_customers(args.customers, args.seed)
    size, seed, days = args.size, args.seed, args.days
    results = []

    def check(expected: int):
        def check(result) -> None:
            created = result if isinstance(result, int) else result.created
            if created != expected:
                raise SystemExit(f"expected {expected:,} events created, got {created:,}")
            if not isinstance(result, int):
                results.append(result)
                phases = ", ".join(f"{k} {fmt_seconds(v)}" for k, v in result.phases.items())
                print(f"    {phases}; {result.customers_updated:,} customers' first/last seen")

        return check

    baseline = None
    if args.baseline_size:
        # First, so the last generator run's events stay for --keep-data.
        plans = []

        def prepare() -> None:
            _empty()
            plans[:] = [make_plan(args.baseline_size, seed, days)]

        baseline = measure(
            "baseline ORM bulk_create(batch_size=5000)",
            args.baseline_size,
            lambda: orm_bulk_create(plans[0]),
            repeat=args.repeat,
            setup=prepare,
            check=check(args.baseline_size),
        )
    generator = measure(
        f"generate_events over {args.customers:,} customers",
        size,
        lambda: generate_events(size, seed=seed, days=days),
        repeat=args.repeat,
        setup=_empty if args.reuse_customers else lambda: _fresh_customers(args.customers, seed),
        check=check(size),
    )
    if not args.keep_data:
        empty_events()
    finish(args)

    print()
    print(generator.line())
    middle = sorted(results, key=lambda r: r.seconds)[len(results) // 2]
    print(
        "  median run: "
        + ", ".join(f"{k} {fmt_seconds(v)}" for k, v in middle.phases.items())
        + f"; {middle.customers:,} customers got events,"
        f" {middle.customers_updated:,} had first/last seen moved"
    )
    if baseline is not None:
        print(baseline.line())
        print(ratio_line(generator, baseline))

"""generate_customers: the demo-data generator (COPY; customers with custom values and tags)
against the ORM's bulk_create."""

from __future__ import annotations

import argparse

from bench.db import quiet_server
from bench.scenarios import register, row_count
from bench.timing import measure, ratio_line

SEED = 7


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--baseline-size",
        type=row_count,
        default=50_000,
        help="rows for the ORM bulk_create baseline (default 50,000; 0 skips it)",
    )
    parser.add_argument("--seed", type=int, default=SEED, help=f"generator seed (default {SEED})")


def _truncate() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE customers_customer, tags_customertag RESTART IDENTITY CASCADE")
    quiet_server()


def orm_bulk_create(count: int, seed: int) -> int:
    """The baseline: the same customer rows (not their tags) through model instances and
    ``bulk_create(batch_size=5000)``."""
    import json
    from datetime import UTC, datetime

    from customers.demo_data import COLUMN_NAMES, NULL, DemoSetup, customer_lines
    from customers.models import Customer

    now = datetime.now(UTC).replace(microsecond=0)
    setup = DemoSetup(custom_fields=frozenset(_demo_field_names()))
    created = 0
    for chunk in customer_lines(count, seed, now, setup=setup):
        customers = []
        for line in chunk.splitlines():
            values = dict(zip(COLUMN_NAMES, line.split("\t"), strict=True))
            del values["id"]  # the sequence numbers them, as for any other insert
            values["custom"] = json.loads(values["custom"])
            customers.append(Customer(**{k: None if v == NULL else v for k, v in values.items()}))
        created += len(Customer.objects.bulk_create(customers, batch_size=5000))
    return created


def _demo_field_names() -> list[str]:
    from customers.demo_data import DEMO_CUSTOM_FIELDS

    return [name for name, *_ in DEMO_CUSTOM_FIELDS]


@register(
    "generate_customers",
    "customers.demo_data.generate_customers into an empty table; baseline ORM bulk_create",
    default_size=1_000_000,
    add_arguments=add_arguments,
)
def run(args: argparse.Namespace) -> None:
    from customers.demo_data import generate_customers

    def check_created(expected: int):
        def check(created: int) -> None:
            if created != expected:
                raise SystemExit(f"expected {expected:,} customers created, got {created:,}")

        return check

    size, seed = args.size, args.seed
    generator = measure(
        "generate_customers",
        size,
        lambda: generate_customers(count=size, seed=seed).created,
        repeat=args.repeat,
        setup=_truncate,
        check=check_created(size),
    )
    baseline = None
    if args.baseline_size:
        baseline = measure(
            "baseline ORM bulk_create(batch_size=5000)",
            args.baseline_size,
            lambda: orm_bulk_create(args.baseline_size, seed),
            repeat=args.repeat,
            setup=_truncate,
            check=check_created(args.baseline_size),
        )
    _truncate()  # leave the bench database small

    print()
    print(generator.line())
    if baseline is not None:
        print(baseline.line())
        print(ratio_line(generator, baseline))

"""customer_lookup: exact look-ups of one customer by user ID and by e-mail, through the ORM and
through GET /api/v1/customers/{user_id}, at a million demo customers."""

from __future__ import annotations

import argparse

from bench.dataset import (
    add_dataset_arguments,
    api_token,
    bench_member,
    ensure_demo_customers,
    finish,
    random_customers,
    route_exists,
)
from bench.scenarios import register, row_count
from bench.timing import time_each

TARGET_MS = 20
WARMUP = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_arguments(parser)
    parser.add_argument(
        "--keys",
        type=row_count,
        default=1000,
        help="random customers looked up per figure (default 1,000)",
    )


def _plan(queryset) -> str:
    """The access path of the query's plan, e.g. "Index Scan using customer_email_idx"."""
    return queryset.explain().splitlines()[0].split("  (")[0].strip()


@register(
    "customer_lookup",
    "one customer by user ID and by e-mail (ORM; GET /api/v1/customers/{user_id})",
    default_size=1_000_000,
    add_arguments=add_arguments,
)
def run(args: argparse.Namespace) -> None:
    from django.test import Client

    from customers.models import Customer

    ensure_demo_customers(args.size, args.seed)
    figures = []
    # --repeat rounds over the same keys: the figure is the median of every call.
    keys = random_customers(args.keys, seed=args.seed) * args.repeat
    with_email = [key for key in keys if key[2]]

    def check_user_id(key, customer) -> None:
        if customer.pk != key[0]:
            raise SystemExit(f"looked up {key[1]!r}, got customer {customer.pk}")

    def check_email(key, customers) -> None:
        if key[0] not in {c.pk for c in customers}:
            raise SystemExit(f"looked up {key[2]!r}, did not get customer {key[0]}")

    print("plan by user ID:", _plan(Customer.objects.filter(user_id=keys[0][1])))
    print("plan by e-mail: ", _plan(Customer.objects.filter(email=with_email[0][2])))
    figures.append(
        time_each(
            "ORM Customer.objects.get(user_id=...)",
            [keys[0]] * WARMUP + keys,
            lambda key: Customer.objects.get(user_id=key[1]),
            size=args.size,
            warmup=WARMUP,
            check=check_user_id,
        )
    )
    figures.append(
        time_each(
            "ORM list(Customer.objects.filter(email=...))",
            [with_email[0]] * WARMUP + with_email,
            lambda key: list(Customer.objects.filter(email=key[2])),
            size=args.size,
            warmup=WARMUP,
            check=check_email,
        )
    )

    if route_exists("/api/v1/customers/demo-1-0000000"):
        client = Client()
        headers = {"Authorization": f"Bearer {api_token(bench_member())}"}

        def check_response(key, response) -> None:
            if response.status_code != 200 or response.json()["user_id"] != key[1]:
                raise SystemExit(f"GET {key[1]}: {response.status_code} {response.content[:200]}")

        figures.append(
            time_each(
                "GET /api/v1/customers/{user_id} (django.test.Client, bearer token)",
                [keys[0]] * WARMUP + keys,
                lambda key: client.get(f"/api/v1/customers/{key[1]}", headers=headers),
                size=args.size,
                warmup=WARMUP,
                check=check_response,
            )
        )
    else:
        print("GET /api/v1/customers/{user_id}: no such endpoint yet, skipped")
    finish(args)

    print()
    for figure in figures:
        print(figure.line(target_ms=TARGET_MS))

"""What the request-level scenarios run against: the demo generator's customers (with its ten
custom fields and its tags), a member to act as, an API token and a test client.

Loading a million customers takes half a minute, so a scenario reuses the table when it holds
exactly the demo rows it wants (``--keep-data`` leaves them there for the next scenario) and
otherwise empties it and loads them again.
"""

from __future__ import annotations

import argparse
import random
import time

from bench.timing import fmt_seconds

DEMO_SEED = 7
BENCH_MEMBER = "bench@bench.invalid"


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seed", type=int, default=DEMO_SEED, help=f"demo data seed (default {DEMO_SEED})"
    )
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="leave the customers in the bench database for the next scenario (default: empty"
        " the table at the end)",
    )


def empty_customers() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE customers_customer RESTART IDENTITY CASCADE")


def ensure_demo_customers(size: int, seed: int = DEMO_SEED) -> None:
    """Make customers_customer hold exactly the demo generator's ``size`` customers of
    ``seed`` (and their tags): reuse the table when it does, else empty it and generate."""
    from django.db import connection

    from customers.demo_data import generate_customers, user_id_prefix

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM customers_customer")
        total = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM customers_customer WHERE user_id LIKE %s",
            [user_id_prefix(seed) + "%"],
        )
        demo = cursor.fetchone()[0]
    if total == demo == size:
        print(f"data: reusing {size:,} demo customers (seed {seed})", flush=True)
        return
    empty_customers()
    started = time.perf_counter()
    result = generate_customers(count=size, seed=seed)
    print(
        f"data: generated {result.created:,} demo customers (seed {seed}),"
        f" {result.tagged:,} tag assignments, in {fmt_seconds(time.perf_counter() - started)}",
        flush=True,
    )


def finish(args: argparse.Namespace) -> None:
    """Leave the bench database small, unless told to keep the data."""
    if args.keep_data:
        print("data: kept for the next scenario (--keep-data)")
    else:
        empty_customers()


def bench_member():
    """The member the scenarios act as: an Admin, so every page and endpoint is allowed."""
    from members.models import Member
    from members.roles import Role

    member, _ = Member.objects.get_or_create(
        email=BENCH_MEMBER, defaults={"name": "Bench", "role": Role.ADMIN}
    )
    return member


def api_token(member) -> str:
    """A fresh API token's plaintext for ``member``, with the rate limit lifted for this
    process (the scenarios send far more than a client may per minute)."""
    from django.conf import settings

    from apitokens.services import api_token_create

    settings.API_RATE_LIMIT_PER_MINUTE = 10**9
    _, plaintext = api_token_create(member=member, name="bench")
    return plaintext


def route_exists(path: str) -> bool:
    from django.urls import Resolver404, resolve

    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def random_customers(count: int, seed: int) -> list[tuple[int, str, str]]:
    """(pk, user_id, email) of up to ``count`` random customers, the same ones for a seed."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM customers_customer")
        low, high = cursor.fetchone()
        if low is None:
            return []
        rng = random.Random(seed)
        ids = [rng.randint(low, high) for _ in range(count)]
        cursor.execute(
            "SELECT id, user_id, email FROM customers_customer WHERE id = ANY(%s)", [ids]
        )
        found = {row[0]: row for row in cursor.fetchall()}
    return [found[pk] for pk in ids if pk in found]

"""bulk_upsert: create-or-update customers 1,000 at a time, validation included, as the API's
bulk endpoint does (half new user IDs, half existing ones, with custom values and tags), at a
million demo customers; the service, POST /api/v1/customers/bulk, and a naive ORM loop."""

from __future__ import annotations

import argparse
import json
import random

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
from bench.timing import measure, rate_line, ratio_line

BATCH = 1000
TARGET_PER_SECOND = 5000
NEW_PREFIX = "bench-new-"
FIRST = ["Ada", "Ben", "Chen", "Dara", "Emma", "Hugo", "Lina", "Omar", "Rosa", "Yara"]
LAST = ["Costa", "Ito", "Meyer", "Novak", "Okafor", "Patel", "Santos", "Weber"]
PLACES = [("Lisbon", "PT", "+351912345"), ("Berlin", "DE", "+4915123456"), ("Austin", "US", "")]
TAGS = [["VIP"], ["Newsletter", "Bench import"], [], ["Early adopter"]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_arguments(parser)
    parser.add_argument(
        "--batches",
        type=row_count,
        default=10,
        help=f"batches of {BATCH:,} per run (default 10)",
    )
    parser.add_argument(
        "--baseline-items",
        type=row_count,
        default=1000,
        help="items for the naive ORM loop baseline (default 1,000; 0 skips it)",
    )


def raw_items(count: int, existing: list[str], tag: str, rng: random.Random) -> list[dict]:
    """``count`` customers as an API client sends them: every other one an existing user ID,
    the rest new ones (``NEW_PREFIX`` + ``tag``)."""
    items = []
    for k in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        city, country, phone_prefix = rng.choice(PLACES)
        user_id = existing[k // 2 % len(existing)] if k % 2 else f"{NEW_PREFIX}{tag}-{k}"
        item = {
            "user_id": user_id,
            "name": f"{first} {last}",
            "first_name": first,
            "last_name": last,
            "email": f"{first}.{last}.{tag}.{k}@Example.com",
            "city": city,
            "country": country,
            "custom": {
                "plan": rng.choice(["free", "basic", "pro"]),
                "loyalty_points": rng.randint(0, 5000),
                "newsletter": rng.random() < 0.5,
                "signup_date": f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            },
            "tags": rng.choice(TAGS),
        }
        if phone_prefix:
            item["phone"] = f"{phone_prefix}{rng.randint(0, 999):03d}"
        items.append(item)
    return items


def _validate(raw: list[dict], specs) -> list:
    """What the bulk endpoint does to each item before the upsert."""
    from customers.profile import clean_user_id, profile_clean
    from customers.upsert import UpsertItem

    items = []
    for item in raw:
        data = dict(item)
        user_id = clean_user_id(data.pop("user_id"))
        items.append(UpsertItem(user_id, profile_clean(data, specs)))
    return items


def _delete_new() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM customers_customer WHERE user_id LIKE %s", [NEW_PREFIX + "%"])


def naive_upsert(raw: list[dict], member) -> int:
    """The baseline: validate the same way, then one update_or_create per customer, a
    read-modify-write of its custom values and a get_or_create per tag."""
    from customers.custom_fields import custom_field_specs
    from customers.models import Customer
    from tags.models import CustomerTag, Source, Tag

    specs = custom_field_specs()
    for item in _validate(raw, specs):
        customer, _ = Customer.objects.update_or_create(
            user_id=item.user_id, defaults=item.profile.values
        )
        if item.profile.custom_set:
            customer.custom = {**customer.custom, **item.profile.custom_set}
            customer.save(update_fields=["custom"])
        for name in item.profile.tags:
            tag = Tag.objects.filter(name__iexact=name).first() or Tag.objects.create(name=name)
            CustomerTag.objects.get_or_create(
                customer=customer, tag=tag, defaults={"source": Source.API, "added_by": member}
            )
    return len(raw)


@register(
    "bulk_upsert",
    "customers_upsert 1,000 at a time with validation (and POST /api/v1/customers/bulk);"
    " baseline a naive update_or_create loop",
    default_size=1_000_000,
    add_arguments=add_arguments,
)
def run(args: argparse.Namespace) -> None:
    from django.test import Client

    from activity.services import Actor
    from customers.custom_fields import custom_field_specs
    from customers.upsert import customers_upsert
    from tags.models import Source

    ensure_demo_customers(args.size, args.seed)
    member = bench_member()
    actor = Actor(Source.API, member=member)
    rng = random.Random(args.seed)
    existing = [user_id for _, user_id, _ in random_customers(20_000, seed=args.seed)]
    total = args.batches * BATCH
    runs = iter(range(10**9))
    batches: list[list[dict]] = []

    def prepare() -> None:
        """Untimed: forget the last run's new customers; make this run's request bodies."""
        _delete_new()
        n = next(runs)
        batches[:] = [
            raw_items(BATCH, existing[b * BATCH : (b + 1) * BATCH] or existing, f"{n}-{b}", rng)
            for b in range(args.batches)
        ]

    def service() -> int:
        specs = custom_field_specs()
        done = 0
        for raw in batches:
            results = customers_upsert(_validate(raw, specs), actor)
            if sum(r.created for r in results.values()) != BATCH // 2:
                raise SystemExit("expected half of each batch to be new customers")
            done += len(raw)
        return done

    def check(expected: int):
        def check(done: int) -> None:
            if done != expected:
                raise SystemExit(f"expected {expected:,} customers, did {done:,}")

        return check

    figures = [
        measure(
            f"customers_upsert + profile_clean, batches of {BATCH:,}",
            total,
            service,
            repeat=args.repeat,
            setup=prepare,
            check=check(total),
        )
    ]

    path = "/api/v1/customers/bulk"
    if route_exists(path):
        client = Client()
        headers = {"Authorization": f"Bearer {api_token(member)}"}
        bodies: list[str] = []

        def prepare_requests() -> None:
            prepare()
            bodies[:] = [json.dumps({"customers": raw}) for raw in batches]

        def api() -> int:
            done = 0
            for body in bodies:
                response = client.post(path, body, content_type="application/json", headers=headers)
                answer = response.json()
                if response.status_code != 200 or answer["failed"] or answer["created"] != 500:
                    raise SystemExit(f"POST {path}: {response.status_code} {answer}"[:300])
                done += answer["created"] + answer["updated"]
            return done

        figures.append(
            measure(
                f"POST {path} (django.test.Client, bearer token), {BATCH:,} a request",
                total,
                api,
                repeat=args.repeat,
                setup=prepare_requests,
                check=check(total),
            )
        )
    else:
        print(f"POST {path}: no such endpoint yet, skipped")

    baseline = None
    if args.baseline_items:
        sample: list[dict] = []

        def prepare_sample() -> None:
            _delete_new()
            sample[:] = raw_items(args.baseline_items, existing, f"naive-{next(runs)}", rng)

        baseline = measure(
            "baseline naive ORM loop (update_or_create per customer)",
            args.baseline_items,
            lambda: naive_upsert(sample, member),
            repeat=args.repeat,
            setup=prepare_sample,
            check=check(args.baseline_items),
        )
    _delete_new()
    finish(args)

    print()
    for figure in figures:
        print(rate_line(figure, "customers", TARGET_PER_SECOND))
    if baseline is not None:
        print(rate_line(baseline, "customers"))
        print(ratio_line(figures[0], baseline))

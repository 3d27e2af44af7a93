"""customers_screen: the server time of the customer list, GET /customers/ (first page) and a
deep keyset page (?after=<pk> from the middle of the table), at a million demo customers."""

from __future__ import annotations

import argparse
import re

from bench.dataset import add_dataset_arguments, bench_member, ensure_demo_customers, finish
from bench.scenarios import register, row_count
from bench.timing import time_each

TARGET_MS = 100
WARMUP = 3
NEXT_LINK = re.compile(r'<a\b[^>]*\brel="next"[^>]*>')
HREF = re.compile(r'href="([^"]*)"')
DETAIL_LINK = re.compile(r'href="/customers/(\d+)/"')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_arguments(parser)
    parser.add_argument(
        "--requests",
        type=row_count,
        default=30,
        help="requests per figure and per --repeat round (default 30)",
    )


def next_href(html: str) -> str | None:
    """The href of the page's rel="next" link, unescaped; None without one."""
    link = NEXT_LINK.search(html)
    href = HREF.search(link.group(0)) if link else None
    return href.group(1).replace("&amp;", "&") if href else None


@register(
    "customers_screen",
    "server time of GET /customers/: the first page and a deep keyset page (?after=<pk>)",
    default_size=1_000_000,
    add_arguments=add_arguments,
)
def run(args: argparse.Namespace) -> None:
    from django.db import connection
    from django.test import Client

    ensure_demo_customers(args.size, args.seed)
    client = Client()
    client.force_login(bench_member())
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM customers_customer")
        low, high = cursor.fetchone()
    middle = (low + high) // 2

    first = client.get("/customers/")
    html = first.content.decode()
    href = next_href(html)
    if first.status_code != 200 or href is None or "after=" not in href:
        finish(args)
        raise SystemExit(
            f"GET /customers/ answered {first.status_code} without the contract's"
            ' <a rel="next" href="...after=..."> link: is the list view rewritten yet?'
        )
    followed = client.get(f"/customers/{href}" if href.startswith("?") else href)
    rows = len(DETAIL_LINK.findall(followed.content.decode()))
    print(f'first page: {len(DETAIL_LINK.findall(html))} rows; rel="next" -> {href}')
    print(f"  following it: {followed.status_code}, {rows} rows")

    def check_first(_, response) -> None:
        if response.status_code != 200 or not DETAIL_LINK.search(response.content.decode()):
            raise SystemExit(f"GET /customers/: {response.status_code}")

    def check_deep(_, response) -> None:
        pks = [int(pk) for pk in DETAIL_LINK.findall(response.content.decode())]
        if response.status_code != 200 or not pks or max(pks) >= middle:
            raise SystemExit(
                f"GET /customers/?after={middle}: {response.status_code}, rows {pks[:3]}..."
                f" (want rows with pk < {middle}, newest first)"
            )

    calls = args.requests * args.repeat
    figures = [
        time_each(
            "GET /customers/ (first page, newest first)",
            range(WARMUP + calls),
            lambda _: client.get("/customers/"),
            size=args.size,
            warmup=WARMUP,
            check=check_first,
        ),
        time_each(
            f"GET /customers/?after={middle} (deep keyset page, middle of the table)",
            range(WARMUP + calls),
            lambda _: client.get(f"/customers/?after={middle}"),
            size=args.size,
            warmup=WARMUP,
            check=check_deep,
        ),
    ]
    finish(args)

    print()
    for figure in figures:
        print(figure.line(target_ms=TARGET_MS))

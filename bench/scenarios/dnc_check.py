"""dnc_check: "is this contact suppressed here?" against a million-entry Do Not Contact list,
through the selector (one probe of the unique index that leads with the contact) and through
GET /api/v1/do-not-contact/check; the baseline is the same check with index scans switched off
(a sequential scan of the list). Also the list screen's first and deep pages at that size.

The entries are generated in one INSERT ... SELECT FROM generate_series: half e-mail addresses
(channel Email), half phone numbers on every channel or on one, a quarter with a sender and
some with an account. The table is emptied at the end unless --keep-data."""

from __future__ import annotations

import argparse
import random
import time

from bench.dataset import api_token, bench_member, route_exists
from bench.scenarios import register, row_count
from bench.timing import Latency, fmt_seconds, time_each

TARGET_MS = 5
WARMUP = 20
CHANNELS = ["", "sms", "whatsapp", "viber", "voice"]
SENDERS = ["", "", "acme", "shop"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keys",
        type=row_count,
        default=1000,
        help="random contacts checked per figure (default 1,000; a fifth are not on the list)",
    )
    parser.add_argument(
        "--baseline-keys",
        type=row_count,
        default=20,
        help="contacts checked by sequential scan for the baseline (default 20)",
    )
    parser.add_argument("--seed", type=int, default=7, help="key sampling seed (default 7)")
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="leave the entries in donotcontact_entry (default: empty the table at the end)",
    )


def _email(i: int) -> str:
    return f"dnc{i}@example.com"


def _phone(i: int) -> str:
    return f"+4470{i:08d}"


def _fill(size: int) -> None:
    """``size`` entries, set-based; the Python helpers above spell the same contacts."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE donotcontact_entry RESTART IDENTITY")
        cursor.execute(
            """
            INSERT INTO donotcontact_entry
                (contact, channel, sender, account, source, reason, note, added_at)
            SELECT
                CASE WHEN i %% 2 = 0 THEN 'dnc' || i || '@example.com'
                     ELSE '+4470' || lpad(i::text, 8, '0') END,
                CASE WHEN i %% 2 = 0 THEN 'email'
                     ELSE (%s::text[])[1 + (i / 2) %% 5] END,
                (%s::text[])[1 + i %% 4],
                CASE WHEN i %% 10 = 3 THEN 'eu' ELSE '' END,
                (ARRAY['end_user', 'campaign', 'url_opt_out', 'manual', 'import', 'api'])
                    [1 + i %% 6],
                CASE WHEN i %% 7 = 0 THEN 'Replied STOP' ELSE '' END,
                '',
                now() - make_interval(secs => i)
            FROM generate_series(1, %s) AS i
            """,
            [CHANNELS, SENDERS, size],
        )
        cursor.execute("ANALYZE donotcontact_entry")


def _keys(size: int, count: int, seed: int) -> list[tuple[str, str | None, str]]:
    """(contact, channel, sender) to check: four in five on the list, the rest not."""
    rng = random.Random(seed)
    keys = []
    for _ in range(count):
        i = rng.randint(1, size)
        listed = rng.random() < 0.8
        contact = (_email(i) if i % 2 == 0 else _phone(i)) if listed else _email(size + i * 2)
        channel = "email" if "@" in contact else rng.choice(["sms", "viber", None])
        keys.append((contact, channel, rng.choice(["", "acme"])))
    return keys


def _plan(sql_params) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql_params[0], sql_params[1])
        return " / ".join(row[0].strip() for row in cursor.fetchall()[:2])


@register(
    "dnc_check",
    "Do Not Contact check (selector and GET /api/v1/do-not-contact/check) at 1M entries",
    default_size=1_000_000,
    add_arguments=add_arguments,
)
def run(args: argparse.Namespace) -> None:
    from django.db import connection
    from django.test import Client

    from donotcontact.filters import entries_filtered
    from donotcontact.models import Entry
    from donotcontact.selectors import entries_suppressing, entry_page
    from donotcontact.suppression import entries_matching_q

    started = time.perf_counter()
    _fill(args.size)
    print(f"filled {args.size:,} entries in {fmt_seconds(time.perf_counter() - started)}")
    keys = _keys(args.size, args.keys, args.seed) * args.repeat
    sample = Entry.objects.filter(entries_matching_q(keys[0][0], keys[0][1], keys[0][2]))
    print("plan:", _plan(sample.query.sql_with_params()))

    found = {"count": 0}

    def check_found(key, entries) -> None:
        contact = key[0]
        missing = contact.startswith("dnc") and int(contact[3:].split("@")[0]) > args.size
        if missing and entries:
            raise SystemExit(f"{contact} is not on the list, yet the check found {entries}")
        found["count"] += bool(entries)

    figures: list[tuple[Latency, float | None]] = []
    figures.append(
        (
            time_each(
                "selector entries_suppressing()",
                [keys[0]] * WARMUP + keys,
                lambda key: entries_suppressing(key[0], key[1], key[2]),
                size=args.size,
                warmup=WARMUP,
                check=check_found,
            ),
            TARGET_MS,
        )
    )

    print(f"suppressed: {found['count']:,} of {len(keys) + WARMUP:,} checks")
    if not found["count"]:
        raise SystemExit("no check found an entry: the benchmark measured nothing")
    if route_exists("/api/v1/do-not-contact/check"):
        client = Client()
        headers = {"Authorization": f"Bearer {api_token(bench_member())}"}

        def call(key):
            params = {"contact": key[0], "sender": key[2]}
            if key[1]:
                params["channel"] = key[1]
            return client.get("/api/v1/do-not-contact/check", params, headers=headers)

        def check_response(key, response) -> None:
            if response.status_code != 200:
                raise SystemExit(f"check {key}: {response.status_code} {response.content[:200]}")

        figures.append(
            (
                time_each(
                    "GET /api/v1/do-not-contact/check (django.test.Client, bearer token)",
                    [keys[0]] * WARMUP + keys,
                    call,
                    size=args.size,
                    warmup=WARMUP,
                    check=check_response,
                ),
                TARGET_MS,
            )
        )

    # Baseline: the same selector with index scans off, so PostgreSQL reads the whole list.
    with connection.cursor() as cursor:
        cursor.execute("SET enable_indexscan = off")
        cursor.execute("SET enable_bitmapscan = off")
        cursor.execute("SET enable_indexonlyscan = off")
    print("baseline plan:", _plan(sample.query.sql_with_params()))
    baseline_keys = keys[: args.baseline_keys]
    baseline = time_each(
        "baseline: same check, sequential scan",
        [keys[0]] + baseline_keys,
        lambda key: entries_suppressing(key[0], key[1], key[2]),
        size=args.size,
        warmup=1,
    )
    with connection.cursor() as cursor:
        cursor.execute("RESET enable_indexscan")
        cursor.execute("RESET enable_bitmapscan")
        cursor.execute("RESET enable_indexonlyscan")

    # The list screen's pages at this size (keyset: a deep page costs what the first does).
    pages: list[Latency] = []
    for label, params in (
        ("list: first page, newest first", {}),
        ("list: search by phone prefix", {"q": "0044 70 0001"}),
        ("list: channel = SMS or Viber", {"channel": ["sms", "viber"]}),
        ("list: sorted by contact", {"sort": "contact"}),
        ("list: sorted by sender", {"sort": "sender"}),
    ):
        from django.http import QueryDict

        query = QueryDict(mutable=True)
        for key, value in params.items():
            query.setlist(key, value if isinstance(value, list) else [value])

        def page_of(after: str, query=query):
            _, qs = entries_filtered(query)
            return entry_page(qs, sort=query.get("sort", "-added"), after=after)

        cursors = [""]
        for _ in range(20):  # walk 20 pages deep, then time first and deep pages alike
            next_cursor = page_of(cursors[-1]).next_cursor
            if not next_cursor:
                break
            cursors.append(next_cursor)
        pages.append(time_each(label, cursors * args.repeat, page_of, size=args.size, warmup=1))

    if args.keep_data:
        print("data: kept in donotcontact_entry (--keep-data)")
    else:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE donotcontact_entry RESTART IDENTITY")

    print()
    for figure, target in figures:
        print(figure.line(target_ms=target))
    print(baseline.line())
    ratio = baseline.median / figures[0][0].median if figures[0][0].median else float("inf")
    print(f"ratio {ratio:,.0f}x  (sequential-scan median / index median, selector)")
    for figure in pages:
        print(figure.line())

"""segments_preview_reach: what the reachable counts per channel (Email, SMS, WhatsApp, Viber,
RCS, Voice, Push: customers with the channel's address whom the Do Not Contact list does not
suppress) add to the preview, at a million customers and --entries list entries for their
e-mail addresses and phone numbers. Each tree is previewed (count and sample) with and without
the counts, and as the builder's follow-up request asks (counts per condition and reachable
counts), the calls alternating so that load from elsewhere weighs on all alike; the target is
that the counts add at most 30% to the preview's median."""

from __future__ import annotations

import argparse
import time

from bench.dataset import (
    add_dataset_arguments,
    drop_sent_jobs,
    ensure_demo_customers,
    ensure_demo_fields,
    finish,
)
from bench.scenarios import register, row_count
from bench.scenarios.event_queries import _plan
from bench.timing import Latency, fmt_ms, fmt_seconds

TARGET_RATIO = 1.30
WARMUP = 2
BENCH_NOTE = "bench-reach"  # the entries this scenario adds, removed again at the end

TREES = {
    "country is DE": {
        "type": "group",
        "match": "all",
        "children": [{"type": "attribute", "field": "country", "operator": "is", "value": "DE"}],
    },
    "attribute rules (4 conditions)": {
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
    },
    "is not on the list for Email (whole base)": {
        "type": "group",
        "match": "all",
        "children": [{"type": "do_not_contact", "operator": "is_not", "channel": "email"}],
    },
}
# The reachable count written by hand, to check the preview's (untimed, once per tree).
HAND_REACH = {
    "email": "c.email <> '' AND NOT EXISTS (SELECT 1 FROM donotcontact_entry d"
    " WHERE d.contact = c.email AND d.channel IN ('email', '') AND d.sender = ''"
    " AND d.account = '')",
    "sms": "c.phone <> '' AND NOT EXISTS (SELECT 1 FROM donotcontact_entry d"
    " WHERE d.contact = c.phone AND d.channel IN ('sms', '') AND d.sender = ''"
    " AND d.account = '')",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_arguments(parser)
    parser.add_argument(
        "--entries",
        type=row_count,
        default=50_000,
        help="Do Not Contact entries for the customers' addresses (default 50,000)",
    )
    parser.add_argument(
        "--calls",
        type=row_count,
        default=10,
        help="calls per figure, after 2 warm-up calls (default 10)",
    )


def _fill_entries(count: int) -> int:
    """Set-based: entries for evenly spread customers' addresses. Three in five name an
    e-mail address (Email); the rest a phone number, for every channel or SMS, WhatsApp or
    Push; one in ten of them for one sender only. Returns how many were stored."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM donotcontact_entry WHERE note = %s", [BENCH_NOTE])
        cursor.execute("SELECT max(id) FROM customers_customer")
        top = cursor.fetchone()[0] or 1
        step = max(1, top // max(count, 1))
        cursor.execute(
            "INSERT INTO donotcontact_entry"
            " (contact, channel, sender, account, source, reason, note, added_at)"
            " SELECT contact, channel, sender, '', 'import', '', %s, now() FROM ("
            "   SELECT CASE WHEN (c.id / %s) %% 5 < 3 AND c.email <> '' THEN c.email"
            "               ELSE c.phone END AS contact,"
            "          CASE WHEN (c.id / %s) %% 5 < 3 AND c.email <> '' THEN 'email'"
            "               ELSE (ARRAY['', 'sms', 'whatsapp', 'push'])[1 + (c.id / %s) %% 4]"
            "          END AS channel,"
            "          CASE WHEN (c.id / %s) %% 10 = 9 THEN 'Acme' ELSE '' END AS sender"
            "   FROM customers_customer c WHERE c.id %% %s = 0"
            " ) e WHERE contact <> ''"
            " ON CONFLICT DO NOTHING",
            [BENCH_NOTE, step, step, step, step, step],
        )
        stored = cursor.rowcount
        cursor.execute("VACUUM (ANALYZE) donotcontact_entry, donotcontact_suppressedphone")
    return stored


def _remove_entries() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM donotcontact_entry WHERE note = %s", [BENCH_NOTE])


def _hand_reach(tree: dict) -> dict[str, int]:
    from django.db import connection

    from segments.compiler import compile_rules
    from segments.query import compile_context

    where = compile_rules(tree, compile_context(tree, "UTC"))
    out = {}
    with connection.cursor() as cursor:
        for channel, condition in HAND_REACH.items():
            cursor.execute(
                f"SELECT count(*) FROM customers_customer c WHERE {where.sql} AND {condition}",  # noqa: S608
                where.params,
            )
            out[channel] = cursor.fetchone()[0]
    return out


def _alternating(tree: dict, calls: int) -> tuple[Latency, Latency, Latency, dict]:
    """Each round: the preview (count and sample) without the counts, which the builder shows
    first; with them, as the API answers by default; and the builder's follow-up request
    (the count after each condition and the reachable counts)."""
    from segments.query import preview

    plain, reach, details = [], [], []
    last: dict = {}
    for n in range(WARMUP + calls):
        for into, options in (
            (plain, {"steps": False, "reach": False}),
            (reach, {"steps": False, "reach": True}),
            (details, {"steps": True, "reach": True}),
        ):
            started = time.perf_counter()
            result = preview(tree, "UTC", **options)
            elapsed = time.perf_counter() - started
            if options["reach"]:
                if last and result.reachable != last["reachable"]:
                    raise SystemExit("two previews of the same rules reached differently")
                last = {"count": result.count, "reachable": result.reachable}
            if n >= WARMUP:
                into.append(elapsed)
    return (
        Latency("preview without reachable counts", plain),
        Latency("preview with reachable counts", reach),
        Latency("the builder's follow-up (count per condition and reachable counts)", details),
        last,
    )


@register(
    "segments_preview_reach",
    "what the reachable counts per channel (Do Not Contact) add to the builder's preview",
    default_size=1_000_000,
    add_arguments=add_arguments,
)
def run(args: argparse.Namespace) -> None:
    from django.db import connection

    from segments.compiler import compile_rules
    from segments.query import REACH_CHANNELS, _count_sql, compile_context
    from segments.services import segment_rules_clean

    ensure_demo_customers(args.size, args.seed)
    ensure_demo_fields()
    drop_sent_jobs()
    started = time.perf_counter()
    stored = _fill_entries(args.entries)
    print(
        f"data: {stored:,} Do Not Contact entries for customers' addresses"
        f" in {fmt_seconds(time.perf_counter() - started)}",
        flush=True,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_customer")
    lines: list[str] = []
    try:
        for label, raw in TREES.items():
            tree = segment_rules_clean(raw, "UTC")
            where = compile_rules(tree, compile_context(tree, "UTC"))
            plan = _plan(*_count_sql(where, True))
            print(f"{label}: plan with reach: {plan}", flush=True)
            plain, reach, details, last = _alternating(tree, args.calls)
            hand = _hand_reach(tree)
            for channel, n in hand.items():
                if last["reachable"][channel] != n:
                    raise SystemExit(
                        f"{label}: preview reached {last['reachable'][channel]:,} by {channel},"
                        f" the hand-written count {n:,}"
                    )
            ratio = reach.median / plain.median
            counts = ", ".join(f"{ch} {last['reachable'][ch]:,}" for ch in REACH_CHANNELS)
            block = [
                f"{label}: {last['count']:,} customers; reachable {counts}"
                " (email and sms agree with hand-written SQL)",
                f"  {plain.line()}",
                f"  {reach.line()}",
                f"  {details.line()}",
                f"  ratio {ratio:,.2f}x (with / without: {fmt_ms(reach.median)} /"
                f" {fmt_ms(plain.median)})  target <= {TARGET_RATIO:g}x:"
                f" {'met' if ratio <= TARGET_RATIO else 'MISSED'}",
                f"  in the builder the count shows after {fmt_ms(plain.median)} (the counts are"
                f" a second request, {fmt_ms(details.median)} with the counts per condition)",
            ]
            print("\n".join(block), flush=True)
            lines += block
    finally:
        _remove_entries()  # the list is this scenario's alone, kept data or not
    finish(args)
    print()
    for line in lines:
        print(line)

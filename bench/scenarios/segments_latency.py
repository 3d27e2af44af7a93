"""segments_latency: a profile change through the API (PUT /api/v1/customers/{user_id},
gunicorn) until the customer's membership row and segment-entered event are stored by the
Dramatiq worker (rundramatiq, 1 process, 4 threads), at a million customers and 20M events;
with the changed segment alone, then with the 48-segment mix and the two predefined ones."""

from __future__ import annotations

import argparse
import json
import os
import random
import time

from bench.dataset import (
    BENCH_NAMESPACE,
    DEMO_EVENTS,
    ApiClient,
    DramatiqWorker,
    Gunicorn,
    add_events_dataset_arguments,
    api_token,
    bench_member,
    finish,
    first_new_event_id,
    last_transition_id,
    random_customers,
    remove_added_events,
    remove_bench_segments,
    segment_mix_create,
    segment_new,
    segments_setup,
)
from bench.scenarios import register, row_count
from bench.timing import Latency, fmt_ms, fmt_seconds, time_each

TARGET_P95_S = 2
CITY = "Latencyville"
TIMEOUT_S = 60  # a change not visible by then counts as lost
WARMUP = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_events_dataset_arguments(parser)
    parser.add_argument(
        "--changes",
        type=row_count,
        default=50,
        help="profile changes a round, one customer each (default 50)",
    )
    parser.add_argument(
        "--no-mix",
        action="store_true",
        help="skip the second round with the 48-segment mix (its set-up takes minutes)",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")


def visible(segment_id: int, customer_id: int, entered_type: int, first_event: int) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM segments_membership"
            "               WHERE segment_id = %(s)s AND customer_id = %(c)s)"
            " AND EXISTS (SELECT 1 FROM events_event WHERE customer_id = %(c)s"
            "             AND event_type_id = %(t)s AND id >= %(first)s"
            "             AND properties->>'segment_id' = %(s_text)s)",
            {
                "s": segment_id,
                "c": customer_id,
                "t": entered_type,
                "first": first_event,
                "s_text": str(segment_id),
            },
        )
        return cursor.fetchone()[0]


class Round:
    def __init__(self, label: str) -> None:
        self.label = label
        self.seen: list[float] = []  # PUT sent → membership and event stored
        self.answered: list[float] = []  # PUT sent → 200
        self.lost = 0
        self.evaluate: Latency | None = None  # one customer, in this process


def evaluate_one(customers: list[tuple[int, str, str]]) -> Latency:
    """What the worker's drain does for one changed customer, timed in this process (no
    broker, no polling): customers_evaluate with the kinds a profile PUT marks. Run after
    the round, so nothing changes and nothing is written."""
    from segments.fields import ChangeKind
    from segments.incremental import customers_evaluate

    kinds = ChangeKind.PROFILE | ChangeKind.TAGS
    return time_each(
        "customers_evaluate(one customer, PROFILE | TAGS)",
        customers[:2] + customers,
        lambda customer: customers_evaluate([customer[0]], kinds),
        warmup=2,
    )


def change_round(
    round_: Round,
    port: int,
    token: str,
    customers: list[tuple[int, str, str]],
    segment_id: int,
    first_event: int,
    rng: random.Random,
    warmup: int = 0,
) -> None:
    """One customer at a time: PUT the city that makes them enter, then poll (every 5 ms)
    until both rows are there; a pause of 0.2–0.6 s between changes, so each drain sees one
    customer as a lone API change would."""
    from segments.membership import system_event_ids

    entered_type = system_event_ids()[0]
    api = ApiClient(port, token)
    body = json.dumps({"city": CITY}).encode()
    try:
        for n, (pk, user_id, _) in enumerate(customers):
            started = time.perf_counter()
            status, raw = api.request("PUT", f"/api/v1/customers/{user_id}", body)
            answered = time.perf_counter() - started
            if status != 200:
                raise SystemExit(f"PUT /api/v1/customers/{user_id}: {status} {raw[:300]!r}")
            while not visible(segment_id, pk, entered_type, first_event):
                if time.perf_counter() - started > TIMEOUT_S:
                    round_.lost += n >= warmup
                    break
                time.sleep(0.005)
            else:
                if n >= warmup:
                    round_.seen.append(time.perf_counter() - started)
                    round_.answered.append(answered)
            time.sleep(rng.uniform(0.2, 0.6))
    finally:
        api.close()


def restore(rows: list[tuple]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE customers_customer c SET city = r.city, updated_at = r.updated_at"
            " FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[]) AS r(id, city, updated_at)"
            " WHERE c.id = r.id",
            [[r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]],
        )


@register(
    "segments_latency",
    "PUT /api/v1/customers/{user_id} through gunicorn until the Dramatiq worker has stored the"
    " membership and the segment-entered event; p50/p95/max",
    default_size=DEMO_EVENTS,
    add_arguments=add_arguments,
)
def run(args: argparse.Namespace) -> None:
    from django.core.cache import cache
    from django.db import connection

    from segments.incremental import DRAIN_QUEUED_KEY
    from segments.membership import segment_build

    segments_setup(args)
    after_transition = last_transition_id()
    first_new_id = first_new_event_id()
    token = api_token(bench_member())
    rng = random.Random(args.seed)

    rounds = [("the changed segment alone", False)]
    if not args.no_mix:
        rounds.append(("with 50 more segments (48 bench, 2 predefined)", True))
    per_round = WARMUP + args.changes
    picked = random_customers(per_round * len(rounds) * 2, args.seed)
    picked = [c for c in {c[0]: c for c in picked}.values()][: per_round * len(rounds)]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, city, updated_at FROM customers_customer WHERE id = ANY(%s)",
            [[c[0] for c in picked]],
        )
        saved = cursor.fetchall()
    if any(city == CITY for _, city, _ in saved):
        raise SystemExit(f"a customer already lives in {CITY}: a run was interrupted?")

    results: list[Round] = []
    try:
        segment = segment_new(
            "latency",
            {
                "type": "group",
                "match": "all",
                "children": [
                    {"type": "attribute", "field": "city", "operator": "is", "value": CITY}
                ],
            },
        )
        segment_build(segment.pk)
        # The server and the worker send and take messages on their own namespace.
        os.environ["DRAMATIQ_NAMESPACE"] = BENCH_NAMESPACE
        cache.delete(DRAIN_QUEUED_KEY)  # a flag left by another process would hold the send
        with Gunicorn(args.workers) as server, DramatiqWorker(processes=1, threads=4) as worker:
            for n, (label, mix) in enumerate(rounds):
                if mix:
                    segment_mix_create()
                customers = picked[n * per_round : (n + 1) * per_round]
                round_ = Round(label)
                started = time.perf_counter()
                change_round(
                    round_, server.port, token, customers, segment.pk, first_new_id, rng, WARMUP
                )
                round_.evaluate = evaluate_one(customers)
                results.append(round_)
                if round_.seen:
                    one = Latency("", round_.seen)
                    print(
                        f"  {label}: {len(round_.seen)} changes in"
                        f" {fmt_seconds(time.perf_counter() - started)}, p50 {fmt_ms(one.median)},"
                        f" p95 {fmt_ms(one.percentile(0.95))}, lost {round_.lost}",
                        flush=True,
                    )
            if any(r.lost for r in results):
                print(worker.output()[-3000:])
    finally:
        restore(saved)
        remove_bench_segments(after_transition)
        remove_added_events(first_new_id)
    finish(args)

    print()
    for round_ in results:
        seen, answered = Latency("", round_.seen), Latency("", round_.answered)
        p95 = seen.percentile(0.95)
        met = "met" if p95 < TARGET_P95_S and not round_.lost else "MISSED"
        print(
            f"PUT /api/v1/customers/{{user_id}} → membership + segment-entered event stored,"
            f" {round_.label}  size={args.customers:,}  p50 {fmt_ms(seen.median)}"
            f"  p95 {fmt_ms(p95)}  max {fmt_ms(max(round_.seen))}"
            f"  ({len(round_.seen)} changes, {round_.lost} lost)"
            f"  target p95 < {TARGET_P95_S} s: {met}"
        )
        print(
            f"  the PUT alone: p50 {fmt_ms(answered.median)}, p95"
            f" {fmt_ms(answered.percentile(0.95))}, max {fmt_ms(max(round_.answered))}"
        )
        print(f"  the drain's work in-process: {round_.evaluate.line()}")

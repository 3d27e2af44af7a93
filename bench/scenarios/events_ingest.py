"""events_ingest: sustained batch ingestion through the real HTTP API (gunicorn against the
bench database, concurrent clients POSTing 1,000-event bodies to /api/v1/events) on top of a
million customers and 20M events; baseline a naive per-event ORM loop."""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import threading
import time
from datetime import UTC, datetime

from bench.dataset import (
    DEMO_EVENTS,
    ApiClient,
    EventMaker,
    Gunicorn,
    active_customers,
    add_events_dataset_arguments,
    api_token,
    bench_member,
    ensure_demo_customers,
    ensure_demo_events,
    finish,
    first_new_event_id,
    remove_added_events,
)
from bench.scenarios import register, row_count
from bench.timing import fmt_ms, fmt_seconds, measure, rate_line

BATCH = 1000
PATH = "/api/v1/events"
TARGET_PER_SECOND = 20_000
BODIES = 240  # distinct request bodies, each sent with fresh client ids and new user IDs
TAG = "@@"  # stands in the bodies for what makes each send unique


def _counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_events_dataset_arguments(parser)
    parser.add_argument(
        "--workers",
        type=_counts,
        default=[2, 3, 4],
        help="gunicorn worker counts to try, comma-separated (default 2,3,4)",
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=0,
        help="concurrent clients (default: twice the workers)",
    )
    parser.add_argument("--seconds", type=float, default=30, help="length of each run (default 30)")
    parser.add_argument(
        "--baseline-events",
        type=row_count,
        default=2000,
        help="events for the naive per-event ORM loop (default 2,000; 0 skips it)",
    )


def make_bodies(user_ids: list[str], seed: int) -> list[bytes]:
    """``BODIES`` request bodies of ``BATCH`` events; ``TAG`` in their client ids and new user
    IDs is replaced at each send."""
    maker = EventMaker(user_ids, TAG, seed)
    now = datetime.now(UTC)
    return [
        json.dumps({"events": [maker.event(now) for _ in range(BATCH)]}).encode()
        for _ in range(BODIES)
    ]


class Run:
    """One sustained run: ``clients`` threads POSTing bodies back to back for ``seconds``."""

    def __init__(self, port: int, token: str, bodies: list[bytes], run_tag: str) -> None:
        self.port, self.token, self.bodies, self.run_tag = port, token, bodies, run_tag
        self.sends = itertools.count()
        self.latencies: list[float] = []
        self.events = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def client(self, stop_at: float) -> None:
        api = ApiClient(self.port, self.token)
        latencies, events = [], 0
        try:
            while time.perf_counter() < stop_at and not self.errors:
                n = next(self.sends)
                body = self.bodies[n % len(self.bodies)].replace(
                    TAG.encode(), f"{self.run_tag}x{n}".encode()
                )
                started = time.perf_counter()
                status, raw = api.post(PATH, body)
                latencies.append(time.perf_counter() - started)
                answer = json.loads(raw) if status == 200 else {}
                if (answer.get("accepted"), answer.get("rejected")) != (BATCH, 0) or len(
                    answer.get("results", ())
                ) != BATCH:
                    self.errors.append(f"{status} {raw[:300]!r}")
                    break
                events += BATCH
        except OSError as exc:
            self.errors.append(repr(exc))
        finally:
            api.close()
            with self.lock:
                self.latencies += latencies
                self.events += events

    def go(self, clients: int, seconds: float) -> float:
        started = time.perf_counter()
        threads = [
            threading.Thread(target=self.client, args=(started + seconds,)) for _ in range(clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.errors:
            raise SystemExit(f"POST {PATH}: {self.errors[0]}")
        return time.perf_counter() - started


def naive_ingest(raw_events: list[dict]) -> int:
    """The baseline: per event, the same validation, then the ORM one row at a time: find or
    create the customer and the event type, skip a client id already stored, create the event,
    save the customer's analytics fields and bump the catalog row."""
    from django.db.models import F
    from django.db.models.functions import Greatest, Least
    from django.utils import timezone

    from customers.models import Customer
    from events.analytics import DEVICE_SUMMARY, PLATFORM_FIELDS, SEEN_FIELDS
    from events.models import Event, EventType
    from events.validation import event_clean

    now = timezone.now()
    stored = 0
    for raw in raw_events:
        event = event_clean(raw, now=now)
        customer, _ = Customer.objects.get_or_create(user_id=event.user_id)
        event_type, _ = EventType.objects.get_or_create(name=event.name)
        if (
            event.client_id is not None
            and Event.objects.filter(customer=customer, client_id=event.client_id).exists()
        ):
            continue
        at = event.occurred_at
        Event.objects.create(
            customer=customer,
            event_type=event_type,
            occurred_at=at,
            client_id=event.client_id,
            properties=event.properties,
            context=event.context,
        )
        customer.first_seen = min(customer.first_seen or at, at)
        customer.last_seen = max(customer.last_seen or at, at)
        fields = ["first_seen", "last_seen"]
        if event.platform:
            seen = SEEN_FIELDS[event.platform]
            if getattr(customer, seen) is None or at > getattr(customer, seen):
                setattr(customer, seen, at)
                fields.append(seen)
                for key, column in PLATFORM_FIELDS[event.platform].items():
                    if key != DEVICE_SUMMARY and event.context.get(key) is not None:
                        setattr(customer, column, str(event.context[key]).strip())
                        fields.append(column)
        customer.save(update_fields=fields)
        EventType.objects.filter(pk=event_type.pk).update(
            event_count=F("event_count") + 1,
            first_seen=Least(F("first_seen"), at),
            last_seen=Greatest(F("last_seen"), at),
        )
        stored += 1
    return stored


@register(
    "events_ingest",
    "POST /api/v1/events through gunicorn, 1,000 events a request, sustained;"
    " baseline a naive per-event ORM loop",
    default_size=DEMO_EVENTS,
    add_arguments=add_arguments,
)
def run(args: argparse.Namespace) -> None:
    from django.db import connection

    from activity.services import Actor
    from events.ingest import events_ingest
    from tags.models import Source

    ensure_demo_customers(args.customers, args.seed)
    ensure_demo_events(args.size, args.seed)
    member = bench_member()
    token = api_token(member)
    first_new_id = first_new_event_id()
    user_ids = active_customers(50_000, args.seed)
    started = time.perf_counter()
    bodies = make_bodies(user_ids, args.seed)
    print(
        f"bodies: {len(bodies)} of {BATCH:,} events ({len(bodies[0]) / 1024:,.0f} KB each),"
        f" made in {fmt_seconds(time.perf_counter() - started)}",
        flush=True,
    )

    results = []  # (workers, clients, [events/s per run], [request latencies])
    accepted = 0
    try:
        for workers in args.workers:
            clients = args.clients or 2 * workers
            with Gunicorn(workers) as server:
                # Warm-up, untimed: every worker imports, connects and caches.
                warm = Run(server.port, token, bodies, f"w{workers}warm")
                warm.go(clients, 3)
                accepted += warm.events
                rates, latencies = [], []
                for n in range(args.repeat):
                    load = Run(server.port, token, bodies, f"w{workers}r{n}")
                    elapsed = load.go(clients, args.seconds)
                    rates.append(load.events / elapsed)
                    accepted += load.events
                    latencies += load.latencies
                    print(
                        f"  {workers} workers, {clients} clients, run {n + 1}/{args.repeat}:"
                        f" {load.events:,} events in {fmt_seconds(elapsed)},"
                        f" {load.events / elapsed:,.0f} events/s",
                        flush=True,
                    )
            results.append((workers, clients, rates, latencies))
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM events_event WHERE id >= %s", [first_new_id])
            stored = cursor.fetchone()[0]
        if stored != accepted:
            raise SystemExit(f"{accepted:,} events accepted over HTTP but {stored:,} stored")

        # In-process, for scale: the service alone (no HTTP, JSON or gunicorn).
        actor = Actor(Source.API, member=member)
        batches = [json.loads(body.replace(TAG.encode(), b"svc"))["events"] for body in bodies[:10]]
        counter = itertools.count()

        def service() -> int:
            tag = next(counter)
            done = 0
            for raw in batches:
                for event in raw:
                    if "id" in event:
                        event["id"] = f"{event['id']}-{tag}"
                done += events_ingest(raw, actor=actor).stored
            return done

        in_process = measure(
            f"events_ingest in-process, {len(batches)} batches of {BATCH:,}",
            len(batches) * BATCH,
            service,
            repeat=args.repeat,
        )

        baseline = None
        if args.baseline_events:
            maker = EventMaker(user_ids, "naive", args.seed + 1)
            samples = iter(range(10**9))

            def naive() -> int:
                tag = next(samples)
                now = datetime.now(UTC)
                sample = [maker.event(now) for _ in range(args.baseline_events)]
                for event in sample:
                    event["user_id"] = event["user_id"].replace("naive", f"naive{tag}")
                return naive_ingest(sample)

            baseline = measure(
                "baseline naive per-event ORM loop",
                args.baseline_events,
                naive,
                repeat=args.repeat,
            )
    finally:
        remove_added_events(first_new_id)
    finish(args)

    print()
    best = None
    for workers, clients, rates, latencies in results:
        median = statistics.median(rates)
        ordered = sorted(latencies)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        met = "met" if median >= TARGET_PER_SECOND else "MISSED"
        print(
            f"POST {PATH} via gunicorn, {workers} workers, {clients} clients, {BATCH:,} events"
            f" a request  median {median:,.0f} events/s  (min {min(rates):,.0f} .. max"
            f" {max(rates):,.0f}, {len(rates)} runs of {args.seconds:g} s; per request median"
            f" {fmt_ms(statistics.median(latencies))}, p95 {fmt_ms(p95)})"
            f"  target >= {TARGET_PER_SECOND:,} events/s: {met}"
        )
        if best is None or median > best[0]:
            best = (median, workers)
    print(f"  every answer 200 with {BATCH:,} of {BATCH:,} accepted; {stored:,} new rows stored")
    print(rate_line(in_process, "events"))
    if baseline is not None and best is not None:
        print(rate_line(baseline, "events"))
        print(
            f"ratio {best[0] / baseline.rate:,.1f}x  (HTTP with {best[1]} workers events/s"
            f" / naive ORM loop events/s)"
        )

"""webhooks_delivery: a segment build over the demo customers produces ``--size`` transitions
(default 10,000: "user ID starts with demo-7-000"); the relay turns them into batched
deliveries (``--batch``, default 100 per request) and the senders POST them, signed, to a local
receiver (a threaded http.server in this process that verifies every signature and counts
each transition once). Timed from the end of the build until the receiver holds every
transition. The relay and senders run in this process as a worker runs them
(``relay_transitions`` then ``send_webhooks`` until nothing is due; the senders post 16
requests at a time). Also: the same build with no endpoint and with ``--endpoints`` enabled
endpoints, which shows what the relay's wake-up costs a build (it must add nothing
measurable: the build never waits for the relay). Target: 10,000 delivered in < 60 s."""

from __future__ import annotations

import argparse
import math

from bench.dataset import (
    DEMO_CUSTOMERS,
    add_dataset_arguments,
    drop_sent_jobs,
    ensure_demo_customers,
    finish,
    first_new_event_id,
    remove_added_events,
    remove_bench_segments,
    segment_new,
)
from bench.scenarios import register, row_count
from bench.timing import Figure, measure, ratio_line

TARGET_SECONDS = 60


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_arguments(parser)
    parser.add_argument(
        "--customers",
        type=row_count,
        default=DEMO_CUSTOMERS,
        help=f"demo customers (default {DEMO_CUSTOMERS:,})",
    )
    parser.add_argument("--batch", type=int, default=100, help="transitions per request")
    parser.add_argument(
        "--endpoints", type=int, default=3, help="enabled endpoints for the build comparison"
    )
    parser.add_argument(
        "--no-worker",
        dest="worker",
        action="store_false",
        help="skip the run through a real Dramatiq worker (woken by the build's commits)",
    )


def _rules(size: int, seed: int) -> dict:
    """User IDs are demo-<seed>-<7 digits>: a prefix selects a power of ten of them."""
    digits = 7 - round(math.log10(size))
    prefix = f"demo-{seed}-" + "0" * digits
    return {
        "type": "group",
        "match": "all",
        "children": [
            {"type": "attribute", "field": "user_id", "operator": "starts_with", "value": prefix}
        ],
    }


class Receiver:
    """A local webhook receiver that verifies each request and records the transitions."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from webhooks import signing

        self.secret = ""
        self.items: dict[int, int] = {}
        self.webhook_ids: set[str] = set()
        self.bad = 0
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                import json

                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    signing.verify(receiver.secret, dict(self.headers.items()), body)
                except signing.SignatureInvalid:
                    with lock:
                        receiver.bad += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                data = json.loads(body)["data"]
                with lock:
                    receiver.webhook_ids.add(self.headers["webhook-id"])
                    for item in data:
                        receiver.items[item["id"]] = receiver.items.get(item["id"], 0) + 1
                self.send_response(204)
                self.end_headers()

        class Server(ThreadingHTTPServer):
            request_queue_size = 128
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def reset(self, secret: str) -> None:
        self.secret, self.items, self.webhook_ids, self.bad = secret, {}, set(), 0

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Trial:
    """A new segment before each run (untimed); the previous one, its transitions, membership
    and timeline events deleted first."""

    def __init__(self, rules: dict) -> None:
        self.rules = rules
        self.n = 0
        self.segment = None
        self.first_event = 0

    def fresh(self) -> None:
        self.discard()
        self.n += 1
        self.first_event = first_new_event_id()
        self.segment = segment_new(f"webhooks {self.n}", self.rules)

    def discard(self) -> None:
        from django.db import connection

        if self.segment is None:
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM segments_transition WHERE segment_id = %s", [self.segment.pk]
            )
            cursor.execute(
                "DELETE FROM segments_membership WHERE segment_id = %s", [self.segment.pk]
            )
            cursor.execute("DELETE FROM events_event WHERE id >= %s", [self.first_event])
        self.segment.delete()
        self.segment = None

    def transition_ids(self) -> set[int]:
        from segments.models import Transition

        return set(
            Transition.objects.filter(segment_id=self.segment.pk).values_list("id", flat=True)
        )


def _with_worker(args, trial, receiver, endpoints_drop, endpoints_make, built) -> list[str]:
    """The whole path as in production: ``manage.py rundramatiq`` in a subprocess, woken only
    by the build's own commits (relay_wake → relay_transitions → send_webhooks). Timed from
    the start of the build until the receiver holds every transition."""
    import os
    import time

    from django.conf import settings
    from django.core.cache import cache
    from dramatiq.brokers.redis import RedisBroker

    from bench.dataset import BENCH_NAMESPACE, DramatiqWorker
    from segments.membership import segment_build
    from webhooks import delivery, relay
    from webhooks.tasks import relay_transitions, send_webhooks

    os.environ["WEBHOOKS_ALLOW_LOOPBACK"] = "1"  # for the worker: the receiver is local
    broker = RedisBroker(url=settings.REDIS_URL, namespace=BENCH_NAMESPACE)
    for actor in (relay_transitions, send_webhooks):  # this process sends to that worker
        actor.broker = broker
        broker.declare_actor(actor)
    after_build: list[float] = []

    def setup() -> None:
        endpoints_drop()
        trial.fresh()
        endpoints_make(1, args.batch)
        cache.delete_many([relay.RELAY_QUEUED_KEY, delivery.SEND_QUEUED_KEY])

    def run_through() -> int:
        started = time.perf_counter()
        built(segment_build(trial.segment.pk))
        build_done = time.perf_counter()
        deadline = build_done + 120
        while len(receiver.items) < args.size and time.perf_counter() < deadline:
            time.sleep(0.005)
        after_build.append(time.perf_counter() - build_done)
        return int(time.perf_counter() - started)

    def complete(_) -> None:
        if set(receiver.items) != trial.transition_ids() or receiver.bad:
            raise SystemExit(f"worker: {len(receiver.items):,} of {args.size:,} received")

    with DramatiqWorker(processes=1, threads=4):
        whole = measure(
            "build + relay + delivery through a Dramatiq worker",
            args.size,
            run_through,
            repeat=args.repeat,
            setup=setup,
            check=complete,
        )
    endpoints_drop()
    tail = Figure("  of which after the build committed", args.size, after_build)
    met = "met" if whole.median < TARGET_SECONDS else "MISSED"
    return [f"{whole.line()}  target < {TARGET_SECONDS} s: {met}", tail.line()]


@register(
    "webhooks_delivery",
    "a segment build's transitions relayed and delivered in batches to a local receiver;"
    " the same build with and without enabled endpoints",
    default_size=10_000,
    add_arguments=add_arguments,
)
def run(args: argparse.Namespace) -> None:
    from django.conf import settings

    from activity.services import Actor
    from segments.membership import segment_build
    from webhooks import delivery, relay
    from webhooks.models import Endpoint
    from webhooks.services import EndpointData, endpoint_create

    if args.size < 1 or 10 ** round(math.log10(args.size)) != args.size or args.size > 10**6:
        raise SystemExit("--size must be a power of ten up to 1,000,000 (user ID prefixes)")
    ensure_demo_customers(args.customers, args.seed)
    drop_sent_jobs()  # the wake-ups after each build: this process runs the relay itself
    remove_bench_segments()
    first_new_id = first_new_event_id()
    settings.WEBHOOKS_ALLOW_LOOPBACK = True  # the receiver is on this machine
    receiver = Receiver()
    actor = Actor.system("Bench")
    trial = Trial(_rules(args.size, args.seed))

    def endpoints_make(count: int, batch: int) -> list[Endpoint]:
        made = []
        for i in range(count):
            endpoint, secret = endpoint_create(
                data=EndpointData(
                    url=receiver.url,
                    description=f"bench {i}",
                    events=["segment-entered", "segment-exited"],
                    profile_fields=["email", "country"],
                    batch_size=batch,
                ),
                actor=actor,
            )
            receiver.reset(secret)
            made.append(endpoint)
        return made

    def endpoints_drop() -> None:
        Endpoint.objects.filter(description__startswith="bench ").delete()

    def built(result) -> None:
        if result.status != "built" or len(result.changes.entered) != args.size:
            raise SystemExit(f"build: {result.status}, {len(result.changes.entered):,} entered")

    lines: list[str] = []
    try:
        # Alternating runs, so both see the tables in the same state (every run leaves dead
        # rows behind) and the load of whatever else runs on the machine evenly.
        plain = Figure("segment_build, no webhook endpoint", args.size, [])
        hooked = Figure(f"segment_build, {args.endpoints} enabled endpoints", args.size, [])
        for _ in range(args.repeat):
            for figure, count in ((plain, 0), (hooked, args.endpoints)):
                endpoints_drop()
                endpoints_make(count, args.batch)
                figure.seconds += measure(
                    figure.label,
                    args.size,
                    lambda: segment_build(trial.segment.pk),
                    repeat=1,
                    setup=trial.fresh,
                    check=built,
                ).seconds
        endpoints_drop()

        # What a build pays per transaction that wrote transitions: one on_commit wake-up (a
        # Redis SET NX; the message itself is sent by at most one of them a minute).
        wakes = 1000
        wake = measure(
            f"relay_wake x {wakes:,}",
            wakes,
            lambda: [relay.relay_wake() for _ in range(wakes)],
            repeat=args.repeat,
        )

        def deliver_setup() -> None:
            endpoints_drop()
            trial.fresh()
            endpoints_make(1, args.batch)  # starts after every transition so far
            built(segment_build(trial.segment.pk))

        def deliver() -> int:
            # As a worker runs relay_transitions, then send_webhooks until nothing is due.
            created = relay.relay_run()
            while delivery.send_due():
                pass
            return created

        def delivered(created: int) -> None:
            want = trial.transition_ids()
            got = set(receiver.items)
            if receiver.bad or got != want or max(receiver.items.values()) != 1:
                raise SystemExit(
                    f"delivery: {len(got):,} of {len(want):,} transitions received,"
                    f" {receiver.bad} bad signatures"
                )
            if len(receiver.webhook_ids) != created:
                raise SystemExit(f"{created} deliveries but {len(receiver.webhook_ids)} ids")

        delivery_figure = measure(
            f"relay + delivery, batches of {args.batch}",
            args.size,
            deliver,
            repeat=args.repeat,
            setup=deliver_setup,
            check=delivered,
        )
        met = "met" if delivery_figure.median < TARGET_SECONDS else "MISSED"
        lines += [
            f"{plain.line()}",
            f"{hooked.line()}",
            f"  {ratio_line(hooked, plain)}  (1.0x: the relay adds nothing to a build)",
            f"{wake.line()}  ({wake.median / wakes * 1e6:,.0f} µs per build chunk that"
            " wrote transitions)",
            f"{delivery_figure.line()}  target < {TARGET_SECONDS} s: {met}",
        ]
        if args.worker:
            lines += _with_worker(args, trial, receiver, endpoints_drop, endpoints_make, built)
    finally:
        trial.discard()
        endpoints_drop()
        receiver.close()
        remove_bench_segments()
        remove_added_events(first_new_id)
    finish(args)

    print()
    for line in lines:
        print(line)
    print(
        "(every delivery run checked: each transition received exactly once, under one"
        " webhook-id per delivery, every signature verified)"
    )

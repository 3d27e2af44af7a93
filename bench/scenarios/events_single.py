"""events_single: one event a request to POST /api/v1/events at a fixed open-loop rate (100
requests/s) through gunicorn, on top of a million customers and 20M events; latency
percentiles, counted from when each request was due (a slow answer delays nothing else)."""

from __future__ import annotations

import argparse
import json
import queue
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
from bench.scenarios import register
from bench.timing import Latency, fmt_ms, fmt_seconds

PATH = "/api/v1/events"
TARGET_P95_MS = 50
SENDERS = 16  # threads, so a slow answer never holds back the next request


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_events_dataset_arguments(parser)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--rate", type=float, default=100, help="requests per second (default 100)")
    parser.add_argument("--seconds", type=float, default=30, help="length of each run (default 30)")


def _send(port: int, token: str, work: queue.Queue, done: list, errors: list) -> None:
    api = ApiClient(port, token)
    try:
        while (item := work.get()) is not None:
            due, body = item
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            status, raw = api.post(PATH, body)
            finished = time.perf_counter()
            answer = json.loads(raw) if status == 200 else {}
            if (answer.get("accepted"), answer.get("rejected")) != (1, 0):
                errors.append(f"{status} {raw[:300]!r}")
            done.append(finished - due)
    finally:
        api.close()


def open_loop(port: int, token: str, bodies: list[bytes], rate: float, seconds: float):
    """Request n is due at start + n / rate; a pool of senders takes them in order. Returns
    each request's time from due to answered."""
    work: queue.Queue = queue.Queue()
    done: list[float] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=_send, args=(port, token, work, done, errors))
        for _ in range(SENDERS)
    ]
    for thread in threads:
        thread.start()
    start = time.perf_counter() + 0.2
    for n, body in enumerate(bodies[: int(rate * seconds)]):
        work.put((start + n / rate, body))
    for _ in threads:
        work.put(None)
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"POST {PATH}: {errors[0]}")
    return done


@register(
    "events_single",
    "POST /api/v1/events one event a request at a fixed 100 requests/s through gunicorn;"
    " latency percentiles",
    default_size=DEMO_EVENTS,
    add_arguments=add_arguments,
)
def run(args: argparse.Namespace) -> None:

    ensure_demo_customers(args.customers, args.seed)
    ensure_demo_events(args.size, args.seed)
    token = api_token(bench_member())
    first_new_id = first_new_event_id()
    maker = EventMaker(active_customers(50_000, args.seed), "single", args.seed)
    per_run = int(args.rate * args.seconds)

    def bodies(count: int) -> list[bytes]:
        now = datetime.now(UTC)
        return [json.dumps(maker.event(now)).encode() for _ in range(count)]

    seconds: list[float] = []
    try:
        with Gunicorn(args.workers) as server:
            open_loop(server.port, token, bodies(200), args.rate, 2)  # warm-up, untimed
            for n in range(args.repeat):
                run_bodies = bodies(per_run)
                started = time.perf_counter()
                latencies = open_loop(server.port, token, run_bodies, args.rate, args.seconds)
                elapsed = time.perf_counter() - started
                seconds += latencies
                one = Latency("", latencies)
                print(
                    f"  run {n + 1}/{args.repeat}: {len(latencies):,} requests in"
                    f" {fmt_seconds(elapsed)}, p50 {fmt_ms(one.median)},"
                    f" p95 {fmt_ms(one.percentile(0.95))}, p99 {fmt_ms(one.percentile(0.99))}",
                    flush=True,
                )
    finally:
        remove_added_events(first_new_id)
    finish(args)

    figure = Latency(
        f"POST {PATH}, one event a request, {args.rate:g} requests/s open loop,"
        f" gunicorn {args.workers} workers",
        seconds,
        args.size,
    )
    p95 = figure.percentile(0.95)
    print()
    print(
        f"{figure.label}  size={args.size:,}  p50 {fmt_ms(figure.median)}"
        f"  p95 {fmt_ms(p95)}  p99 {fmt_ms(figure.percentile(0.99))}"
        f"  (max {fmt_ms(max(seconds))}, {len(seconds):,} requests)"
        f"  target p95 < {TARGET_P95_MS} ms: {'met' if p95 * 1000 < TARGET_P95_MS else 'MISSED'}"
    )

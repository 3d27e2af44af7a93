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
import zlib

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


# --- Events ------------------------------------------------------------------------------------
DEMO_CUSTOMERS = 1_000_000
DEMO_EVENTS = 20_000_000
NEW_EVENT_CUSTOMERS = "bench-events-new-"  # user ID prefix of customers the event scenarios make


def add_events_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """The event scenarios' data: ``--size`` events (the scenario's default size) over
    ``--customers`` demo customers, both of seed ``--seed``."""
    from bench.scenarios import row_count

    add_dataset_arguments(parser)
    parser.add_argument(
        "--customers",
        type=row_count,
        default=DEMO_CUSTOMERS,
        help=f"demo customers the events belong to (default {DEMO_CUSTOMERS:,})",
    )


def empty_events() -> None:
    from django.db import connection

    from events.catalog import catalog_recount

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE events_event")
    catalog_recount()


def ensure_demo_events(size: int, seed: int = DEMO_SEED) -> None:
    """Make events_event hold exactly the demo generator's ``size`` events of ``seed`` (over
    the customers there are): reuse the table when it does, else empty it and generate
    (about three minutes for 20M)."""
    from django.db import connection

    from events.demo_data import client_id_prefix, generate_events

    with connection.cursor() as cursor:
        # One pass over the table (a few seconds at 20M rows).
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE client_id LIKE %s) FROM events_event",
            [client_id_prefix(seed) + "%"],
        )
        total, demo = cursor.fetchone()
    if total == demo == size:
        print(f"data: reusing {size:,} demo events (seed {seed})", flush=True)
        return
    empty_events()
    result = generate_events(size, seed=seed)
    print(
        f"data: generated {result.created:,} demo events (seed {seed}) for"
        f" {result.customers:,} customers in {fmt_seconds(result.seconds)}",
        flush=True,
    )


def bench_database_url() -> str:
    """A DATABASE_URL for the benchmark database, for a server started as a subprocess."""
    from urllib.parse import quote

    from django.conf import settings

    db = settings.DATABASES["default"]
    user = quote(db.get("USER") or "", safe="")
    password = f":{quote(str(db['PASSWORD']), safe='')}" if db.get("PASSWORD") else ""
    host = str(db.get("HOST") or "")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    if host.startswith("/"):  # a socket directory (the embedded server)
        return f"postgresql://{user}{password}@{port}/{db['NAME']}?host={quote(host, safe='')}"
    return f"postgresql://{user}{password}@{host}{port}/{db['NAME']}"


class Gunicorn:
    """``gunicorn workbench.wsgi`` as a subprocess against the benchmark database, with
    DEBUG off (no query log) and the API rate limit lifted; the rest of the settings are the
    development ones (production would also want collected static files and HTTPS)."""

    def __init__(self, workers: int, port: int = 0) -> None:
        self.workers = workers
        self.port = port or _free_port()
        self.process = None

    def __enter__(self) -> Gunicorn:
        import os
        import subprocess
        import sys
        from pathlib import Path

        from django.conf import settings

        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "workbench.settings",
            "DATABASE_URL": bench_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "DJANGO_DEBUG": "0",
            "API_RATE_LIMIT_PER_MINUTE": str(10**9),
            "LOG_LEVEL": "WARNING",
        }
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.process = subprocess.Popen(
            [
                str(gunicorn),
                "workbench.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--worker-class",
                "sync",
                "--timeout",
                "120",
                "--log-level",
                "warning",
            ],  # fmt: skip
            cwd=settings.BASE_DIR,
            env=env,
        )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 60) -> None:
        import http.client

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.process.returncode}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("gunicorn did not answer within a minute")

    def __exit__(self, *exc) -> None:
        import subprocess

        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ApiClient:
    """One keep-alive HTTP connection posting JSON with a bearer token (reconnects when the
    server closes the connection, as gunicorn's sync workers do after each response)."""

    def __init__(self, port: int, token: str) -> None:
        import http.client

        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        import http.client

        for attempt in range(2):
            try:
                self.connection.request("POST", path, body=body, headers=self.headers)
                response = self.connection.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.connection.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.connection.close()


def active_customers(count: int, seed: int) -> list[str]:
    """User IDs of up to ``count`` customers drawn as events meet them (weighted by how many
    events each has): a sample of the events table's pages."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.user_id FROM events_event e TABLESAMPLE SYSTEM (0.5) REPEATABLE (%s)"
            " JOIN customers_customer c ON c.id = e.customer_id LIMIT %s",
            [seed, count],
        )
        user_ids = [row[0] for row in cursor.fetchall()]
    random.Random(seed).shuffle(user_ids)
    return user_ids


class EventMaker:
    """Events as an API client sends them, for existing demo customers (and a few new user
    IDs): the demo generator's names and properties, a context per customer, moments in the
    last two minutes, three in five with a client id (``<tag>-<n>``, unique per maker)."""

    def __init__(self, user_ids: list[str], tag: str, seed: int, new_share: float = 0.01):
        from events.demo_data import MOBILE_MIX, WEB_MIX, _context, _properties

        self.rng = random.Random(seed)
        self.user_ids, self.tag, self.new_share = user_ids, tag, new_share
        self.properties = _properties
        self.mixes = {
            "mobile": ([n for n, _ in MOBILE_MIX], [w for _, w in MOBILE_MIX]),
            "web": ([n for n, _ in WEB_MIX], [w for _, w in WEB_MIX]),
        }
        self.contexts = [_context(p, v) for p in ("ios", "android", "web") for v in range(4)]
        self.made = 0

    def event(self, now) -> dict:
        from datetime import timedelta

        rng = self.rng
        self.made += 1
        if rng.random() < self.new_share:
            user_id = f"{NEW_EVENT_CUSTOMERS}{self.tag}-{self.made}"
        else:
            user_id = self.user_ids[rng.randrange(len(self.user_ids))]
        context = self.contexts[zlib.crc32(user_id.encode()) % len(self.contexts)]
        names, weights = self.mixes["web" if context["platform"] == "web" else "mobile"]
        name = rng.choices(names, weights)[0]
        event = {
            "user_id": user_id,
            "name": name,
            "timestamp": (now - timedelta(seconds=rng.randrange(120))).isoformat(),
            "properties": self.properties(name, rng),
            "context": context,
        }
        if rng.random() < 0.6:
            event["id"] = f"{self.tag}-{self.made}"
        return event


def first_new_event_id() -> int:
    """The id the next stored event gets at the earliest: what ``remove_added_events`` takes."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(max(id), 0) + 1 FROM events_event")
        return cursor.fetchone()[0]


def remove_added_events(first_new_id: int) -> None:
    """Untimed: delete what the runs added (events, customers made from new user IDs), put
    the catalog counts back, and VACUUM so the table is as the generator left it for the next
    scenario (its pages all-visible again)."""
    from django.db import connection

    from events.catalog import catalog_recount

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM events_event WHERE id >= %s", [first_new_id])
        deleted = cursor.rowcount
        cursor.execute(
            "DELETE FROM customers_customer WHERE user_id LIKE %s", [NEW_EVENT_CUSTOMERS + "%"]
        )
    catalog_recount()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) events_event")
    print(
        f"cleanup: deleted the {deleted:,} events the runs added, recounted the catalog and"
        f" vacuumed in {fmt_seconds(time.perf_counter() - started)}",
        flush=True,
    )

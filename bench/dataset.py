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
        cursor.execute("TRUNCATE customers_customer, tags_customertag RESTART IDENTITY CASCADE")


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
        return self.request("POST", path, body)

    def request(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        """On the keep-alive connection, reconnecting once if the server closed it."""
        import http.client

        for attempt in range(2):
            try:
                self.connection.request(method, path, body=body, headers=self.headers)
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
        # Memberships keep no key constraint on the customer (customers_erase deletes them).
        cursor.execute(
            "WITH gone AS (DELETE FROM customers_customer WHERE user_id LIKE %s RETURNING id)"
            " DELETE FROM segments_membership WHERE customer_id IN (SELECT id FROM gone)",
            [NEW_EVENT_CUSTOMERS + "%"],
        )
    catalog_recount()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) events_event")
    print(
        f"cleanup: deleted the {deleted:,} events the runs added, recounted the catalog and"
        f" vacuumed in {fmt_seconds(time.perf_counter() - started)}",
        flush=True,
    )


# --- Segments ----------------------------------------------------------------------------------
SEGMENT_PREFIX = "bench-seg "  # name prefix of the segments the segment scenarios make
BENCH_NAMESPACE = "bench-segments"  # Dramatiq namespace of the worker the scenarios start


def ensure_demo_fields() -> None:
    """Check that the demo generator's ten custom fields and eight tags exist (a table loaded
    by an older generator may lack them) and that the customers hold values for them; create
    missing fields and tags with the generator's own set-up, without reloading customers."""
    from django.db import connection

    from customers.demo_data import DEMO_CUSTOM_FIELDS, DEMO_TAGS, _ensure_setup
    from customers.models import CustomField
    from tags.models import Tag

    fields = set(CustomField.objects.filter(deleted_at__isnull=True).values_list("name", flat=True))
    tags = {name.lower() for name in Tag.objects.values_list("name", flat=True)}
    missing = [name for name, *_ in DEMO_CUSTOM_FIELDS if name not in fields]
    missing += [name for name, _ in DEMO_TAGS if name.lower() not in tags]
    if missing:
        _, fields_created, tags_created = _ensure_setup()
        print(
            f"data: created the missing demo custom fields {fields_created} and tags"
            f" {tags_created} (the customers hold no values for new ones)",
            flush=True,
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE custom ? 'plan'),"
            " count(*) FILTER (WHERE custom ? 'lifetime_value'),"
            " (SELECT count(DISTINCT customer_id) FROM tags_customertag)"
            " FROM customers_customer"
        )
        plan, value, tagged = cursor.fetchone()
    print(
        f"data: {len(DEMO_CUSTOM_FIELDS)} demo custom fields and {len(DEMO_TAGS)} tags present;"
        f" {plan:,} customers with a plan, {value:,} with a lifetime value, {tagged:,} tagged",
        flush=True,
    )


def drop_sent_jobs() -> None:
    """The segment scenarios build, index and evaluate in their own process, where they time
    it. The messages the services they call send after commit (a build, an index sync, a
    drain) would wait in Redis for a worker that is not there, or be taken by a developer's
    worker on another database: this process drops them instead."""
    import dramatiq

    broker = dramatiq.get_broker()
    broker.enqueue = lambda message, *, delay=None: message


def segment_new(name: str, rules: dict, tz: str = "UTC"):
    """A segment made through the service (validation, dependencies, activity), named with
    ``SEGMENT_PREFIX``; not built (see ``drop_sent_jobs``)."""
    from activity.services import Actor
    from segments.services import segment_create

    return segment_create(
        name=SEGMENT_PREFIX + name, rules=rules, actor=Actor.system("Bench"), tz=tz
    )


def membership_fill(segment) -> int:
    """Untimed set-up: store a segment's membership as a build would, from the same compiled
    rules, but without transitions and timeline events (building fifty segments through
    ``segment_build`` would add millions of segment-entered events to the table the other
    scenarios read). Replaces what was stored; marks the segment built. Returns the count."""
    from django.db import connection, transaction
    from django.db.models import F
    from django.utils import timezone

    from segments.compiler import compile_rules
    from segments.models import Segment, SegmentStatus
    from segments.query import compile_context, set_work_mem

    now = timezone.now()
    ctx = compile_context(segment.rules, segment.timezone, now=now)
    where = compile_rules(segment.rules, ctx)
    with transaction.atomic(), connection.cursor() as cursor:
        set_work_mem(cursor)
        cursor.execute("DELETE FROM segments_membership WHERE segment_id = %s", [segment.pk])
        # The compiler's SQL: nothing user-typed is in its text (segments/compiler.py).
        insert = "INSERT INTO segments_membership (segment_id, customer_id, entered_at)"
        insert += f" SELECT %s, c.id, %s FROM customers_customer c WHERE {where.sql}"  # noqa: S608
        cursor.execute(insert, [segment.pk, now, *where.params])
        count = cursor.rowcount
        Segment.objects.filter(pk=segment.pk).update(
            status=SegmentStatus.READY,
            build_progress=100,
            built_revision=F("revision"),
            built_at=now,
            member_count=count,
        )
    return count


def segments_analyze() -> None:
    """What autovacuum keeps for the tables the segment queries read (it is off on some
    development servers): fresh planner statistics, without which the planner takes a
    1,000-customer diff over a never-analysed membership table for a scan of the whole
    segment (hundreds of ms instead of a few); and the visibility map of the membership and
    tag tables, without which incremental evaluation's index-only reads of a customer's
    memberships and tags fetch every row from the table."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) segments_membership, tags_customertag")
        cursor.execute("ANALYZE segments_segment, customers_customer")


def last_transition_id() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(max(id), 0) FROM segments_transition")
        return cursor.fetchone()[0]


def remove_bench_segments(after_transition: int | None = None) -> None:
    """Untimed: delete the segments the scenarios made (membership and size history go with
    them), their transitions (kept by value, so they outlive the segment), the transitions
    recorded after ``after_transition`` on any other segment, customers still queued for
    evaluation, and the expression indexes no segment needs any more."""
    from django.db import connection

    from segments.indexes import indexes_sync
    from segments.models import PendingCustomer, Segment

    ids = list(Segment.objects.filter(name__startswith=SEGMENT_PREFIX).values_list("id", flat=True))
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM segments_transition WHERE segment_id = ANY(%s)", [ids])
        transitions = cursor.rowcount
        if after_transition is not None:
            cursor.execute("DELETE FROM segments_transition WHERE id > %s", [after_transition])
            transitions += cursor.rowcount
        cursor.execute("DELETE FROM segments_membership WHERE segment_id = ANY(%s)", [ids])
    Segment.objects.filter(pk__in=ids).delete()
    PendingCustomer.objects.all().delete()
    dropped = indexes_sync()["dropped"]
    print(
        f"cleanup: deleted {len(ids)} bench segments, {transitions:,} transitions"
        f"{', dropped the indexes ' + ', '.join(dropped) if dropped else ''}",
        flush=True,
    )


def _attr(field: str, operator: str, value=None, unit: str | None = None) -> dict:
    node = {"type": "attribute", "field": field, "operator": operator}
    if value is not None:
        node["value"] = value
    if unit:
        node["unit"] = unit
    return node


def _event(name: str, operator: str, count: int, days: int, properties=()) -> dict:
    return {
        "type": "event",
        "name": name,
        "count": {"operator": operator, "value": count},
        "time": {"operator": "within_last", "value": days, "unit": "days"},
        "properties": list(properties),
    }


def _group(*children: dict, match: str = "all") -> dict:
    return {"type": "group", "match": match, "negate": False, "children": list(children)}


class MixSegment:
    """One segment of the incremental mix: its rules and the same question as a hand-written
    Django ``Q`` over Customer (``q(now, refs)``: refs maps a mix name to its segment id, for
    the "in segment" ones)."""

    def __init__(self, name: str, rules: dict, q) -> None:
        self.name, self.rules, self.q = name, rules, q


def segment_mix() -> list[MixSegment]:
    """48 segments as a workspace might have them (with the two predefined ones, 50): 24 on
    profile, custom and analytics fields, 12 on events, 10 on tags, 2 on other segments."""
    from datetime import UTC, datetime, timedelta

    from django.db.models import Count, Exists, OuterRef, Q

    from events.models import Event
    from segments.models import Membership
    from tags.models import CustomerTag

    def day_start(now, days: int) -> datetime:
        day = now.astimezone(UTC).date() + timedelta(days=days)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)

    def iso(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def seen_within(days: int):
        return lambda now, _: Q(
            last_seen__gte=day_start(now, -days), last_seen__lt=day_start(now, 1)
        )

    def custom_within(name: str, days: int):
        # Custom dates are ISO text; the same bounds as text.
        def q(now, _):
            low, high = iso(day_start(now, -days)), iso(day_start(now, 1))
            return Q(**{f"custom__{name}__gte": low, f"custom__{name}__lt": high})

        return q

    def events(name: str, at_least: int, days: int, amount_over: float | None = None):
        def q(now, _):
            rows = Event.objects.filter(
                customer_id=OuterRef("pk"),
                event_type__name=name,
                occurred_at__gte=now - timedelta(days=days),
            )
            if amount_over is not None:
                rows = rows.filter(properties__amount__gt=amount_over)
            if at_least == 1:
                return Q(Exists(rows))
            counted = (
                rows.order_by()
                .values("customer_id")
                .annotate(n=Count("id"))
                .filter(n__gte=at_least)
            )
            return Q(Exists(counted))

        return q

    def no_events(name: str, days: int):
        inner = events(name, 1, days)
        return lambda now, refs: ~inner(now, refs)

    def tagged(name: str):
        return Exists(CustomerTag.objects.filter(customer_id=OuterRef("pk"), tag__name=name))

    def member_of(ref: str):
        return lambda _, refs: Q(
            Exists(Membership.objects.filter(customer_id=OuterRef("pk"), segment_id=refs[ref]))
        )

    mix: list[MixSegment] = []

    def add(name: str, rules: dict, q) -> None:
        mix.append(MixSegment(name, rules, q))

    for country in ("DE", "FR", "US", "GB"):
        add(
            f"country {country}",
            _group(_attr("country", "is", country)),
            lambda n, r, c=country: Q(country=c),
        )
    add("city Berlin", _group(_attr("city", "is", "Berlin")), lambda n, r: Q(city="Berlin"))
    for plan in ("free", "basic", "pro", "enterprise"):
        add(
            f"plan {plan}",
            _group(_attr("custom.plan", "is", plan)),
            lambda n, r, p=plan: Q(custom__plan=p),
        )
    for value in (50, 100, 500):
        add(
            f"lifetime value > {value}",
            _group(_attr("custom.lifetime_value", "gt", value)),
            lambda n, r, v=value: Q(custom__lifetime_value__gt=v),
        )
    for points in (10, 100):
        add(
            f"loyalty points >= {points}",
            _group(_attr("custom.loyalty_points", "gte", points)),
            lambda n, r, p=points: Q(custom__loyalty_points__gte=p),
        )
    add(
        "newsletter",
        _group(_attr("custom.newsletter", "is", True)),
        lambda n, r: Q(custom__newsletter=True),
    )
    add(
        "churn risk > 0.8",
        _group(_attr("custom.churn_risk", "gt", 0.8)),
        lambda n, r: Q(custom__churn_risk__gt=0.8),
    )
    for days in (7, 30, 90):
        add(
            f"seen within {days} days",
            _group(_attr("last_seen", "was_within", days, "days")),
            seen_within(days),
        )
    add(
        "signed up within 90 days",
        _group(_attr("custom.signup_date", "was_within", 90, "days")),
        custom_within("signup_date", 90),
    )
    add(
        "vip",
        _group(_attr("custom.vip_since", "is_not_empty")),
        lambda n, r: Q(custom__vip_since__isnull=False),
    )
    add(
        "likes music",
        _group(_attr("custom.interests", "contains", "music")),
        lambda n, r: Q(custom__interests__icontains="music"),
    )
    add(
        "German pro",
        _group(_attr("country", "is", "DE"), _attr("custom.plan", "is", "pro")),
        lambda n, r: Q(country="DE", custom__plan="pro"),
    )
    add(
        "enterprise or big spender",
        _group(
            _attr("custom.plan", "is", "enterprise"),
            _attr("custom.lifetime_value", "gt", 1000),
            match="any",
        ),
        lambda n, r: Q(custom__plan="enterprise") | Q(custom__lifetime_value__gt=1000),
    )

    for at_least, days in ((1, 7), (1, 30), (3, 30), (1, 90)):
        add(
            f"purchase >= {at_least} in {days} days",
            _group(_event("purchase", "gte", at_least, days)),
            events("purchase", at_least, days),
        )
    add(
        "purchase over 100 in 30 days",
        _group(
            _event("purchase", "gte", 1, 30, [{"key": "amount", "operator": "gt", "value": 100}])
        ),
        events("purchase", 1, 30, amount_over=100),
    )
    add(
        "no purchase in 90 days",
        _group(_event("purchase", "eq", 0, 90)),
        no_events("purchase", 90),
    )
    add(
        "app-launch in 7 days",
        _group(_event("app-launch", "gte", 1, 7)),
        events("app-launch", 1, 7),
    )
    add(
        "app-launch >= 5 in 30 days",
        _group(_event("app-launch", "gte", 5, 30)),
        events("app-launch", 5, 30),
    )
    add(
        "add_to_cart in 7 days",
        _group(_event("add_to_cart", "gte", 1, 7)),
        events("add_to_cart", 1, 7),
    )
    add("signup in 30 days", _group(_event("signup", "gte", 1, 30)), events("signup", 1, 30))
    add(
        "search >= 3 in 14 days",
        _group(_event("search", "gte", 3, 14)),
        events("search", 3, 14),
    )
    add(
        "video-played in 30 days",
        _group(_event("video-played", "gte", 1, 30)),
        events("video-played", 1, 30),
    )

    for tag in ("Newsletter", "Early adopter", "Churned", "Beta tester", "Referral", "VIP",
                "Support priority", "Wholesale"):  # fmt: skip
        add(
            f"tag {tag}",
            _group({"type": "tag", "operator": "has_any", "tags": [tag]}),
            lambda n, r, t=tag: Q(tagged(t)),
        )
    add(
        "tags VIP and Newsletter",
        _group({"type": "tag", "operator": "has_all", "tags": ["VIP", "Newsletter"]}),
        lambda n, r: Q(tagged("VIP")) & Q(tagged("Newsletter")),
    )
    add(
        "not Churned",
        _group({"type": "tag", "operator": "has_none", "tags": ["Churned"]}),
        lambda n, r: ~Q(tagged("Churned")),
    )

    # "In segment": placeholders for the referenced ids, filled by ``mix_rules``.
    add(
        "pro buyers",
        _group(
            {"type": "segment", "operator": "in", "segment": "plan pro"},
            _event("purchase", "gte", 1, 30),
        ),  # fmt: skip
        lambda n, r: member_of("plan pro")(n, r) & events("purchase", 1, 30)(n, r),
    )
    add(
        "seen, not churned",
        _group(
            {"type": "segment", "operator": "in", "segment": "seen within 30 days"},
            {"type": "segment", "operator": "not_in", "segment": "tag Churned"},
        ),  # fmt: skip
        lambda n, r: member_of("seen within 30 days")(n, r) & ~member_of("tag Churned")(n, r),
    )
    return mix


def mix_rules(rules: dict, refs: dict[str, int]) -> dict:
    """``rules`` with "in segment" references by mix name replaced by segment ids."""
    if rules["type"] == "group":
        return {**rules, "children": [mix_rules(child, refs) for child in rules["children"]]}
    if rules["type"] == "segment":
        return {**rules, "segment": refs[rules["segment"]]}
    return rules


def segment_mix_create() -> tuple[list, dict[str, int]]:
    """Create the mix's 48 segments (``SEGMENT_PREFIX``) and fill their membership, and fill
    the two predefined ones too; returns [(MixSegment or None, Segment)] in dependency order
    and the mix name → segment id map."""
    from segments.incremental import dependency_order
    from segments.models import Segment

    started = time.perf_counter()
    refs: dict[str, int] = {}
    made = {}
    for item in segment_mix():
        segment = segment_new(item.name, mix_rules(item.rules, refs))
        refs[item.name] = segment.pk
        made[segment.pk] = item
    segments = dependency_order(
        [*Segment.objects.filter(pk__in=made), *Segment.objects.filter(predefined=True)]
    )
    members = 0
    for segment in segments:
        members += membership_fill(segment)
    segments_analyze()
    print(
        f"segments: made {len(made)} bench segments, filled them and the"
        f" {len(segments) - len(made)} predefined ones ({members:,} memberships)"
        f" in {fmt_seconds(time.perf_counter() - started)}",
        flush=True,
    )
    return [(made.get(s.pk), s) for s in segments], refs


class DramatiqWorker:
    """``manage.py rundramatiq`` as a subprocess against the benchmark database (the settings
    ``Gunicorn`` gives its workers), on the Dramatiq namespace ``BENCH_NAMESPACE``: neither a
    developer's worker takes its messages nor it theirs. Messages an interrupted run left in
    that namespace are flushed first. A server that should send to it needs the same
    ``DRAMATIQ_NAMESPACE`` in its environment (``Gunicorn`` copies ``os.environ``)."""

    READY = b"Worker process is ready for action"

    def __init__(self, processes: int = 1, threads: int = 4) -> None:
        self.processes, self.threads = processes, threads
        self.process = None
        self.log = None

    def __enter__(self) -> DramatiqWorker:
        import os
        import subprocess
        import sys
        import tempfile

        from django.conf import settings
        from dramatiq.brokers.redis import RedisBroker

        RedisBroker(url=settings.REDIS_URL, namespace=BENCH_NAMESPACE).flush_all()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "workbench.settings",
            "DATABASE_URL": bench_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "DRAMATIQ_NAMESPACE": BENCH_NAMESPACE,
            "DJANGO_DEBUG": "0",
            "LOG_LEVEL": "INFO",  # the worker logs when it is ready, at INFO
        }
        self.log = tempfile.NamedTemporaryFile(prefix="bench-dramatiq-", suffix=".log")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "rundramatiq",
                "--processes",
                str(self.processes),
                "--threads",
                str(self.threads),
            ],  # fmt: skip
            cwd=settings.BASE_DIR,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the Dramatiq worker exited with {self.process.returncode}")
            with open(self.log.name, "rb") as seen:
                if seen.read().count(self.READY) >= self.processes:
                    return self
            time.sleep(0.2)
        self.__exit__()  # not left running when the caller's with-block never starts
        raise SystemExit("the Dramatiq worker was not ready within a minute")

    def output(self) -> str:
        with open(self.log.name, "rb") as seen:
            return seen.read().decode(errors="replace")

    def __exit__(self, *exc) -> None:
        import subprocess

        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def segments_setup(args, *, analyze: bool = True) -> None:
    """The segment scenarios' common start: the demo data and fields, no stray jobs, nothing
    left by an interrupted run, and (by default) fresh statistics."""
    ensure_demo_customers(args.customers, args.seed)
    ensure_demo_events(args.size, args.seed)
    ensure_demo_fields()
    drop_sent_jobs()
    remove_bench_segments()
    if analyze:
        segments_analyze()

"""Fast, seeded demo events over the customers that exist, generated in Python and loaded with
COPY; a re-run with the same seed adds nothing twice.

COPY rather than SQL generating the rows in the server: measured on the 2-core box, a million
rows cost 3.6 s through COPY (Python makes the text in 1.9 s meanwhile, on the other core) and
5.4 s as one ``INSERT … SELECT … FROM generate_series`` building the same kind of rows with
``random()`` and ``jsonb_build_object`` (one core, and still the same heap insertions). The
server's side is the slower one either way; COPY gets the Python work for free. 20M events over
a million customers take about 2¾ minutes (bench ``generate_events``: COPY 86 s, the three
indexes 43 s, the two foreign keys 14 s (gone since), the customers' first/last seen 16 s, the
rest 8 s).

What the events look like:
- a mix of built-in analytics names (card-displayed, notification-received, sdk-initialized,
  stream-displayed, video-played …) and custom ones (page_viewed, screen_viewed, app-launch,
  product_viewed, search, add_to_cart, purchase, signup), different on mobile and on the web,
  with small properties (purchase: amount, currency, sku, quantity; page_viewed: path …);
- skewed activity: every customer who was ever seen gets a weight from a log-normal
  distribution (a fifth of them none), so most customers have a handful of events or none and
  a few have hundreds or thousands; customers never seen get none;
- times over the last ``days`` days, three times as many on the latest day as on the oldest,
  fewer at weekends and at night (UTC), never before the customer was created where another
  customer can take the event; rows are written oldest first, as they would have arrived;
- a context per customer and platform (platform, sdk_version, os_version, device, or browser,
  browser_version, os) taken from the customer's own analytics fields where they have them, so
  the events agree with the profile; three events in four come from the platform the customer
  used last.

Idempotency: every demo event carries the client id ``demo-<seed>-<row number>``. Under a lock
that keeps other writers out until the commit, the run asks which of its client ids exist (none
when the table is empty, which is checked first) and COPYs only the missing rows; a row's draws
are taken whether or not it is written, so row ``i`` is the same whatever else is there (as long
as the customers are the same). Finding nothing missing over 20M rows takes about 35 s (one pass
over the table). ``received_at`` is the time of the load.

A big load (at least ``REBUILD_MIN_ROWS`` rows, and at least as many as the table holds) drops
the three secondary indexes (the unique client-id one too: the run knows its client ids are
new) and any foreign keys (events keep none since the erasure gate: customers/erasure_gate.py),
and builds them again afterwards in the same transaction. Into
an empty table the rows go in with ``COPY … FREEZE`` (after a ``TRUNCATE`` of the empty table in
the same transaction, which FREEZE requires): written frozen and all-visible, so index-only
scans work at once without a VACUUM pass over every page.

Afterwards, set-based: ``catalog_recount()``, the catalog's property types for the generated
names, and the customers' first/last seen moved (LEAST/GREATEST) to cover their new events: the
per-customer minimum and maximum are tracked while the rows are made, and one UPDATE writes the
customers whose moments move. Every such row is a new version in all nine of the customer
table's indexes (last_seen is one of them), so when a large share of the table changes its
seven plain secondary indexes are dropped and built again around the UPDATE, as the customer
generator does for its loads (which holds the customer table exclusively for that time): 501k of
a million customers in 16.5 s that way, against 31–47 s with the indexes in place. Per-platform
"last seen on …" fields are left alone: the contexts were taken from them.
"""

from __future__ import annotations

import json
import math
import random
import struct
import sys
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate, chain
from statistics import NormalDist
from typing import Any

from django.db import connection, transaction

# The customer generator's load helpers (COPY through a writer thread, its foreign key
# bookkeeping) and its device lists, so the events' contexts match the demo profiles.
from customers.demo_data import (
    ANDROID_DEVICES,
    ANDROID_VERSIONS,
    BROWSERS,
    IOS_DEVICES,
    IOS_VERSIONS,
    _copy,
    _foreign_keys,
    _rebuildable_indexes,
    _run_deferred_checks,
)
from events.catalog import (
    catalog_recount,
    event_types_ensure,
    jsonb_value,
    merge_type,
    new_property_types,
    value_type,
)

TABLE = "events_event"
CUSTOMERS = "customers_customer"
COLUMNS = "customer_id, event_type_id, occurred_at, client_id, properties, context"
CHUNK_ROWS = 50_000
REBUILD_MIN_ROWS = 100_000
INDEX_BUILD_MEMORY = "256MB"  # per index build (more measured no faster)
KEY_CHECK_MEMORY = "256MB"  # the hash join that validates a foreign key put back
POOL = 1024  # property documents per name, entries in a platform's name table
OFFSETS = 65536  # weighted moments within a day to pick from
NEVER = 2**62

# (name, weight): what a customer does on each kind of platform.
MOBILE_MIX = [
    ("screen_viewed", 150), ("card-displayed", 140), ("app-launch", 110),
    ("sdk-initialized", 90), ("notification-received", 90), ("product_viewed", 80),
    ("stream-displayed", 70), ("add_to_cart", 40), ("search", 40), ("card-completed", 35),
    ("card-dismissed", 35), ("purchase", 25), ("user-redirected", 20), ("video-played", 15),
    ("card-subview-displayed", 10), ("card-snoozed", 8), ("video-completed", 8),
    ("card-voted-up", 6), ("signup", 3),
]  # fmt: skip
WEB_MIX = [
    ("page_viewed", 330), ("product_viewed", 130), ("card-displayed", 100), ("search", 60),
    ("add_to_cart", 50), ("stream-displayed", 50), ("sdk-initialized", 40),
    ("user-redirected", 30), ("purchase", 25), ("card-dismissed", 25), ("card-completed", 20),
    ("video-played", 10), ("notification-received", 10), ("video-completed", 5), ("signup", 5),
]  # fmt: skip
# Events per UTC hour, relative: customers are spread over time zones, so a mild curve.
HOUR_WEIGHTS = [4, 3, 3, 3, 3, 4, 5, 6, 7, 8, 8, 8, 9, 9, 8, 8, 8, 9, 10, 11, 11, 10, 8, 6]
WEEKEND_FACTOR = 0.8
INACTIVE_SHARE = 0.2  # of the customers ever seen, these send nothing
ACTIVITY_SIGMA = 1.5  # log-normal spread of activity between customers
ACTIVITY_CAP = 200.0  # the most active customer does this many times the median's events

SKUS = [f"SKU-{k:04d}" for k in range(1, 301)]
CATEGORIES = ["shoes", "outerwear", "accessories", "bags", "home", "beauty"]
CURRENCIES = ["EUR", "EUR", "EUR", "USD", "USD", "GBP"]
PAGES = ["/", "/", "/pricing", "/products", "/sale", "/blog/spring-collection", "/cart",
         "/checkout", "/account", "/help/shipping"]  # fmt: skip
REFERRERS = ["google", "newsletter", "instagram", "direct"]
SCREENS = ["Home", "Search", "Product", "Cart", "Checkout", "Profile", "Inbox", "Settings"]
QUERIES = ["running shoes", "rain jacket", "gift card", "backpack", "sale", "linen shirt",
           "sneakers", "yoga mat", "sunglasses", "wool socks"]  # fmt: skip
CAMPAIGNS = ["spring-sale", "welcome-series", "back-in-stock", "weekly-digest",
             "cart-reminder", "loyalty-bonus"]  # fmt: skip
STREAMS = ["home", "home", "inbox", "offers"]
IOS_SDK_VERSIONS = ["23.3.1", "23.2.0", "22.9.4"]
ANDROID_SDK_VERSIONS = ["23.3.0", "23.1.2", "22.9.1"]
WEB_SDK_VERSIONS = ["2.3.0", "2.2.1"]
BROWSER_VERSIONS = {"Chrome": "126.0", "Safari": "17.4", "Firefox": "127.0", "Edge": "126.0"}
BROWSER_OS_VERSIONS = {"Windows": "11", "macOS": "14.5", "iOS": "17.4.1"}


@dataclass
class EventsDemoResult:
    requested: int
    created: int
    seconds: float
    customers: int = 0  # customers the new events belong to
    customers_updated: int = 0  # whose first/last seen moved
    types_created: list[str] = field(default_factory=list)
    rebuilt: bool = False  # indexes and foreign keys dropped and built again
    frozen: bool = False  # COPY FREEZE into an empty table
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step, for the bench


def client_id_prefix(seed: int) -> str:
    return f"demo-{seed}-"


def _copy_json(value: dict[str, Any]) -> str:
    """A JSON document as COPY text: its backslashes doubled (json.dumps escapes the rest)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("\\", "\\\\")


def _properties(name: str, rng: random.Random) -> dict[str, Any]:
    """One plausible property document for an event called ``name``."""
    card = f"card-{rng.randrange(1, 400):04d}"
    match name:
        case "purchase":
            return {
                "amount": round(rng.lognormvariate(3.7, 0.8), 2),  # median 40, one in 8 > 100
                "currency": rng.choice(CURRENCIES),
                "sku": rng.choice(SKUS),
                "quantity": rng.choice((1, 1, 1, 2, 2, 3)),
            }
        case "add_to_cart":
            return {
                "sku": rng.choice(SKUS),
                "price": round(rng.lognormvariate(3.3, 0.7), 2),
                "quantity": rng.choice((1, 1, 2)),
            }
        case "product_viewed":
            return {"sku": rng.choice(SKUS), "category": rng.choice(CATEGORIES)}
        case "page_viewed":
            path = rng.choice(PAGES + [f"/products/{rng.choice(SKUS).lower()}"] * 4)
            if rng.random() < 0.3:
                return {"path": path, "referrer": rng.choice(REFERRERS)}
            return {"path": path}
        case "screen_viewed":
            return {"screen": rng.choice(SCREENS)}
        case "search":
            return {"query": rng.choice(QUERIES), "results": rng.randrange(0, 60)}
        case "signup":
            return {"method": rng.choice(("email", "email", "google", "apple"))}
        case "app-launch":
            return {"cold_start": rng.random() < 0.4}
        case "sdk-initialized":
            return {}
        case "notification-received":
            return {
                "campaign": rng.choice(CAMPAIGNS),
                "notification_id": f"n-{rng.randrange(1, 5000)}",
            }
        case "stream-displayed":
            return {"stream": rng.choice(STREAMS), "cards": rng.randrange(0, 8)}
        case "user-redirected":
            return {"card_id": card, "url": f"https://shop.example.com{rng.choice(PAGES)}"}
        case "video-played":
            return {"card_id": card, "video_id": f"v-{rng.randrange(1, 60)}"}
        case "video-completed":
            return {
                "card_id": card,
                "video_id": f"v-{rng.randrange(1, 60)}",
                "seconds": rng.randrange(15, 180),
            }
        case _:  # the card events
            return {"card_id": card, "stream": rng.choice(STREAMS)}


def _property_pools(rng: random.Random) -> tuple[dict[str, list[str]], dict[str, dict[str, str]]]:
    """Per name, ``POOL`` property documents as COPY text, and the catalog types they hold."""
    pools: dict[str, list[str]] = {}
    types: dict[str, dict[str, str]] = {}
    for name in sorted({name for name, _ in MOBILE_MIX + WEB_MIX}):
        docs = [_properties(name, rng) for _ in range(POOL)]
        pools[name] = [_copy_json(doc) for doc in docs]
        seen: dict[str, str] = {}
        for doc in docs:
            for key, value in doc.items():
                seen[key] = merge_type(seen.get(key), value_type(value))
        types[name] = seen
    return pools, types


def _slots(weights: list[tuple[str, int]], size: int) -> list[str]:
    """``size`` entries, each name about its share of them (at least one each)."""
    total = sum(w for _, w in weights)
    counts = [max(1, w * size // total) for _, w in weights]
    counts[0] += size - sum(counts)  # the commonest name takes the rounding
    return [name for (name, _), n in zip(weights, counts, strict=True) for _ in range(n)]


def _name_tables(
    rng: random.Random, type_ids: dict[str, int], pools: dict[str, list[str]]
) -> dict[str, list[tuple[str, list[str]]]]:
    """Per kind of platform, ``POOL`` (type id column text, property pool) entries."""
    tables = {}
    for kind, mix in (("mobile", MOBILE_MIX), ("web", WEB_MIX)):
        names = _slots(mix, POOL)
        rng.shuffle(names)
        tables[kind] = [(f"{type_ids[name]}\t", pools[name]) for name in names]
    return tables


def _context(platform: str, variant: int, device: str = "", os: str = "") -> dict[str, Any]:
    """A context for ``platform``; ``device``/``os`` from the customer's profile when known
    (for the web: the browser and its OS), else picked by ``variant``."""
    if platform == "web":
        browser, os_name = (device, os) if device else BROWSERS[variant % len(BROWSERS)]
        context = {
            "platform": "web",
            "sdk_version": WEB_SDK_VERSIONS[variant % len(WEB_SDK_VERSIONS)],
            "browser": browser,
            "browser_version": BROWSER_VERSIONS.get(browser, "100.0"),
            "os": os_name,
        }
        if os_version := BROWSER_OS_VERSIONS.get(os_name):
            context["os_version"] = os_version
        return context
    ios = platform == "ios"
    devices, versions = (IOS_DEVICES, IOS_VERSIONS) if ios else (ANDROID_DEVICES, ANDROID_VERSIONS)
    sdks = IOS_SDK_VERSIONS if ios else ANDROID_SDK_VERSIONS
    return {
        "platform": platform,
        "sdk_version": sdks[variant % len(sdks)],
        "os_version": os or versions[variant % len(versions)],
        # A device summary ("iOS 17.4, iPhone16,1") ends with the model.
        "device": device.rsplit(", ", 1)[-1] if device else devices[variant % len(devices)],
    }


# Per customer, in id order: created, first and last seen (epoch seconds, rounded outwards;
# NULL when never seen), and a profile key: the
# platform used last and per platform its device (browser) and OS, "" for unused platforms.
_CUSTOMERS_SQL = r"""
SELECT id, floor(extract(epoch FROM created_at))::bigint,
    ceil(extract(epoch FROM first_seen))::bigint, floor(extract(epoch FROM last_seen))::bigint,
    concat_ws(E'\x1f',
        CASE GREATEST(last_seen_ios, last_seen_android, last_seen_web)
            WHEN last_seen_ios THEN 'ios' WHEN last_seen_android THEN 'android'
            WHEN last_seen_web THEN 'web' ELSE '' END,
        CASE WHEN last_seen_ios IS NOT NULL
            THEN COALESCE(NULLIF(last_ios_device_name, ''), last_ios_device) ELSE '' END,
        CASE WHEN last_seen_ios IS NOT NULL THEN last_ios_os_version ELSE '' END,
        CASE WHEN last_seen_android IS NOT NULL
            THEN COALESCE(NULLIF(last_android_device_name, ''), last_android_device) ELSE '' END,
        CASE WHEN last_seen_android IS NOT NULL THEN last_android_os_version ELSE '' END,
        CASE WHEN last_seen_web IS NOT NULL THEN last_browser_name ELSE '' END,
        CASE WHEN last_seen_web IS NOT NULL THEN last_browser_os ELSE '' END)
FROM customers_customer ORDER BY id
"""
_FALLBACK_PLATFORMS = [("web",), ("ios",), ("android",), ("web", "ios"), ("web", "android")]


@dataclass
class Customers:
    """The customers events can go to, by position k (id order): ``heads[k]`` is the id as
    COPY text ("123\\t"), ``choices[k]`` four (context text, name table) picks, one per two
    bits of a draw, and ``weights[k]`` how active the customer is (0: sends nothing)."""

    ids: array
    heads: list[str]
    created: array  # epoch seconds
    first_seen: array  # epoch seconds rounded up; NEVER when never seen
    last_seen: array  # epoch seconds rounded down; -NEVER when never seen
    choices: list[tuple[tuple[str, list], ...]]
    weights: list[float]

    def __len__(self) -> int:
        return len(self.ids)


def _activity_levels() -> list[float]:
    """65,536 quantiles of the log-normal activity distribution (capped): one 16-bit draw
    picks a customer's weight."""
    normal = NormalDist(0.0, ACTIVITY_SIGMA)
    return [min(math.exp(normal.inv_cdf((j + 0.5) / 65536)), ACTIVITY_CAP) for j in range(65536)]


def _load_customers(cursor, rng: random.Random, tables) -> Customers:
    profiles: dict[tuple[str, int], tuple[tuple[str, list], ...]] = {}

    def choices_for(key: str, variant: int) -> tuple[tuple[str, list], ...]:
        parts = key.split("\x1f")
        used = []
        if len(parts) == 7:
            last, ios_device, ios_os, android_device, android_os, browser, browser_os = parts
            known = {
                "ios": (ios_device, ios_os),
                "android": (android_device, android_os),
                "web": (browser, browser_os),
            }
            used = [(p, *known[p]) for p in known if p != last and known[p][0]]
            if last:
                used.insert(0, (last, *known[last]))
        if not used:  # seen, but nothing known about the platform: made up, the same each time
            used = [(p, "", "") for p in _FALLBACK_PLATFORMS[variant % len(_FALLBACK_PLATFORMS)]]
        texts = [
            (_copy_json(_context(p, variant, device, os)), tables[p if p == "web" else "mobile"])
            for p, device, os in used
        ]
        # Three in four from the platform used last.
        return (texts[0], texts[0], texts[0], texts[-1])

    cursor.execute(_CUSTOMERS_SQL)
    rows = cursor.fetchall()
    ids = array("q", [row[0] for row in rows])
    created = array("q", [row[1] for row in rows])
    first_seen = array("q", [NEVER if row[2] is None else row[2] for row in rows])
    last_seen = array("q", [-NEVER if row[3] is None else row[3] for row in rows])
    heads = [f"{pk}\t" for pk in ids]
    choices = []
    for pk, _, _, _, key in rows:
        # The variant (which SDK version, which made-up device) follows the customer's id, so
        # a customer looks the same in every seed.
        found = profiles.get((key, pk % 12))
        if found is None:
            found = profiles[(key, pk % 12)] = choices_for(key, pk % 12)
        choices.append(found)
    # One draw per customer, seen or not, so a customer's weight does not depend on others.
    levels = _activity_levels()
    inactive = int(INACTIVE_SHARE * 65536)
    anyone_seen = any(row[2] is not None for row in rows)
    draws = array("Q", rng.randbytes(8 * len(rows)))
    weights = [
        levels[d & 0xFFFF]
        if (row[2] is not None or not anyone_seen) and d >> 16 & 0xFFFF >= inactive
        else 0.0
        for row, d in zip(rows, draws, strict=True)
    ]
    if not any(weights):  # a handful of customers, all drawn inactive: let everyone send
        weights = [1.0] * len(weights)
    return Customers(ids, heads, created, first_seen, last_seen, choices, weights)


_POSITION = struct.Struct("<I")


def _pick_table(weights: list[float], size: int, rng: random.Random, keep=None) -> array:
    """About ``size`` customer positions, each customer's share proportional to its weight
    (rounded at random, so small weights get a slot now and then); ``keep(k)`` filters."""
    total = sum(w for k, w in enumerate(weights) if w and (keep is None or keep(k)))
    table = array("I")
    if not total:
        return table
    scale = size / total
    draws = array("Q", rng.randbytes(8 * len(weights)))
    pack = _POSITION.pack
    # Slots of customer k: its share, rounded up with the probability of the fraction.
    parts = [
        pack(k) * int(w * scale + (d >> 11) / 2**53)
        for k, (w, d) in enumerate(zip(weights, draws, strict=True))
        if w and (keep is None or keep(k))
    ]
    table.frombytes(b"".join(parts))
    if sys.byteorder == "big":
        table.byteswap()
    return table


def _draws(rng: random.Random, count: int) -> Iterator[array]:
    for start in range(0, count, 4 * CHUNK_ROWS):
        block = array("Q", rng.randbytes(8 * min(4 * CHUNK_ROWS, count - start)))
        if sys.byteorder == "big":
            block.byteswap()  # the same numbers on every machine
        yield block


def _day_bounds(count: int, days: int, first_day: int) -> list[int]:
    """Row numbers where each of the ``days`` windows starts (and ``count`` at the end): the
    latest window three times the oldest, weekends a little quieter."""
    weights = []
    for d in range(days):
        weekday = (first_day + d * 86400) // 86400 % 7  # 1970-01-01 was a Thursday: 2, 3 = Sat, Sun
        ramp = 1 + 2 * d / max(days - 1, 1)
        weights.append(ramp * (WEEKEND_FACTOR if weekday in (2, 3) else 1.0))
    total = sum(weights)
    return [0] + [round(count * c / total) for c in accumulate(weights)]


def _offsets(rng: random.Random, window_start: int) -> list[int]:
    """``OFFSETS`` seconds into a 24-hour window starting at ``window_start``, weighted so the
    moments follow ``HOUR_WEIGHTS`` by UTC hour of day."""
    hours = [h for h, w in enumerate(HOUR_WEIGHTS) for _ in range(w)]
    shift = window_start % 86400
    return [
        (rng.choice(hours) * 3600 + rng.randrange(3600) - shift) % 86400 for _ in range(OFFSETS)
    ]


@dataclass
class Seen:
    """Per customer position: the earliest and latest moment of its new events."""

    first: array
    last: array

    @classmethod
    def empty(cls, n: int) -> Seen:
        return cls(array("q", [NEVER]) * n, array("q", [-NEVER]) * n)


@dataclass
class Plan:
    """What a run's rows are made from, drawn in a fixed order from one ``random.Random(seed)``,
    which is left positioned for the rows' own draws."""

    count: int
    seed: int
    customers: Customers
    pick: array  # customer positions, as often as their weight says
    old: array  # the same among customers created before the oldest window
    window_start: int  # epoch seconds: the oldest window; the newest ends at the run's "now"
    bounds: list[int]  # first row of each window
    offsets: list[int]
    rng: random.Random
    type_ids: dict[str, int]
    property_types: dict[str, dict[str, str]]


def plan_events(cursor, count: int, seed: int, now: datetime, days: int) -> Plan:
    """Make the run's tables; creates the catalog rows of the custom names it uses."""
    rng = random.Random(seed)
    pools, property_types = _property_pools(rng)
    types = event_types_ensure(cursor, list(pools))
    type_ids = dict(types)  # event_types_ensure: name → id
    tables = _name_tables(rng, type_ids, pools)
    customers = _load_customers(cursor, rng, tables)
    window_start = int(now.timestamp()) - days * 86400
    size = 1 << max(16, min(24, (count - 1).bit_length()))
    pick = _pick_table(customers.weights, size, rng)
    created = customers.created
    if any(at > window_start for at in created):
        old = _pick_table(customers.weights, size, rng, keep=lambda k: created[k] <= window_start)
    else:
        old = pick
    return Plan(
        count=count,
        seed=seed,
        customers=customers,
        pick=pick,
        old=old,
        window_start=window_start,
        bounds=_day_bounds(count, days, window_start),
        offsets=_offsets(rng, window_start),
        rng=rng,
        type_ids=type_ids,
        property_types=property_types,
    )


def event_lines(
    plan: Plan, *, present: bytearray | None = None, seen: Seen | None = None
) -> Iterator[str]:
    """Yield chunks of COPY text lines for ``COLUMNS``, about ``CHUNK_ROWS`` lines a chunk:
    rows ``0 .. count - 1``, oldest window first, leaving out rows with ``present[i]`` set.
    Values never hold tabs, newlines or unescaped backslashes.

    Each row takes one 64-bit draw cut into bit fields: 24 bits pick the customer (from the
    weighted table, scaled: ``bits * n >> 24``), 16 the moment in the row's window, 2 the
    platform, 10 the name, 10 the property document. A customer created after the moment
    gives the event up to another pick (bits from a multiplicative hash of the draw), then to
    a customer created before the oldest window. Every piece of text that does not depend on
    the row is made up front (the moments' times of day, and which of a window's two dates
    each falls on): the loop indexes lists and joins strings. ``seen`` gets each customer's
    earliest and latest new moment.
    """
    customers = plan.customers
    heads, created, choices = customers.heads, customers.created, customers.choices
    seen = seen if seen is not None else Seen.empty(len(customers))
    first, last = seen.first, seen.last
    pick, n_pick, old, n_old = plan.pick, len(plan.pick), plan.old, len(plan.old)
    offsets = plan.offsets
    # Windows are whole days apart, so a moment's time of day and whether it falls on the
    # window's second date depend on its offset only.
    shift = plan.window_start % 86400
    times = [f"{h:02d}:{m:02d}:{s:02d}+00" for h in range(24) for m in range(60) for s in range(60)]
    clock = [times[(shift + off) % 86400] for off in offsets]
    later = [int(shift + off >= 86400) for off in offsets]
    prefix = client_id_prefix(plan.seed)
    skip = present is not None
    lines: list[str] = []
    append = lines.append
    draws = chain.from_iterable(_draws(plan.rng, plan.count))
    bounds = plan.bounds
    for window in range(len(bounds) - 1):
        start = plan.window_start + window * 86400
        day = datetime.fromtimestamp(start, UTC)
        dates = (day.strftime("%Y-%m-%d "), (day + timedelta(days=1)).strftime("%Y-%m-%d "))
        for low in range(bounds[window], bounds[window + 1], CHUNK_ROWS):
            high = min(low + CHUNK_ROWS, bounds[window + 1])
            for i, a in zip(range(low, high), draws, strict=False):
                if skip and present[i]:
                    continue
                k = pick[(a & 0xFFFFFF) * n_pick >> 24]
                j = a >> 24 & 0xFFFF
                at = start + offsets[j]
                if created[k] > at:
                    b = (a * 0x9E3779B97F4A7C15) >> 64
                    k = pick[(b & 0xFFFFFF) * n_pick >> 24]
                    if created[k] > at and n_old:
                        k = old[(b >> 24 & 0xFFFFFF) * n_old >> 24]
                context, names = choices[k][a >> 40 & 3]
                type_column, pool = names[a >> 42 & 1023]
                append(
                    f"{heads[k]}{type_column}{dates[later[j]]}{clock[j]}\t{prefix}{i}"
                    f"\t{pool[a >> 52 & 1023]}\t{context}\n"
                )
                if at < first[k]:
                    first[k] = at
                if at > last[k]:
                    last[k] = at
            if len(lines) >= CHUNK_ROWS:
                yield "".join(lines)
                lines.clear()
    if lines:
        yield "".join(lines)


def _present_rows(count: int, seed: int) -> bytearray | None:
    """Which of this run's rows exist: ``present[i]`` is 1 when client id
    ``demo-<seed>-<i>`` does (for any customer); None when none does."""
    prefix = client_id_prefix(seed)
    present = None
    # Server-side, in batches: a re-run over 20M rows would otherwise hold them all at once.
    with connection.connection.cursor(name="demo_events_present") as named:
        named.itersize = 100_000
        # The suffixes f"{i}" writes: digits without a leading zero.
        named.execute(
            f"""
            SELECT suffix::bigint FROM (
                SELECT substr(client_id, %s) AS suffix FROM {TABLE} WHERE client_id LIKE %s
            ) AS demo
            WHERE suffix ~ '^(0|[1-9][0-9]{{0,17}})$'
            """,  # noqa: S608 - TABLE is a constant
            [len(prefix) + 1, prefix + "%"],
        )
        for (i,) in named:
            if i < count:
                if present is None:
                    present = bytearray(count)
                present[i] = 1
    return present


def _secondary_indexes(cursor) -> list[tuple[str, str]]:
    """(qualified name, CREATE INDEX statement) of the table's valid indexes other than the
    primary key and those behind a constraint (the unique client-id index is a plain unique
    index, not a constraint: it is one of them)."""
    cursor.execute(
        """
        SELECT quote_ident(n.nspname) || '.' || quote_ident(i.relname), pg_get_indexdef(i.oid)
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_namespace n ON n.oid = i.relnamespace
        WHERE x.indrelid = %s::regclass AND NOT x.indisprimary
          AND x.indisvalid AND x.indisready AND x.indislive
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)
        ORDER BY i.relname
        """,
        [TABLE],
    )
    return cursor.fetchall()


def _prepare_big_load(cursor, rows: int) -> list[str]:
    """For a big load, drop the secondary indexes and the foreign keys and return the
    statements that put them back; for a small one, drop nothing and return [].

    Each foreign key would queue a deferred check per row (and lock the customer row); put
    back, it checks the whole table in one join. Safe to drop the unique client-id index too:
    the run's client ids are new, and its lock keeps other writers out until the commit."""
    if rows < REBUILD_MIN_ROWS:
        return []
    cursor.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM {TABLE} LIMIT %s) AS existing",  # noqa: S608
        [rows + 1],
    )
    if cursor.fetchone()[0] > rows:
        return []
    referenced = ["customers_customer", "events_eventtype"]
    indexes = _secondary_indexes(cursor)
    keys = _foreign_keys(cursor, TABLE, referenced)
    cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
    _run_deferred_checks(cursor, [TABLE, *referenced])
    cursor.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
    cursor.execute(f"SET LOCAL work_mem = '{KEY_CHECK_MEMORY}'")
    restore = []
    if indexes:
        cursor.execute("DROP INDEX " + ", ".join(name for name, _ in indexes))
        restore += [create for _, create in indexes]
    # One statement per key: ALTER TABLE checks each added key with a scan of its own anyway.
    for name, definition in keys:
        cursor.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT {name}")
        restore.append(f"ALTER TABLE {TABLE} ADD CONSTRAINT {name} {definition}")
    return restore


def _catalog_properties(cursor, plan: Plan) -> int:
    """Add the generated names' property keys and types to the catalog (as ingestion would
    have, capped and merged the same way); returns the number of types changed."""
    cursor.execute(
        "SELECT id, properties FROM events_eventtype WHERE id = ANY(%s) AND event_count > 0",
        [list(plan.type_ids.values())],
    )
    known = {pk: jsonb_value(props) for pk, props in cursor.fetchall()}
    rows = []
    for name, pk in plan.type_ids.items():
        if pk in known and (changes := new_property_types(known[pk], plan.property_types[name])):
            rows.append({"id": pk, "props": changes})
    if not rows:
        return 0
    cursor.execute(
        """
        UPDATE events_eventtype t SET properties = t.properties || v.props
        FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, props jsonb)
        WHERE t.id = v.id
        """,
        [json.dumps(rows)],
    )
    return cursor.rowcount


_SEEN_SQL = """
UPDATE customers_customer c SET
    first_seen = LEAST(c.first_seen, to_timestamp(v.first)),
    last_seen = GREATEST(c.last_seen, to_timestamp(v.last))
FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS v(id, first, last)
WHERE c.id = v.id AND (
    c.first_seen IS NULL OR c.last_seen IS NULL
    OR to_timestamp(v.first) < c.first_seen OR to_timestamp(v.last) > c.last_seen)
"""


def _customers_seen(cursor, customers: Customers, seen: Seen) -> tuple[int, int]:
    """Move first/last seen to cover the new events; returns (customers with new events,
    customers changed). One UPDATE; a row is rewritten only when a moment moves.

    Every rewritten row is a new version in every index of the customer table (last_seen is
    indexed, so no HOT update), and those insertions are scattered over indexes that do not
    stay cached: when a large share of the table changes, the plain secondary indexes are
    dropped first and built again after (measured at 624k of 1M customers: 47 s with them,
    17 s without them plus 7 s to build them again)."""
    ids, firsts, lasts = [], [], []
    with_events = 0
    known_first, known_last = customers.first_seen, customers.last_seen
    for k, at in enumerate(seen.first):
        if at != NEVER:
            with_events += 1
            # The UPDATE's own condition decides; this leaves out the rows it would skip.
            if at < known_first[k] or seen.last[k] > known_last[k]:
                ids.append(customers.ids[k])
                firsts.append(at)
                lasts.append(seen.last[k])
    if not ids:
        return with_events, 0
    restore = []
    if len(ids) >= REBUILD_MIN_ROWS and len(ids) * 8 >= len(customers):
        indexes = _rebuildable_indexes(cursor, CUSTOMERS)
        cursor.execute(f"LOCK TABLE {CUSTOMERS} IN ACCESS EXCLUSIVE MODE")
        _run_deferred_checks(cursor, [CUSTOMERS])
        cursor.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
        if indexes:
            cursor.execute("DROP INDEX " + ", ".join(name for name, _ in indexes))
            restore = [create for _, create in indexes]
    cursor.execute(_SEEN_SQL, [ids, firsts, lasts])
    changed = cursor.rowcount
    for statement in restore:
        cursor.execute(statement)
    return with_events, changed


def _timed(phases: dict[str, float], name: str, run: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    try:
        return run()
    finally:
        phases[name] = phases.get(name, 0.0) + time.perf_counter() - started


def generate_events(count: int, seed: int = 1, days: int = 180) -> EventsDemoResult:
    """Make rows ``0 .. count - 1`` of ``seed`` exist (adding the missing ones) over the
    customers there are; see the module's docstring."""
    if count < 0 or days < 1:
        raise ValueError("count must be zero or more and days at least 1")
    started = time.perf_counter()
    result = EventsDemoResult(requested=count, created=0, seconds=0.0)
    phases = result.phases
    now = datetime.now(UTC).replace(microsecond=0)
    with transaction.atomic(), connection.cursor() as cursor:
        # Other writers of events and customers wait from here to the commit: no client id
        # can appear, and no customer go, behind the run's back.
        cursor.execute(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute("LOCK TABLE customers_customer IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {TABLE})")  # noqa: S608
        empty = cursor.fetchone()[0]
        present = None
        if count and not empty:
            present = _timed(phases, "present", lambda: _present_rows(count, seed))
        missing = count - (present.count(1) if present is not None else 0)
        cursor.execute("SELECT EXISTS (SELECT 1 FROM customers_customer)")
        if missing and cursor.fetchone()[0]:
            cursor.execute("SELECT name FROM events_eventtype WHERE name = ANY(%s)", [_all_names()])
            had = {name for (name,) in cursor.fetchall()}
            plan = _timed(phases, "plan", lambda: plan_events(cursor, count, seed, now, days))
            result.types_created = sorted(set(plan.type_ids) - had)
            restore = _prepare_big_load(cursor, missing)
            result.rebuilt = bool(restore)
            copy = f"COPY {TABLE} ({COLUMNS}) FROM STDIN"
            if empty:
                # FREEZE needs the table created or truncated in this (sub)transaction; it is
                # empty, so a TRUNCATE loses nothing.
                _run_deferred_checks(cursor, [TABLE])
                cursor.execute(f"TRUNCATE {TABLE}")
                copy += " WITH (FREEZE)"
                result.frozen = True
            seen = Seen.empty(len(plan.customers))
            lines = event_lines(plan, present=present, seen=seen)
            result.created = _timed(phases, "copy", lambda: _copy(cursor, copy, lines))
            for statement in restore:
                phase = "indexes" if statement.startswith("CREATE") else "foreign keys"
                _timed(phases, phase, lambda s=statement: cursor.execute(s))
            _timed(phases, "catalog", catalog_recount)
            _timed(phases, "catalog", lambda: _catalog_properties(cursor, plan))
            result.customers, result.customers_updated = _timed(
                phases, "customers", lambda: _customers_seen(cursor, plan.customers, seen)
            )
            _timed(phases, "analyze", lambda: cursor.execute(f"ANALYZE {TABLE}"))
    if result.rebuilt and not result.frozen and not connection.in_atomic_block:
        # Rows added to a table that had some: a VACUUM marks their pages all-visible, which
        # index-only scans need (FREEZE did that for a load into an empty table).
        with connection.cursor() as cursor:
            _timed(phases, "vacuum", lambda: cursor.execute(f"VACUUM {TABLE}"))
    result.seconds = time.perf_counter() - started
    return result


def _all_names() -> list[str]:
    return sorted({name for name, _ in MOBILE_MIX + WEB_MIX})

"""Fast, seeded demo data: customers with full profiles, custom field values and tags, generated
in Python and loaded with COPY; a re-run with the same seed adds nothing twice.

The user IDs are ``demo-<seed>-<row number>``. Under a lock that keeps other writers out until the
commit, the run first asks which of its user IDs exist already (none, usually: an empty table or
a new seed), and then COPYs only the rows that are missing, so nothing can clash and no staging
table or ``ON CONFLICT`` is needed. The run takes a block of primary keys from the table's
sequence for the missing rows, so it knows each new customer's id and can COPY the tag
assignments of exactly the customers it created (nobody else can take ids meanwhile: inserting
needs a lock ours excludes).

The demo custom fields (``DEMO_CUSTOM_FIELDS``) and tags (``DEMO_TAGS``) are created when missing,
by name; a field whose name is taken by one of another type, or by a deleted field, gets no
values. Custom values are stored typed, as ``customers.custom_fields`` would store them.

A big load (at least ``REBUILD_MIN_ROWS`` rows, and at least as many as the table holds) drops
the table's plain secondary indexes first and builds them again afterwards, in the same
transaction: one sort per index is several times cheaper than a million random index insertions.
The customers and the tag assignments decide this each for their own table.

Same seed, same data: every choice (names, places, phones, custom values, tags, device profiles)
comes from one ``random.Random(seed)``, and every moment (created, first and last seen, tagged)
is counted back from the time of the run; rows skipped because they exist still take their
draws, so row ``i`` is the same whatever else is there.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import chain
from typing import TextIO

from django.db import connection, transaction
from psycopg.copy import QueuedLibpqWriter

from customers.models import CustomField, CustomFieldType

# fmt: off
FIRST_NAMES = [
    "Ada", "Alan", "Amara", "Ana", "Arjun", "Ava", "Ben", "Bianca", "Carlos", "Chen", "Chloe",
    "Daniel", "Dara", "Diego", "Elena", "Emma", "Farah", "Felix", "Grace", "Hana", "Hugo", "Ines",
    "Isaac", "Ivy", "Jonas", "Julia", "Kai", "Kenji", "Lara", "Leo", "Lina", "Lucas", "Maya",
    "Mei", "Mohammed", "Nadia", "Noah", "Nora", "Omar", "Olivia", "Priya", "Rafael", "Rosa", "Sam",
    "Sara", "Sofia", "Tariq", "Theo", "Uma", "Yara", "Zoe",
]
LAST_NAMES = [
    "Adams", "Ahmed", "Alvarez", "Bauer", "Brown", "Chen", "Costa", "Dubois", "Eriksen", "Fischer",
    "Garcia", "Hansen", "Ito", "Jansen", "Kim", "Kowalski", "Larsen", "Lee", "Lopez", "Martin",
    "Meyer", "Moreau", "Nakamura", "Novak", "Okafor", "Olsen", "Patel", "Perez", "Rossi", "Santos",
    "Schmidt", "Silva", "Singh", "Smith", "Suzuki", "Tanaka", "Taylor", "Thomas", "Walker", "Wang",
    "Weber", "Wilson", "Yamamoto", "Young", "Zhang",
]
# (city, country, region, IANA time zone, language)
CITIES = [
    ("London", "GB", "England", "Europe/London", "en"),
    ("Manchester", "GB", "England", "Europe/London", "en"),
    ("Berlin", "DE", "Berlin", "Europe/Berlin", "de"),
    ("Munich", "DE", "Bavaria", "Europe/Berlin", "de"),
    ("Paris", "FR", "Île-de-France", "Europe/Paris", "fr"),
    ("Lyon", "FR", "Auvergne-Rhône-Alpes", "Europe/Paris", "fr"),
    ("Madrid", "ES", "Community of Madrid", "Europe/Madrid", "es"),
    ("Barcelona", "ES", "Catalonia", "Europe/Madrid", "es"),
    ("Milan", "IT", "Lombardy", "Europe/Rome", "it"),
    ("Rome", "IT", "Lazio", "Europe/Rome", "it"),
    ("Amsterdam", "NL", "North Holland", "Europe/Amsterdam", "nl"),
    ("Stockholm", "SE", "Stockholm County", "Europe/Stockholm", "sv"),
    ("Oslo", "NO", "Oslo", "Europe/Oslo", "no"),
    ("Warsaw", "PL", "Masovia", "Europe/Warsaw", "pl"),
    ("Lisbon", "PT", "Lisbon", "Europe/Lisbon", "pt"),
    ("New York", "US", "New York", "America/New_York", "en"),
    ("Austin", "US", "Texas", "America/Chicago", "en"),
    ("San Francisco", "US", "California", "America/Los_Angeles", "en"),
    ("Toronto", "CA", "Ontario", "America/Toronto", "en"),
    ("São Paulo", "BR", "São Paulo", "America/Sao_Paulo", "pt"),
    ("Mexico City", "MX", "Mexico City", "America/Mexico_City", "es"),
    ("Tokyo", "JP", "Tokyo", "Asia/Tokyo", "ja"),
    ("Seoul", "KR", "Seoul", "Asia/Seoul", "ko"),
    ("Singapore", "SG", "", "Asia/Singapore", "en"),
    ("Sydney", "AU", "New South Wales", "Australia/Sydney", "en"),
    ("Mumbai", "IN", "Maharashtra", "Asia/Kolkata", "hi"),
    ("Lagos", "NG", "Lagos", "Africa/Lagos", "en"),
    ("Nairobi", "KE", "Nairobi County", "Africa/Nairobi", "sw"),
]
# A phone number is the country's prefix and three digits. Every one of the 1,000 numbers per
# prefix is valid for phonenumbers (a test checks): the fiction ranges where libphonenumber
# accepts them (US/CA 555-0xxx, AU 0491 570 xxx; the UK's 07700 900xxx and France's
# 06 39 98 xx xx it rejects), libphonenumber's own example numbers elsewhere.
PHONE_PREFIXES = {
    "GB": "+447400123", "DE": "+4915123456", "FR": "+33612345", "ES": "+34612345",
    "IT": "+393123456", "NL": "+31612345", "SE": "+46701234", "NO": "+4740612",
    "PL": "+48512345", "PT": "+351912345", "US": "+12025550", "CA": "+14165550",
    "BR": "+5511961234", "MX": "+522221234", "JP": "+819012345", "KR": "+821020000",
    "SG": "+6581234", "AU": "+61491570", "IN": "+918123456", "NG": "+2348021234",
    "KE": "+254712123",
}
# (name, label, type): fixed names, so the demo data finds its fields again.
DEMO_CUSTOM_FIELDS = [
    ("plan", "Plan", CustomFieldType.TEXT),
    ("interests", "Interests", CustomFieldType.TEXT),
    ("lifetime_value", "Lifetime value", CustomFieldType.NUMBER),
    ("loyalty_points", "Loyalty points", CustomFieldType.NUMBER),
    ("birthday", "Birthday", CustomFieldType.DATE),
    ("signup_date", "Signup date", CustomFieldType.DATE),
    ("newsletter", "Newsletter", CustomFieldType.BOOLEAN),
    ("churn_risk", "Churn risk", CustomFieldType.NUMBER),
    ("preferred_language", "Preferred language", CustomFieldType.TEXT),
    ("vip_since", "VIP since", CustomFieldType.DATE),
]
# (name, weight): how often a tag is picked relative to the others.
DEMO_TAGS = [
    ("Newsletter", 10), ("Early adopter", 5), ("Churned", 4), ("Beta tester", 3),
    ("Referral", 3), ("VIP", 2), ("Support priority", 2), ("Wholesale", 1),
]
INTERESTS = [
    "music", "books", "travel", "sports", "cooking", "gaming", "fashion", "tech", "art", "fitness",
]
# Which platforms a seen customer uses, with weights; the first one listed was used last.
PLATFORM_MIX = [
    (("web",), 40), (("ios",), 14), (("android",), 14), (("web", "ios"), 8),
    (("ios", "web"), 8), (("web", "android"), 8), (("android", "web"), 8),
]
IOS_DEVICES = ["iPhone16,1", "iPhone15,2", "iPhone14,5", "iPad13,18"]
ANDROID_DEVICES = ["Google Pixel 8", "samsung SM-S921B", "samsung SM-A546B", "OnePlus CPH2449"]
IOS_VERSIONS = ["17.4.1", "17.5", "16.7.8"]
ANDROID_VERSIONS = ["14", "13", "12"]
BROWSERS = [("Chrome", "Windows"), ("Chrome", "macOS"), ("Safari", "macOS"), ("Safari", "iOS"),
            ("Firefox", "Linux"), ("Edge", "Windows")]
# fmt: on
DOMAINS = ["example.com", "example.org", "example.net", "mail.example", "inbox.example"]
# Of every TAG_SLOTS customers, this many have 0, 1, 2 and 3 tags.
TAG_COUNT_SLOTS = (420, 330, 170, 104)
TAG_SLOTS = sum(TAG_COUNT_SLOTS)  # 1024: picked with ten bits
PROFILE_SLOTS = 4096  # device profiles to pick from
PROFILE_MASK = PROFILE_SLOTS - 1
CUSTOM_DOCS = 16384  # documents of custom values to pick from
CHUNK_ROWS = 50_000
HISTORY_DAYS = 730
# Loads at least this big (and at least as big as the table) rebuild the secondary indexes.
REBUILD_MIN_ROWS = 100_000
INDEX_BUILD_MEMORY_KB = 256 * 1024
# Tag assignments wait in memory up to this size while the customers stream; beyond, on disk.
TAG_SPOOL_BYTES = 64 * 1024 * 1024

TABLE = "customers_customer"
TAG_TABLE = "tags_customertag"
# A few of the analytics text columns: every column costs COPY time on both sides.
ANALYTICS_TEXT_COLUMNS = [
    "last_android_device", "last_android_os_version", "last_ios_device", "last_ios_os_version",
    "last_browser_name", "last_browser_os",
]  # fmt: skip
COLUMN_NAMES = [
    "id", "user_id", "name", "first_name", "last_name", "email", "city", "country", "region",
    "timezone", "phone", "external_id", "user_type", "custom", "first_seen", "last_seen",
    "last_seen_ios", "last_seen_android", "last_seen_web", *ANALYTICS_TEXT_COLUMNS,
    "created_at", "updated_at",
]  # fmt: skip
COLUMNS = ", ".join(COLUMN_NAMES)
TAG_COLUMNS = "customer_id, tag_id, added_at, source"
TAG_SOURCE = "system"
NULL = "\\N"  # COPY's text format for NULL


@dataclass
class DemoResult:
    requested: int
    created: int
    seconds: float
    tagged: int = 0  # tag assignments added
    custom_fields_created: list[str] = field(default_factory=list)
    tags_created: list[str] = field(default_factory=list)


@dataclass
class DemoSetup:
    """What the rows refer to: the demo custom fields that may get values (their names) and
    the demo tags' ids by name. Empty: rows without custom values or tags."""

    custom_fields: frozenset[str] = frozenset()
    tag_ids: dict[str, int] = field(default_factory=dict)


def user_id_prefix(seed: int) -> str:
    return f"demo-{seed}-"


def _json_fragment(name: str, value: object) -> str:
    # Leading ", " so fragments just concatenate; the row strips the first one.
    return f", {json.dumps(name)}: {json.dumps(value)}"


def _date_fragment(name: str, day: str) -> str:
    return f', "{name}": "{day}T00:00:00Z"'


def _custom_values(rng: random.Random, setup: DemoSetup, day_names: list[str]):
    """The custom values a row picks from, as JSON fragments ("" leaves the key out):

    - ``CUSTOM_DOCS`` documents of the fields that depend on nothing about the customer, each
      a random pick per field (a row picks one document: one lookup instead of seven);
    - per place, four picks of the preferred language (the local one twice, English, none);
    - per day number, the signup date and a VIP-since date.

    Built from ``rng`` the same way whatever ``setup`` holds, so the draws that follow do not
    depend on which fields exist."""
    born = date(1950, 1, 1)
    birthdays = [(born + timedelta(days=k)).isoformat() for k in range(58 * 365)]
    interests = [", ".join(rng.sample(INTERESTS, rng.choice((1, 1, 2, 2, 3)))) for _ in range(200)]
    amounts = [round(rng.lognormvariate(4.5, 1.1), 2) for _ in range(780)] + [0] * 50
    points = [int(rng.paretovariate(1.5) * 50) - 50 for _ in range(700)]
    plans = ["free"] * 6 + ["basic"] * 4 + ["pro"] * 3 + ["enterprise"]
    usable = setup.custom_fields

    def pool(name: str, values: list, size: int = 0, date: bool = False) -> list[str]:
        """Fragments for ``values``, padded with "" (no value) to ``size``, a power of two."""
        assert not size or len(values) <= size and size & (size - 1) == 0, (name, size)
        fragment = _date_fragment if date else _json_fragment
        made = [fragment(name, v) if name in usable else "" for v in values]
        return made + [""] * (size - len(made)) if size else made

    pools = [
        pool("plan", plans, 16),
        pool("interests", interests, 256),
        pool("lifetime_value", amounts, 1024),
        pool("loyalty_points", points, 1024),
        pool("birthday", birthdays, 32768, date=True),
        pool("newsletter", [True, True, False], 4),
        pool("churn_risk", [k / 100 for k in range(101)], 128),
    ]
    getrandbits = rng.getrandbits
    bits = [(p, len(p).bit_length() - 1) for p in pools]
    docs = ["".join(p[getrandbits(k)] for p, k in bits) for _ in range(CUSTOM_DOCS)]
    languages = [pool("preferred_language", [lang, lang, "en"], 4) for *_, lang in CITIES]
    days = [day.strip() for day in day_names]
    return (
        docs,
        languages,
        pool("signup_date", days, date=True),
        pool("vip_since", days, date=True),
    )


def _tag_combos(rng: random.Random, setup: DemoSetup) -> list[tuple[str, ...]]:
    """``TAG_SLOTS`` entries, each the COPY middle parts ("\\t<tag id>\\t") of one customer's
    tags: distinct tags, weighted by ``DEMO_TAGS``; empty tuples for customers without tags."""
    names = [name for name, _ in DEMO_TAGS]
    weights = [weight for _, weight in DEMO_TAGS]
    combos: list[tuple[str, ...]] = []
    for size, slots in enumerate(TAG_COUNT_SLOTS):
        for _ in range(slots):
            picked: list[str] = []
            while len(picked) < size:
                name = rng.choices(names, weights)[0]
                if name not in picked:
                    picked.append(name)
            combos.append(tuple(f"\t{setup.tag_ids[n]}\t" for n in picked if n in setup.tag_ids))
    rng.shuffle(combos)
    return combos


def _profiles(rng: random.Random) -> list[tuple[tuple[int, int, int], str]]:
    """``PROFILE_SLOTS`` device profiles of seen customers: which moment goes in
    last_seen_ios / _android / _web (0 the first seen, 1 the last seen, 2 none: the platform
    listed first was used last, a second one first) and the COPY text of
    ``ANALYTICS_TEXT_COLUMNS`` (each followed by a tab)."""
    mixes = [platforms for platforms, _ in PLATFORM_MIX]
    weights = [weight for _, weight in PLATFORM_MIX]
    profiles = []
    for _ in range(PROFILE_SLOTS):
        platforms = rng.choices(mixes, weights)[0]
        text = dict.fromkeys(ANALYTICS_TEXT_COLUMNS, "")
        if "android" in platforms:
            text["last_android_device"] = rng.choice(ANDROID_DEVICES)
            text["last_android_os_version"] = rng.choice(ANDROID_VERSIONS)
        if "ios" in platforms:
            text["last_ios_device"] = rng.choice(IOS_DEVICES)
            text["last_ios_os_version"] = rng.choice(IOS_VERSIONS)
        if "web" in platforms:
            text["last_browser_name"], text["last_browser_os"] = rng.choice(BROWSERS)
        slots = tuple(
            (1, 0)[platforms.index(p)] if p in platforms else 2 for p in ("ios", "android", "web")
        )
        profiles.append((slots, "".join(f"{value}\t" for value in text.values())))
    return profiles


def _draws(rng: random.Random, count: int) -> Iterator[array]:
    """``count`` random 64-bit numbers from ``rng``, in blocks: one ``randbytes`` call a block
    costs a fraction of a ``getrandbits(64)`` call a number."""
    for start in range(0, count, 4 * CHUNK_ROWS):
        block = array("Q", rng.randbytes(8 * min(4 * CHUNK_ROWS, count - start)))
        if sys.byteorder == "big":
            block.byteswap()  # the same numbers on every machine
        yield block


def customer_lines(
    count: int,
    seed: int,
    now: datetime,
    *,
    first_id: int = 1,
    present: bytearray | None = None,
    setup: DemoSetup | None = None,
    tags_out: _Spool | TextIO | None = None,
) -> Iterator[str]:
    """Yield chunks of COPY text lines for ``COLUMNS``, up to ``CHUNK_ROWS`` lines a chunk;
    the rows get ids ``first_id``, ``first_id + 1``, ... in order. Rows ``i`` with ``present[i]``
    set are left out (and take no id). Values never hold tabs, newlines or backslashes (NULL is
    written ``\\N``).

    With ``tags_out``, the new customers' tag assignments are written there as COPY lines for
    ``TAG_COLUMNS``. ``setup`` names the custom fields to fill and the tags' ids.

    Each row takes four 64-bit draws and cuts them into bit fields, one per choice (a mask and a
    shift are several times cheaper than ``divmod``); a choice among n things that is not a
    power of two takes k bits and scales them, ``bits * n >> k``. Every piece of text that does
    not depend on the row is made up front (pools of JSON fragments, device profiles, days and
    times of day): the hot loop only indexes lists and joins strings.
    """
    setup = setup or DemoSetup()
    rng = random.Random(seed)

    names = [
        (f"{first} {last}\t{first}\t{last}\t", f"{first.lower()}.{last.lower()}.")
        for first in FIRST_NAMES
        for last in LAST_NAMES
    ]
    # Per place, 1,024 picks of its columns with a phone number (the last 256 without one).
    places = [
        [
            f"\t{city}\t{country}\t{region}\t{zone}\t"
            + (f"{PHONE_PREFIXES[country]}{k % 1000:03d}\t" if k < 768 else "\t")
            for k in range(1024)
        ]
        for city, country, region, zone, _ in CITIES
    ]
    # 64 entries, 7 of them without an address: about one in ten.
    mail_domains = ["" if k % 10 == 0 else "@" + DOMAINS[k % len(DOMAINS)] for k in range(64)]
    n_names, n_places = len(names), len(places)

    # Moments are seconds since the first day of the history; "YYYY-MM-DD HH:MM:SS+00" is made
    # from a table of days and a table of times of day. created_at = now - age, age uniform in
    # [0, history) seconds.
    history = HISTORY_DAYS * 86400
    now_ts = int(now.timestamp())
    first_day = (now_ts - history + 1) // 86400 * 86400
    day_count = (now_ts - first_day) // 86400 + 1
    start = datetime.fromtimestamp(first_day, UTC)
    days = [(start + timedelta(days=k)).strftime("%Y-%m-%d ") for k in range(day_count)]
    times = [f"{h:02d}:{m:02d}:{s:02d}+00" for h in range(24) for m in range(60) for s in range(60)]
    now_offset = now_ts - first_day

    docs, languages, signup, vip = _custom_values(rng, setup, days)
    tag_combos = _tag_combos(rng, setup)
    profiles = _profiles(rng)
    never_seen = f"{NULL}\t" * 5 + "\t" * len(ANALYTICS_TEXT_COLUMNS)
    write_tags = tags_out.write if tags_out is not None else None

    prefix = user_id_prefix(seed)
    external_prefix = f"CRM-{seed}-"
    customer_id = first_id
    lines: list[str] = []
    append = lines.append
    tag_lines: list[str] = []
    tag_append = tag_lines.append
    draws = chain.from_iterable(_draws(rng, 4 * count))
    for i, a, b, c, d in zip(range(count), draws, draws, draws, draws, strict=False):
        if present is not None and present[i]:
            continue
        # a: who and where, and when created
        created_at = now_offset - ((a & 0xFFFFFFFF) * history >> 32)
        name_columns, local_part = names[(a >> 32 & 0xFFFF) * n_names >> 16]
        place = (a >> 48) * n_places >> 16
        created_day = created_at // 86400
        created = days[created_day] + times[created_at % 86400]
        domain = mail_domains[b & 63]
        email = f"{local_part}{i}{domain}" if domain else ""
        number = f"{i:07d}"

        # b: place and phone (three in four have one), test user (1%), external ID (3 in 8),
        # activity
        place_columns = places[place][b >> 6 & 1023]
        user_type = "test" if (b >> 18 & 1023) < 10 else "live"
        external_id = f"{external_prefix}{number}" if (b >> 28 & 7) < 3 else ""
        if (b >> 31 & 127) >= 18:  # seen (else never: about one in seven)
            first_seen = created_at + (b >> 38 & 0x3FFFF)  # up to three days after creation
            if first_seen > now_offset:
                first_seen = now_offset
            # Skewed towards now: most customers were seen lately.
            recent = c & 0xFFF
            last_seen = now_offset - ((now_offset - first_seen) * recent * recent >> 24)
            first = days[first_seen // 86400] + times[first_seen % 86400]
            last = days[last_seen // 86400] + times[last_seen % 86400]
            (ios, android, web), text_columns = profiles[c >> 24 & PROFILE_MASK]
            moments = (first, last, NULL)
            activity = (
                f"{first}\t{last}\t{moments[ios]}\t{moments[android]}\t{moments[web]}\t"
                f"{text_columns}"
            )
        else:
            first = last = created
            activity = never_seen

        # d: custom values (none at all for one in 32)
        if d & 31:
            parts = (
                f"{docs[d >> 5 & 0x3FFF]}{languages[place][d >> 19 & 3]}"
                f"{signup[created_day] if d >> 21 & 7 else ''}"
            )
            if (d >> 24 & 7) == 0:  # one in eight is a VIP since some day after signing up
                parts += vip[created_day + ((day_count - created_day) * (d >> 27 & 0xFF) >> 8)]
            custom = f"{{{parts[2:]}}}"
        else:
            custom = "{}"

        append(
            f"{customer_id}\t{prefix}{number}\t{name_columns}{email}{place_columns}"
            f"{external_id}\t{user_type}\t{custom}\t{activity}{created}\t{created}\n"
        )

        # c: tags; d: when each was added: at signup, at the first or (twice as often) the
        # last visit
        tags = tag_combos[c >> 49 & 1023]
        if tags and write_tags is not None:
            when = (created, first, last, last)
            bits = d >> 35
            for middle in tags:
                tag_append(f"{customer_id}{middle}{when[bits & 3]}\t{TAG_SOURCE}\n")
                bits >>= 2
            if len(tag_lines) >= CHUNK_ROWS:
                write_tags("".join(tag_lines))
                tag_lines.clear()

        customer_id += 1
        if len(lines) >= CHUNK_ROWS:
            yield "".join(lines)
            lines.clear()
    if lines:
        yield "".join(lines)
    if tag_lines and write_tags is not None:
        write_tags("".join(tag_lines))


def _present_rows(cursor, count: int, seed: int) -> bytearray | None:
    """Which of this run's rows exist already: ``present[i]`` is 1 when user ID
    ``demo-<seed>-<i:07d>`` does, for ``i < count``; None when none of them does."""
    prefix = user_id_prefix(seed)
    # The suffixes f"{i:07d}" writes: seven digits, or more without a leading zero.
    cursor.execute(
        f"""
        SELECT suffix::bigint FROM (
            SELECT substr(user_id, %s) AS suffix FROM {TABLE} WHERE user_id LIKE %s
        ) AS demo
        WHERE suffix ~ '^([0-9]{{7}}|[1-9][0-9]{{7,17}})$'
        """,  # noqa: S608 - TABLE is a constant
        [len(prefix) + 1, prefix + "%"],
    )
    present = None
    for (i,) in cursor:  # one row at a time: no list of a million tuples
        if i < count:
            if present is None:
                present = bytearray(count)
            present[i] = 1
    return present


def _ensure_setup() -> tuple[DemoSetup, list[str], list[str]]:
    """Create the demo custom fields and tags that are missing; return the setup and the
    names created."""

    from activity.services import Actor, activity_record
    from tags.selectors import tags_named
    from tags.services import tags_ensure

    actor = Actor.system("Demo data")
    existing = {
        f.name: f for f in CustomField.objects.filter(name__in=[n for n, *_ in DEMO_CUSTOM_FIELDS])
    }
    usable, fields_created = set(), []
    for name, label, field_type in DEMO_CUSTOM_FIELDS:
        found = existing.get(name)
        if found is None:
            # Created directly rather than through custom_field_create, which derives the name
            # from the label: the demo data needs these exact names.
            found = CustomField.objects.create(name=name, label=label, type=field_type)
            activity_record(
                actor,
                "custom_field.created",
                target_type="custom_field",
                target_id=found.pk,
                target_label=label,
                changes={"name": name, "type": field_type},
            )
            fields_created.append(name)
        if found.type == field_type and found.deleted_at is None:
            usable.add(name)

    names = [name for name, _ in DEMO_TAGS]
    had = {t.name.lower() for t in tags_named(names)}
    tags = tags_ensure(names, actor)
    tags_created = [t.name for t in tags if t.name.lower() not in had]
    setup = DemoSetup(frozenset(usable), {n: t.pk for n, t in zip(names, tags, strict=True)})
    return setup, fields_created, tags_created


class _Spool:
    """Where the tag assignments wait while the customers stream: in memory up to
    ``TAG_SPOOL_BYTES``, then in a temporary file. Counts the lines written."""

    def __init__(self) -> None:
        # Closed by __exit__.
        self.file = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            TAG_SPOOL_BYTES, mode="w+", encoding="utf-8"
        )
        self.lines = 0

    def write(self, text: str) -> None:
        self.lines += text.count("\n")
        self.file.write(text)

    def chunks(self, size: int = 1 << 20) -> Iterator[str]:
        self.file.seek(0)
        while chunk := self.file.read(size):
            yield chunk

    def __enter__(self) -> _Spool:
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()


def _reserve_ids(cursor, rows: int) -> int:
    """Take ``rows`` ids from the customer table's sequence in one block; return the first.
    Safe because the caller's lock keeps every other inserter (and its nextval) waiting."""
    cursor.execute(
        "SELECT setval(seq, nextval(seq) + %s - 1) FROM pg_get_serial_sequence(%s, 'id') AS seq",
        [rows, TABLE],
    )
    return cursor.fetchone()[0] - rows + 1


def _copy(cursor, sql: str, chunks) -> int:
    """COPY the chunks; return how many rows went in.

    A writer thread sends each chunk while the next one is generated, so Python's work and the
    server's overlap instead of taking turns.
    """
    raw = cursor.cursor  # psycopg's own cursor (Django's debug wrapper has no writer argument)
    with raw.copy(sql, writer=QueuedLibpqWriter(raw)) as copy:
        for chunk in chunks:
            copy.write(chunk)
    return raw.rowcount


def _rebuildable_indexes(cursor, table: str) -> list[tuple[str, str]]:
    """(qualified name, CREATE INDEX statement) of ``table``'s plain secondary indexes:
    valid, not unique, not behind a constraint, with nothing a re-creation would lose (tablespace,
    comment, statistics target, CLUSTER mark)."""
    cursor.execute(
        """
        SELECT quote_ident(n.nspname) || '.' || quote_ident(i.relname), pg_get_indexdef(i.oid)
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_namespace n ON n.oid = i.relnamespace
        WHERE x.indrelid = %s::regclass
          AND x.indisvalid AND x.indisready AND x.indislive
          AND NOT x.indisunique AND NOT x.indisclustered
          AND i.reltablespace = 0
          AND obj_description(i.oid, 'pg_class') IS NULL
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)
          AND NOT EXISTS (
              SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.oid AND a.attstattarget >= 0
          )
        ORDER BY i.relname
        """,
        [table],
    )
    return cursor.fetchall()


def _worth_rebuilding(cursor, table: str, rows: int) -> bool:
    """True when ``rows`` new rows are at least ``REBUILD_MIN_ROWS`` and at least as many as
    ``table`` holds already."""
    if rows < REBUILD_MIN_ROWS:
        return False
    cursor.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT %s) AS existing",  # noqa: S608
        [rows + 1],
    )
    return cursor.fetchone()[0] <= rows


def _foreign_keys(cursor, table: str, referenced: list[str]) -> list[tuple[str, str]]:
    """(quoted name, definition) of ``table``'s validated foreign keys to ``referenced`` (the
    events loader drops and puts back its key to customers)."""
    cursor.execute(
        """
        SELECT quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint
        WHERE conrelid = %s::regclass AND contype = 'f' AND convalidated
          AND confrelid = ANY (%s::regclass[])
        ORDER BY conname
        """,
        [table, referenced],
    )
    return cursor.fetchall()


def _prepare_big_load(cursor, table: str, rows: int) -> list[str]:
    """For a big load into ``table``, drop its plain secondary indexes and return the
    statements that put them back; for a small one, drop nothing and return []."""
    if not _worth_rebuilding(cursor, table, rows):
        return []
    indexes = _rebuildable_indexes(cursor, table)
    if not indexes:
        return []
    cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    _run_deferred_checks(cursor, [table])  # rows an enclosing transaction added
    cursor.execute("SELECT setting::bigint FROM pg_settings WHERE name = 'maintenance_work_mem'")
    if cursor.fetchone()[0] < INDEX_BUILD_MEMORY_KB:
        cursor.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY_KB}kB'")
    cursor.execute("DROP INDEX " + ", ".join(name for name, _ in indexes))
    return [create for _, create in indexes]


def _run_deferred_checks(cursor, tables: list[str]) -> None:
    """Run the foreign key checks still queued for ``tables`` now (ALTER TABLE and CREATE
    INDEX refuse a table with pending ones), and defer their keys again as declared."""
    cursor.execute(
        """
        SELECT quote_ident(n.nspname) || '.' || quote_ident(c.conname), c.condeferred
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE c.conrelid = ANY (%s::regclass[]) AND c.contype = 'f' AND c.condeferrable
        """,
        [tables],
    )
    deferrable = cursor.fetchall()
    if deferrable:
        cursor.execute(f"SET CONSTRAINTS {', '.join(name for name, _ in deferrable)} IMMEDIATE")
    if deferred := [name for name, initially_deferred in deferrable if initially_deferred]:
        cursor.execute(f"SET CONSTRAINTS {', '.join(deferred)} DEFERRED")


def _finish_big_load(cursor, table: str, restore: list[str]) -> None:
    if restore:
        _run_deferred_checks(cursor, [table])  # those of the keys that stayed
    for statement in restore:
        cursor.execute(statement)


def generate_customers(*, count: int, seed: int) -> DemoResult:
    started = time.perf_counter()
    result = DemoResult(requested=count, created=0, seconds=0.0)
    now = datetime.now(UTC).replace(microsecond=0)
    with transaction.atomic(), connection.cursor() as cursor, _Spool() as tags:
        # Other writers wait from here to the commit, so no user ID can appear behind our back.
        cursor.execute(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
        present = _present_rows(cursor, count, seed) if count > 0 else None
        missing = count - (present.count(1) if present is not None else 0)
        if missing > 0:
            setup, result.custom_fields_created, result.tags_created = _ensure_setup()
            restore = _prepare_big_load(cursor, TABLE, missing)
            first_id = _reserve_ids(cursor, missing)
            lines = customer_lines(
                count, seed, now, first_id=first_id, present=present, setup=setup, tags_out=tags
            )
            result.created = _copy(cursor, f"COPY {TABLE} ({COLUMNS}) FROM STDIN", lines)
            _finish_big_load(cursor, TABLE, restore)

            # The assignments keep no key constraints (tags/models.py): the customers are
            # this transaction's own, the tags are locked against deletion until it commits.
            from tags.services import TAGS_LOCKED

            cursor.execute(TAGS_LOCKED.format("%s"), [list(setup.tag_ids.values())])
            restore = _prepare_big_load(cursor, TAG_TABLE, tags.lines)
            copy_tags = f"COPY {TAG_TABLE} ({TAG_COLUMNS}) FROM STDIN"
            result.tagged = _copy(cursor, copy_tags, tags.chunks())
            _finish_big_load(cursor, TAG_TABLE, restore)
    if result.created:
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {TABLE}, {TAG_TABLE}")
    result.seconds = time.perf_counter() - started
    return result

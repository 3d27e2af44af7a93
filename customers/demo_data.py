"""Fast, seeded demo data: rows generated in Python and loaded with COPY straight into the
customers table; a re-run with the same seed adds nothing twice.

The user IDs are ``demo-<seed>-<row number>``. Under a lock that keeps other writers out until the
commit, the run first asks which of its user IDs exist already (none, usually: an empty table or
a new seed), and then COPYs only the rows that are missing, so nothing can clash and no staging
table or ``ON CONFLICT`` is needed. A big load (at least ``REBUILD_MIN_ROWS`` rows, and at least
as many as the table holds) drops the table's plain secondary indexes first and builds them again
afterwards, in the same transaction: one sort per index is several times cheaper than a million
random index insertions.

Same seed, same data: the names, e-mails, cities and the age of each ``created_at`` (counted back
from the time of the run) come from one ``random.Random(seed)``; rows skipped because they exist
still take their draw, so row ``i`` is the same whatever else is there.

Later issues extend this with custom fields, tags and events.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from psycopg.copy import QueuedLibpqWriter

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
CITIES = [
    ("London", "GB"), ("Manchester", "GB"), ("Berlin", "DE"), ("Munich", "DE"), ("Paris", "FR"),
    ("Lyon", "FR"), ("Madrid", "ES"), ("Barcelona", "ES"), ("Milan", "IT"), ("Rome", "IT"),
    ("Amsterdam", "NL"), ("Stockholm", "SE"), ("Oslo", "NO"), ("Warsaw", "PL"), ("Lisbon", "PT"),
    ("New York", "US"), ("Austin", "US"), ("San Francisco", "US"), ("Toronto", "CA"),
    ("São Paulo", "BR"), ("Mexico City", "MX"), ("Tokyo", "JP"), ("Seoul", "KR"),
    ("Singapore", "SG"), ("Sydney", "AU"), ("Mumbai", "IN"), ("Lagos", "NG"), ("Nairobi", "KE"),
]
# fmt: on
DOMAINS = ["example.com", "example.org", "example.net", "mail.example", "inbox.example"]
NO_EMAIL_ONE_IN = 10  # one customer in ten has no e-mail address
CHUNK_ROWS = 50_000
HISTORY_DAYS = 730
# Loads at least this big (and at least as big as the table) rebuild the secondary indexes.
REBUILD_MIN_ROWS = 100_000
INDEX_BUILD_MEMORY_KB = 256 * 1024

TABLE = "customers_customer"
COLUMNS = "user_id, name, first_name, last_name, email, city, country, created_at, updated_at"


@dataclass
class DemoResult:
    requested: int
    created: int
    seconds: float


def user_id_prefix(seed: int) -> str:
    return f"demo-{seed}-"


def customer_lines(
    count: int, seed: int, now: datetime, *, present: bytearray | None = None
) -> Iterator[str]:
    """Yield chunks of COPY text lines for ``COLUMNS`` (values never hold tabs, newlines or
    backslashes), up to ``CHUNK_ROWS`` lines a chunk. Rows ``i`` with ``present[i]`` set are
    left out.

    One 64-bit draw a row is split into the row's choices (name, place, e-mail, age), and every
    piece of text that does not depend on the row number is made up front: the hot loop only
    indexes lists and joins strings.
    """
    names = [
        (f"{first} {last}\t{first}\t{last}\t", f"{first.lower()}.{last.lower()}.")
        for first in FIRST_NAMES
        for last in LAST_NAMES
    ]
    places = [f"\t{city}\t{country}\t" for city, country in CITIES]
    mail_domains = [
        "" if k % NO_EMAIL_ONE_IN == 0 else "@" + DOMAINS[k // NO_EMAIL_ONE_IN]
        for k in range(NO_EMAIL_ONE_IN * len(DOMAINS))
    ]
    n_names, n_places, n_mail = len(names), len(places), len(mail_domains)

    # created_at = now - age, age uniform in [0, history) seconds, written as
    # "YYYY-MM-DD HH:MM:SS+00" from a table of days and a table of times of day.
    history = HISTORY_DAYS * 86400
    now_ts = int(now.timestamp())
    first_day = (now_ts - history + 1) // 86400 * 86400
    day_count = (now_ts - first_day) // 86400 + 1
    start = datetime.fromtimestamp(first_day, UTC)
    days = [(start + timedelta(days=k)).strftime("%Y-%m-%d ") for k in range(day_count)]
    times = [f"{h:02d}:{m:02d}:{s:02d}+00" for h in range(24) for m in range(60) for s in range(60)]
    now_offset = now_ts - first_day

    getrandbits = random.Random(seed).getrandbits
    prefix = user_id_prefix(seed)
    lines: list[str] = []
    append = lines.append
    for i in range(count):
        draw, age = divmod(getrandbits(64), history)
        if present is not None and present[i]:
            continue
        draw, name = divmod(draw, n_names)
        draw, place = divmod(draw, n_places)
        domain = mail_domains[draw % n_mail]
        seconds = now_offset - age
        created = days[seconds // 86400] + times[seconds % 86400]
        name_columns, local_part = names[name]
        email = f"{local_part}{i}{domain}" if domain else ""
        append(f"{prefix}{i:07d}\t{name_columns}{email}{places[place]}{created}\t{created}\n")
        if len(lines) >= CHUNK_ROWS:
            yield "".join(lines)
            lines.clear()
    if lines:
        yield "".join(lines)


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


def _copy(cursor, count: int, seed: int, now: datetime, present: bytearray | None) -> int:
    """COPY the generated rows into the customers table; return how many went in.

    A writer thread sends each chunk while the next one is generated, so Python's work and the
    server's overlap instead of taking turns.
    """
    raw = cursor.cursor  # psycopg's own cursor (Django's debug wrapper has no writer argument)
    with raw.copy(f"COPY {TABLE} ({COLUMNS}) FROM STDIN", writer=QueuedLibpqWriter(raw)) as copy:
        for chunk in customer_lines(count, seed, now, present=present):
            copy.write(chunk)
    return raw.rowcount


def _rebuildable_indexes(cursor) -> list[tuple[str, str]]:
    """(qualified name, CREATE INDEX statement) of the customer table's plain secondary indexes:
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
        [TABLE],
    )
    return cursor.fetchall()


def _worth_rebuilding(cursor, rows: int) -> bool:
    """True when ``rows`` new rows are at least ``REBUILD_MIN_ROWS`` and at least as many as
    the table holds already."""
    if rows < REBUILD_MIN_ROWS:
        return False
    cursor.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM {TABLE} LIMIT %s) AS existing",  # noqa: S608
        [rows + 1],
    )
    return cursor.fetchone()[0] <= rows


def generate_customers(*, count: int, seed: int) -> DemoResult:
    started = time.perf_counter()
    created = 0
    now = datetime.now(UTC).replace(microsecond=0)
    with transaction.atomic(), connection.cursor() as cursor:
        # Other writers wait from here to the commit, so no user ID can appear behind our back.
        cursor.execute(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
        present = _present_rows(cursor, count, seed) if count > 0 else None
        missing = count - (present.count(1) if present is not None else 0)
        if missing > 0:
            indexes = _rebuildable_indexes(cursor) if _worth_rebuilding(cursor, missing) else []
            if indexes:
                cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
                cursor.execute(
                    "SELECT setting::bigint FROM pg_settings WHERE name = 'maintenance_work_mem'"
                )
                if cursor.fetchone()[0] < INDEX_BUILD_MEMORY_KB:
                    cursor.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY_KB}kB'")
                cursor.execute("DROP INDEX " + ", ".join(name for name, _ in indexes))
            created = _copy(cursor, count, seed, now, present)
            for _, create in indexes:
                cursor.execute(create)
    if created:
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {TABLE}")
    return DemoResult(requested=count, created=created, seconds=time.perf_counter() - started)

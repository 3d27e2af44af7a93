"""Fast, seeded demo data: rows generated in Python, loaded with COPY into a staging table and
merged with one INSERT … ON CONFLICT, so a re-run with the same seed adds nothing twice.

Later issues extend this with custom fields, tags and events.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

FIRST_NAMES = (
    "Ada Alan Amara Ana Arjun Ava Ben Bianca Carlos Chen Chloe Daniel Dara Diego Elena Emma Farah "
    "Felix Grace Hana Hugo Ines Isaac Ivy Jonas Julia Kai Kenji Lara Leo Lina Lucas Maya Mei "
    "Mohammed Nadia Noah Nora Omar Olivia Priya Rafael Rosa Sam Sara Sofia Tariq Theo Uma Yara Zoe"
).split()
LAST_NAMES = (
    "Adams Ahmed Alvarez Bauer Brown Chen Costa Dubois Eriksen Fischer Garcia Hansen Ito Jansen "
    "Kim Kowalski Larsen Lee Lopez Martin Meyer Moreau Nakamura Novak Okafor Olsen Patel Perez "
    "Rossi Santos Schmidt Silva Singh Smith Suzuki Tanaka Taylor Thomas Walker Wang Weber Wilson "
    "Yamamoto Young Zhang"
).split()
CITIES = [
    ("London", "GB"), ("Manchester", "GB"), ("Berlin", "DE"), ("Munich", "DE"), ("Paris", "FR"),
    ("Lyon", "FR"), ("Madrid", "ES"), ("Barcelona", "ES"), ("Milan", "IT"), ("Rome", "IT"),
    ("Amsterdam", "NL"), ("Stockholm", "SE"), ("Oslo", "NO"), ("Warsaw", "PL"), ("Lisbon", "PT"),
    ("New York", "US"), ("Austin", "US"), ("San Francisco", "US"), ("Toronto", "CA"),
    ("São Paulo", "BR"), ("Mexico City", "MX"), ("Tokyo", "JP"), ("Seoul", "KR"),
    ("Singapore", "SG"), ("Sydney", "AU"), ("Mumbai", "IN"), ("Lagos", "NG"), ("Nairobi", "KE"),
]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example", "inbox.example"]
CHUNK_ROWS = 50_000
HISTORY_DAYS = 730


@dataclass
class DemoResult:
    requested: int
    created: int
    seconds: float


def customer_lines(count: int, seed: int, now: datetime):
    """Yield chunks of COPY text lines (tab-separated); values never contain tabs or newlines."""
    rng = random.Random(seed)
    choice, randrange = rng.choice, rng.randrange
    history = HISTORY_DAYS * 86400
    lines: list[str] = []
    for i in range(count):
        first, last = choice(FIRST_NAMES), choice(LAST_NAMES)
        city, country = choice(CITIES)
        created = (now - timedelta(seconds=randrange(history))).isoformat()
        email = f"{first.lower()}.{last.lower()}.{i}@{choice(DOMAINS)}" if randrange(10) else ""
        lines.append(
            f"demo-{seed}-{i:07d}\t{first} {last}\t{first}\t{last}\t{email}\t{city}\t{country}\t{created}\n"
        )
        if len(lines) >= CHUNK_ROWS:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)


def generate_customers(*, count: int, seed: int) -> DemoResult:
    started = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=0)
    columns = "user_id, name, first_name, last_name, email, city, country, created_at"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE demo_customer_stage (user_id text, name text, first_name text,"
            " last_name text, email text, city text, country text, created_at timestamptz)"
            " ON COMMIT DROP"
        )
        with cursor.copy(f"COPY demo_customer_stage ({columns}) FROM STDIN") as copy:
            for chunk in customer_lines(count, seed, now):
                copy.write(chunk)
        cursor.execute(
            f"INSERT INTO customers_customer ({columns}, updated_at)"
            f" SELECT {columns}, created_at FROM demo_customer_stage"
            " ON CONFLICT (user_id) DO NOTHING"
        )
        created = cursor.rowcount
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_customer")
    return DemoResult(requested=count, created=created, seconds=time.perf_counter() - started)

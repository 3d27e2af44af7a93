"""The event catalog: every event name with its count, first and last seen, and the property
keys observed with their inferred types (what the segment builder offers)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db import connection

PROPERTY_TYPES = ("string", "number", "boolean", "date", "object", "array", "mixed")
# A sender that puts ids in property keys would grow a type's key list without end.
MAX_PROPERTY_KEYS = 200
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?")


def value_type(value: Any) -> str | None:
    """The catalog type of one property value (None for null: it says nothing)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "date" if _DATE_RE.fullmatch(value) and _real_date(value) else "string"
    if isinstance(value, dict):
        return "object"
    return "array"


def _real_date(text: str) -> bool:
    try:
        date.fromisoformat(text[:10])
    except ValueError:
        return False
    return True


def merge_type(old: str | None, new: str | None) -> str | None:
    """Types seen for one key, combined: dates among free text are text; anything else that
    disagrees is "mixed"."""
    if old is None or old == new:
        return new if old is None else old
    if new is None:
        return old
    if {old, new} == {"date", "string"}:
        return "string"
    return "mixed"


@dataclass
class TypeStats:
    """What one batch adds to one event type's catalog row."""

    count: int = 0
    first: datetime | None = None
    last: datetime | None = None
    properties: dict[str, str] = field(default_factory=dict)

    def add(self, at: datetime, properties: dict[str, Any]) -> None:
        self.count += 1
        self.first = at if self.first is None else min(self.first, at)
        self.last = at if self.last is None else max(self.last, at)
        for key, value in properties.items():
            kind = value_type(value)
            if kind is not None:
                self.properties[key] = merge_type(self.properties.get(key), kind)


def new_property_types(known: dict[str, str], seen: dict[str, str]) -> dict[str, str]:
    """The keys whose catalog type ``seen`` changes (new keys, up to the cap, or wider types)."""
    changes = {}
    room = MAX_PROPERTY_KEYS - len(known)
    for key, kind in seen.items():
        if key in known:
            merged = merge_type(known[key], kind)
            if merged != known[key]:
                changes[key] = merged
        elif room > 0:
            changes[key] = kind
            room -= 1
    return changes


_CATALOG_UPDATE_SQL = """
UPDATE events_eventtype t SET
    event_count = t.event_count + v.n,
    first_seen = LEAST(t.first_seen, v.first),
    last_seen = GREATEST(t.last_seen, v.last),
    properties = CASE WHEN v.props = '{}'::jsonb THEN t.properties ELSE t.properties || v.props END
FROM jsonb_to_recordset(%s::jsonb)
    AS v(id bigint, n bigint, first timestamptz, last timestamptz, props jsonb)
WHERE t.id = v.id
"""


def catalog_add(cursor, stats: dict[int, TypeStats]) -> None:
    """Add a batch's counts and property types to the catalog: the last writes of an ingest
    transaction, so the hot catalog rows stay locked only until the commit right after. The
    rows are locked in id order (no deadlocks between batches) and their property types read
    under that lock, so concurrent batches widen types and respect the key cap."""
    if not stats:
        return
    cursor.execute(
        "SELECT id, properties FROM events_eventtype WHERE id = ANY(%s)"
        " ORDER BY id FOR NO KEY UPDATE",
        [sorted(stats)],
    )
    known = {pk: jsonb_value(props) for pk, props in cursor.fetchall()}
    rows = [
        {
            "id": type_id,
            "n": s.count,
            "first": s.first.isoformat(),
            "last": s.last.isoformat(),
            "props": new_property_types(known.get(type_id, {}), s.properties),
        }
        for type_id, s in sorted(stats.items())
    ]
    cursor.execute(_CATALOG_UPDATE_SQL, [json.dumps(rows)])


def jsonb_value(value: Any) -> Any:
    # Django's psycopg set-up leaves jsonb as text for its JSONField to decode.
    return json.loads(value) if isinstance(value, str) else value


def event_types_ensure(cursor, names: Iterable[str]) -> dict[str, int]:
    """name → catalog id for ``names``, creating rows for new custom events. Creation does not
    lock existing rows, so concurrent batches do not queue here."""
    names = sorted(set(names))
    found = _types_named(cursor, names)
    missing = [n for n in names if n not in found]
    if missing:
        cursor.execute(
            "INSERT INTO events_eventtype (name) SELECT unnest(%s::text[])"
            " ON CONFLICT (name) DO NOTHING",
            [missing],
        )
        found |= _types_named(cursor, missing)
    return found


def _types_named(cursor, names: list[str]) -> dict[str, int]:
    cursor.execute("SELECT name, id FROM events_eventtype WHERE name = ANY(%s)", [names])
    return dict(cursor.fetchall())


def catalog_recount() -> int:
    """Recompute every type's count and first/last seen from the events table (an index-only
    scan of the (type, time) index): the correction after retention and erasures, which
    remove events without touching the catalog. Returns the number of types changed."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH counts AS (
                SELECT event_type_id AS id, count(*) AS n,
                       min(occurred_at) AS first, max(occurred_at) AS last
                FROM events_event GROUP BY event_type_id
            )
            UPDATE events_eventtype t SET
                event_count = COALESCE(c.n, 0), first_seen = c.first, last_seen = c.last
            FROM events_eventtype t2 LEFT JOIN counts c ON c.id = t2.id
            WHERE t.id = t2.id AND (t.event_count, t.first_seen, t.last_seen)
                IS DISTINCT FROM (COALESCE(c.n, 0), c.first, c.last)
            """
        )
        return cursor.rowcount

"""Keeping a customer's analytics fields current from the events they send.

Context keys → customer fields (README "Events: context keys"):

| context key       | iOS                  | Android                  | Web                     |
|-------------------|----------------------|--------------------------|-------------------------|
| (event time)      | last_seen_ios        | last_seen_android        | last_seen_web           |
| sdk_version       | last_ios_sdk_version | last_android_sdk_version | last_web_sdk_version    |
| os_version        | last_ios_os_version  | last_android_os_version  | last_browser_os_version |
| device            | last_ios_device_name | last_android_device_name | —                       |
| os_version+device | last_ios_device      | last_android_device      | —                       |
| user_agent        | —                    | —                        | last_browser            |
| browser           | —                    | —                        | last_browser_name       |
| browser_version   | —                    | —                        | last_browser_version    |
| os                | —                    | —                        | last_browser_os         |

Every event moves first_seen back / last_seen forward (never the other way, so late arrivals
are harmless). Each per-platform text field takes the newest value sent for its context key,
and only when that event is newer than the stored last-seen time for the platform; a key an
event leaves out keeps its stored value. The device summary ("iOS 17.4, iPhone16,1") is
rebuilt from the resulting OS version and device name whenever either changes. Analytics
changes do not touch updated_at (that is profile edits).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

PLATFORMS = ("ios", "android", "web")
PLATFORM_LABELS = {"ios": "iOS", "android": "Android", "web": "Web"}
# Context keys read into analytics fields, with the longest value accepted.
CONTEXT_TEXT_KEYS = {
    "sdk_version": 64,
    "os_version": 64,
    "device": 200,
    "user_agent": 1024,
    "browser": 64,
    "browser_version": 64,
    "os": 64,
}
DEVICE_SUMMARY = "device_summary"  # "iOS 17.4.1, iPhone16,1": OS version and device model
PLATFORM_FIELDS: dict[str, dict[str, str]] = {
    "ios": {
        "sdk_version": "last_ios_sdk_version",
        "os_version": "last_ios_os_version",
        "device": "last_ios_device_name",
        DEVICE_SUMMARY: "last_ios_device",
    },
    "android": {
        "sdk_version": "last_android_sdk_version",
        "os_version": "last_android_os_version",
        "device": "last_android_device_name",
        DEVICE_SUMMARY: "last_android_device",
    },
    "web": {
        "sdk_version": "last_web_sdk_version",
        "os_version": "last_browser_os_version",
        "user_agent": "last_browser",
        "browser": "last_browser_name",
        "browser_version": "last_browser_version",
        "os": "last_browser_os",
    },
}
SEEN_FIELDS = {platform: f"last_seen_{platform}" for platform in PLATFORMS}
# (platform, context key, column) for the fields copied from the context as they are.
_COPIED = [
    (platform, key, column)
    for platform, fields in PLATFORM_FIELDS.items()
    for key, column in fields.items()
    if key != DEVICE_SUMMARY
]


def analytics_rows(events: Iterable[tuple[int, datetime, str, dict[str, Any]]]) -> list[dict]:
    """Per customer: earliest and latest event time; per platform the newest event time, and
    per context key the newest value given with its time (so how events are split into
    batches does not change the result). ``events`` are (customer_id, occurred_at, platform,
    context)."""
    rows: dict[int, dict[str, Any]] = {}
    for customer_id, at, platform, context in events:
        row = rows.get(customer_id)
        if row is None:
            row = rows[customer_id] = {"id": customer_id, "first_seen": at, "last_seen": at}
        else:
            row["first_seen"] = min(row["first_seen"], at)
            row["last_seen"] = max(row["last_seen"], at)
        if not platform:
            continue
        seen = SEEN_FIELDS[platform]
        if row.get(seen) is None or at > row[seen]:
            row[seen] = at
        for key, column in PLATFORM_FIELDS[platform].items():
            value = context.get(key) if key != DEVICE_SUMMARY else None
            if value is None or not str(value).strip():
                continue
            stamp = f"{column}_at"
            if row.get(stamp) is None or at > row[stamp]:
                row[column], row[stamp] = str(value).strip(), at
    return [
        {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
        for row in rows.values()
    ]


def _newer(column: str, seen: str) -> str:
    return f"(v.{column}_at IS NOT NULL AND (c.{seen} IS NULL OR v.{column}_at > c.{seen}))"


def _value(column: str, seen: str) -> str:
    return f"CASE WHEN {_newer(column, seen)} THEN v.{column} ELSE c.{column} END"


def _update_sql() -> str:
    record = ["id bigint", "first_seen timestamptz", "last_seen timestamptz"]
    record += [f"{col} timestamptz" for col in SEEN_FIELDS.values()]
    record += [f"{col} text, {col}_at timestamptz" for _, _, col in _COPIED]
    sets = [
        "first_seen = LEAST(c.first_seen, v.first_seen)",
        "last_seen = GREATEST(c.last_seen, v.last_seen)",
    ]
    changed = [
        "c.first_seen IS NULL",
        "v.first_seen < c.first_seen",
        "c.last_seen IS NULL",
        "v.last_seen > c.last_seen",
    ]
    for platform, seen in SEEN_FIELDS.items():
        sets.append(f"{seen} = GREATEST(c.{seen}, v.{seen})")
        changed.append(f"(v.{seen} IS NOT NULL AND (c.{seen} IS NULL OR v.{seen} > c.{seen}))")
        sets += [f"{col} = {_value(col, seen)}" for p, _, col in _COPIED if p == platform]
        fields = PLATFORM_FIELDS[platform]
        if DEVICE_SUMMARY in fields:
            os_col, device_col = fields["os_version"], fields["device"]
            label = PLATFORM_LABELS[platform]
            sets.append(
                f"{fields[DEVICE_SUMMARY]} = CASE"
                f" WHEN {_newer(os_col, seen)} OR {_newer(device_col, seen)} THEN left(concat_ws("
                f"', ', '{label} ' || NULLIF({_value(os_col, seen)}, ''),"
                f" NULLIF({_value(device_col, seen)}, '')), 255)"
                f" ELSE c.{fields[DEVICE_SUMMARY]} END"
            )
    # Rows are locked in id order first, so two batches touching the same customers queue up
    # instead of deadlocking; only rows the batch moves forward, since the fields only ever
    # move one way: a row with nothing newer now has nothing newer after a concurrent batch
    # either (and a locked row that changed meanwhile is checked again). Built from the
    # constant column registry above only.
    return f"""
WITH v AS MATERIALIZED (
    SELECT * FROM jsonb_to_recordset(%s::jsonb) AS v({", ".join(record)})
), locked AS MATERIALIZED (
    SELECT c.id FROM customers_customer c JOIN v ON v.id = c.id
    WHERE {" OR ".join(changed)}
    ORDER BY c.id FOR NO KEY UPDATE OF c
)
UPDATE customers_customer c SET {", ".join(sets)}
FROM v JOIN locked USING (id)
WHERE c.id = v.id AND ({" OR ".join(changed)})
"""  # noqa: S608


ANALYTICS_UPDATE_SQL = _update_sql()


def customers_analytics_update(cursor, rows: list[dict]) -> int:
    """Apply ``analytics_rows`` output; returns how many customers changed."""
    if not rows:
        return 0
    cursor.execute(ANALYTICS_UPDATE_SQL, [json.dumps(rows)])
    return cursor.rowcount

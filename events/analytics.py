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
are harmless). Per-platform text fields come from the newest event of that platform, and only
when it is newer than the stored last-seen time for the platform; a key the event leaves out
keeps its stored value. Analytics changes do not touch updated_at (that is profile edits).
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
_TEXT_COLUMNS = [(p, col) for p, fields in PLATFORM_FIELDS.items() for col in fields.values()]


def platform_values(platform: str, context: dict[str, Any]) -> dict[str, str]:
    """The analytics text fields one event's context sets (only keys it gives)."""
    values = {}
    for key, column in PLATFORM_FIELDS[platform].items():
        value = context.get(key)
        if value is not None and str(value).strip():
            values[column] = str(value).strip()
    if DEVICE_SUMMARY in PLATFORM_FIELDS[platform]:
        parts = [context.get("os_version"), context.get("device")]
        if any(p is not None and str(p).strip() for p in parts):
            os_part = f"{PLATFORM_LABELS[platform]} {parts[0]}".strip() if parts[0] else ""
            summary = ", ".join(s for s in (os_part, str(parts[1] or "").strip()) if s)
            values[PLATFORM_FIELDS[platform][DEVICE_SUMMARY]] = summary[:255]
    return values


def analytics_rows(events: Iterable[tuple[int, datetime, str, dict[str, Any]]]) -> list[dict]:
    """Per customer: earliest and latest event time, and per platform the newest event's time
    and text fields. ``events`` are (customer_id, occurred_at, platform, context)."""
    rows: dict[int, dict[str, Any]] = {}
    newest: dict[tuple[int, str], tuple[datetime, dict[str, Any]]] = {}
    for customer_id, at, platform, context in events:
        row = rows.get(customer_id)
        if row is None:
            rows[customer_id] = {"id": customer_id, "first_seen": at, "last_seen": at}
        else:
            row["first_seen"] = min(row["first_seen"], at)
            row["last_seen"] = max(row["last_seen"], at)
        if platform:
            known = newest.get((customer_id, platform))
            if known is None or at > known[0]:
                newest[(customer_id, platform)] = (at, context)
    for (customer_id, platform), (at, context) in newest.items():
        row = rows[customer_id]
        row[SEEN_FIELDS[platform]] = at
        row.update(platform_values(platform, context))
    return [
        {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
        for row in rows.values()
    ]


def _update_sql() -> str:
    record = ["id bigint", "first_seen timestamptz", "last_seen timestamptz"]
    record += [f"{col} timestamptz" for col in SEEN_FIELDS.values()]
    record += [f"{col} text" for _, col in _TEXT_COLUMNS]
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
        newer = f"(c.{seen} IS NULL OR v.{seen} > c.{seen})"
        sets.append(f"{seen} = GREATEST(c.{seen}, v.{seen})")
        changed.append(f"(v.{seen} IS NOT NULL AND {newer})")
        sets += [
            f"{col} = CASE WHEN {newer} THEN COALESCE(v.{col}, c.{col}) ELSE c.{col} END"
            for p, col in _TEXT_COLUMNS
            if p == platform
        ]
    # Rows are locked in id order first, so two batches touching the same customers queue up
    # instead of deadlocking. Built from the constant column registry above only.
    return f"""
WITH v AS MATERIALIZED (
    SELECT * FROM jsonb_to_recordset(%s::jsonb) AS v({", ".join(record)})
), locked AS MATERIALIZED (
    SELECT c.id FROM customers_customer c WHERE c.id IN (SELECT id FROM v)
    ORDER BY c.id FOR NO KEY UPDATE
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

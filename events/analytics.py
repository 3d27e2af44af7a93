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


# The update's input columns, in order: (name, SQL type).
COLUMNS: list[tuple[str, str]] = [
    ("id", "bigint"),
    ("first_seen", "timestamptz"),
    ("last_seen", "timestamptz"),
    *((seen, "timestamptz") for seen in SEEN_FIELDS.values()),
    *(pair for _, _, col in _COPIED for pair in ((col, "text"), (f"{col}_at", "timestamptz"))),
]


def analytics_columns(events: Iterable[tuple[int, datetime, str, dict[str, Any]]]) -> list[list]:
    """Per customer (in id order): earliest and latest event time; per platform the newest
    event time, and per context key the newest value given with its time (so how events are
    split into batches does not change the result). ``events`` are (customer_id, occurred_at,
    platform, context). Returns one list per ``COLUMNS`` entry."""
    seen: dict[int, list] = {}  # id → [first, last, {platform: [(at, context), ...]}]
    for customer_id, at, platform, context in events:
        row = seen.get(customer_id)
        if row is None:
            row = seen[customer_id] = [at, at, {}]
        elif at < row[0]:
            row[0] = at
        elif at > row[1]:
            row[1] = at
        if platform:
            row[2].setdefault(platform, []).append((at, context))
    columns: list[list] = [[] for _ in COLUMNS]
    for customer_id in sorted(seen):
        first, last, platforms = seen[customer_id]
        values = {"id": customer_id, "first_seen": first, "last_seen": last}
        for platform, sent in platforms.items():
            values |= _platform_values(platform, sent)
        for column, (name, _) in zip(columns, COLUMNS, strict=True):
            column.append(values.get(name))
    return columns


def _platform_values(platform: str, sent: list[tuple[datetime, dict[str, Any]]]) -> dict:
    """A platform's last-seen time and, per copied field, the newest value sent with its time
    (of equal times, the first sent)."""
    if len(sent) > 1:
        sent = sorted(sent, key=lambda s: s[0], reverse=True)
    values: dict[str, Any] = {SEEN_FIELDS[platform]: sent[0][0]}
    for key, column in PLATFORM_FIELDS[platform].items():
        if key == DEVICE_SUMMARY:
            continue
        for at, context in sent:
            value = context.get(key)
            if value is not None and (text := str(value).strip()):
                values[column], values[f"{column}_at"] = text, at
                break
    return values


def _newer(column: str, seen: str) -> str:
    return f"(v.{column}_at IS NOT NULL AND (c.{seen} IS NULL OR v.{column}_at > c.{seen}))"


def _value(column: str, seen: str) -> str:
    return f"CASE WHEN {_newer(column, seen)} THEN v.{column} ELSE c.{column} END"


def _update_sql() -> str:
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
    # The customers come in id order and the planner walks them along the primary key, so
    # two batches touching the same customers lock them in the same order (a deadlock, should
    # another plan ever be chosen, rolls the batch back and ingest retries it). Only rows the
    # batch moves forward are written: the fields only ever move one way, and a row that
    # changed meanwhile is checked again before it is updated. Built from the constant column
    # registry above only.
    arrays = ", ".join(f"%b::{sql_type}[]" for _, sql_type in COLUMNS)
    names = ", ".join(name for name, _ in COLUMNS)
    return f"""
UPDATE customers_customer c SET {", ".join(sets)}
FROM unnest({arrays}) AS v({names})
WHERE c.id = v.id AND ({" OR ".join(changed)})
"""  # noqa: S608


ANALYTICS_UPDATE_SQL = _update_sql()


def customers_analytics_update(cursor, columns: list[list]) -> int:
    """Apply ``analytics_columns`` output with a ``bound_cursor``; returns how many customers
    changed."""
    if not columns[0]:
        return 0
    cursor.execute(ANALYTICS_UPDATE_SQL, columns)
    return cursor.rowcount

"""Expression indexes for the custom fields segments filter on.

A custom field lives in the ``custom`` JSONB column, so a filter on it cannot use an index
unless one exists on exactly the expression the compiler writes (segments/fields.py). Only
fields some segment uses get one: a B-tree on the typed value (text: its lower-case form),
and for text read with contains / starts with / ends with a trigram index as well. They are
built CONCURRENTLY (writes go on) by a background job and dropped when no segment needs them.
"""

from __future__ import annotations

import hashlib
import time

from django.db import connection
from psycopg import sql

from segments.fields import FieldType, Registry
from segments.models import Segment
from segments.rules import rules_dependencies

PREFIX = "seg_cf_"
SYNC_LOCK_NAMESPACE = 5108  # pg_advisory_lock(namespace, 0)
TRIGRAM_OPS = ("starts_with", "ends_with", "contains", "not_contains")


def _name(kind: str, field_name: str, field_type: str) -> str:
    # The type is in the digest: a deleted field's name can be reused with another type, and
    # its index (another expression) must then be replaced, not kept because the name matches.
    digest = hashlib.sha256(f"{field_name}:{field_type}".encode()).hexdigest()[:8]
    return f"{PREFIX}{kind}_{field_name}"[:50] + f"_{digest}"


def _expression(sql_text: str, field_name: str) -> sql.Composed:
    parts = sql_text.split("%s")
    composed = [sql.SQL(parts[0])]
    for part in parts[1:]:
        composed += [sql.Literal(field_name), sql.SQL(part)]
    return sql.Composed(composed)


def wanted_indexes(registry: Registry | None = None) -> dict[str, sql.Composed]:
    registry = registry or Registry.load()
    wanted: dict[str, sql.Composed] = {}
    for rules in Segment.objects.values_list("rules", flat=True):
        for field_name, operator in rules_dependencies(rules, registry).custom_fields:
            field = registry.get(f"custom.{field_name}")
            if field is None:
                continue
            expr = _expression(field.sql.replace("c.custom", "custom"), field_name)
            if field.type == FieldType.MULTI_TEXT:
                lowered = sql.SQL("lower({})").format(expr)
                wanted[_name("b", field_name, field.type)] = sql.SQL("USING btree (({}))").format(
                    lowered
                )
                if operator in TRIGRAM_OPS:
                    wanted[_name("t", field_name, field.type)] = sql.SQL(
                        "USING gin (({}) gin_trgm_ops)"
                    ).format(lowered)
            else:
                wanted[_name("b", field_name, field.type)] = sql.SQL("USING btree (({}))").format(
                    expr
                )
    return wanted


def indexes_sync() -> dict[str, list[str]]:
    """Create missing indexes and drop unneeded ones; runs outside a transaction (CONCURRENTLY).
    One sync at a time (a session advisory lock): several saves queue several syncs, and two
    CREATE INDEX CONCURRENTLY of the same index deadlock. A sync that waited finds the work
    done and reads what is wanted after the wait. It waits by polling, idle between tries: a
    session blocked in pg_advisory_lock holds a snapshot that CREATE INDEX CONCURRENTLY would
    wait for in turn (a deadlock)."""
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, 0)", [SYNC_LOCK_NAMESPACE])
            if cursor.fetchone()[0]:
                break
        time.sleep(0.5)
    try:
        return _sync()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, 0)", [SYNC_LOCK_NAMESPACE])


def _sync() -> dict[str, list[str]]:
    wanted = wanted_indexes()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes"
            " WHERE tablename = 'customers_customer' AND indexname LIKE %s",
            [PREFIX + "%"],
        )
        existing = dict(cursor.fetchall())
        cursor.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE NOT i.indisvalid AND c.relname LIKE %s",
            [PREFIX + "%"],
        )
        invalid = {row[0] for row in cursor.fetchall()}
        created, dropped = [], []
        for name in sorted(set(existing) - set(wanted) | invalid):
            # An invalid index is what a killed CONCURRENTLY build leaves; rebuild it.
            cursor.execute(
                sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name))
            )
            dropped.append(name)
        for name, definition in sorted(wanted.items()):
            if name in existing and name not in invalid:
                continue
            cursor.execute(
                sql.SQL("CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON customers_customer {}")
                .format(sql.Identifier(name), definition)
                .as_string(cursor.connection)
            )
            created.append(name)
    return {"created": created, "dropped": dropped}
